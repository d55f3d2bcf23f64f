// The receiving half of one stream or one message: bytes that arrived, in any order and possibly more
// than once, copied into blocks this reassembly owns, and handed out in order.
//
// Why blocks of its own: a view kept into a received packet pins the whole 64 KiB slab the packet was
// carved from (measured: 1,345 B pinned per byte of 1-byte fragments, 65,549 B for sparse ones). Here
// the plaintext is only read during the call, and what is kept lives in blocks laid out by offset, so
// what a peer can pin is the span of offsets it was credited, whatever its fragments look like.
//
// What arrived is `contiguousEnd` (everything below it) and, beyond it, one bit per byte in the block
// (allocated only for blocks that receive data out of order): 1/8 of the block, however many gaps,
// and a fragment costs O(its length) whatever the number of fragments before it. In-order data sets
// no bits at all.
import type { ReceivedBytes } from "../memory/delivery-slab.ts";

/** Gaps (runs of missing bytes below the highest byte received) one stream or message may have. */
export const MAX_GAPS = 65_536;
/** The most one read of a stream answers (as Node's net hands out 64 KiB reads). */
export const MAX_READ_BYTES = 64 * 1024;
/** A stream's first block; blocks double from here to its largest (a short stream pins little). */
const FIRST_STREAM_BLOCK_BYTES = 4 * 1024;
/** A message's block: the granularity at which its out-of-order fragments are charged to the credit. */
export const MESSAGE_BLOCK_BYTES = 16 * 1024;

/**
 * Where blocks begin: sizes `first`, 2·first, … up to `largest` (powers of two), then `largest` each.
 * A pure function of the offset, so a block can be made wherever data lands.
 */
class BlockLayout {
  readonly #first: number;
  readonly #largest: number;
  /** Blocks before the first of size `largest`, and where they end. */
  readonly #growing: number;
  readonly #growingEnd: number;

  constructor(first: number, largest: number) {
    this.#first = first;
    this.#largest = largest;
    this.#growing = Math.log2(largest / first);
    this.#growingEnd = largest - first;
  }

  indexOf(offset: number): number {
    if (offset < this.#growingEnd) return 31 - Math.clz32(Math.floor(offset / this.#first) + 1);
    return this.#growing + Math.floor((offset - this.#growingEnd) / this.#largest);
  }

  startOf(index: number): number {
    if (index < this.#growing) return this.#first * (2 ** index - 1);
    return this.#growingEnd + (index - this.#growing) * this.#largest;
  }

  sizeOf(index: number): number {
    return index < this.#growing ? this.#first * 2 ** index : this.#largest;
  }
}

interface Block {
  readonly start: number;
  readonly bytes: ReceivedBytes;
  /** Bit i set: byte start + i arrived. Only meaningful at or beyond contiguousEnd; made on first need. */
  bits: Int32Array | undefined;
}

export class Reassembly {
  readonly #layout: BlockLayout;
  /** Where the data ends (Infinity for a stream): the last block is cut there. */
  readonly #total: number;
  /** Storage the owner lends for a message's only block: the owner's, never handed out. */
  readonly #lent: ReceivedBytes | undefined;
  readonly #blocks = new Map<number, Block>();
  /** The block last touched (most fragments land where the previous one did). */
  #lastIndex = -1;
  #lastBlock: Block | undefined;
  #readOffset = 0;
  /** Every byte in [readOffset, contiguousEnd) arrived; the byte at contiguousEnd did not. */
  #contiguousEnd = 0;
  #highestReceived = 0;
  /** Runs of received bytes beyond contiguousEnd: each has a gap before it. */
  #islands = 0;
  #blockBytes = 0;
  /** A stream's block read through, kept to be the next block of its size: never handed out, so reusable. */
  #spare: ReceivedBytes | undefined;

  /** A stream's bytes: blocks from 4 KiB doubling to `largestBlock` (a power of two). */
  static forStream(largestBlock: number): Reassembly {
    return new Reassembly(Math.min(FIRST_STREAM_BLOCK_BYTES, largestBlock), largestBlock, Infinity);
  }

  /**
   * A message of `total` bytes: blocks of MESSAGE_BLOCK_BYTES, the last one cut to the message. A
   * message of one block may be kept in `lent` (its first `total` bytes): wholeBlock then answers
   * undefined, and the owner copies the message out.
   */
  static forMessage(total: number, lent?: ReceivedBytes): Reassembly {
    return new Reassembly(MESSAGE_BLOCK_BYTES, MESSAGE_BLOCK_BYTES, total, lent);
  }

  /** Blocks of `firstBlock` bytes, doubling to `largestBlock` (powers of two), the last cut at `total`. */
  constructor(firstBlock: number, largestBlock: number, total: number, lent?: ReceivedBytes) {
    this.#layout = new BlockLayout(firstBlock, largestBlock);
    this.#total = total;
    this.#lent = lent;
  }

  /** Bytes handed out so far. */
  get readOffset(): number {
    return this.#readOffset;
  }

  /** Every byte below this arrived. */
  get contiguousEnd(): number {
    return this.#contiguousEnd;
  }

  /** One past the highest byte that arrived. */
  get highestReceived(): number {
    return this.#highestReceived;
  }

  /** Runs of missing bytes below highestReceived (not counting what was read). */
  get gaps(): number {
    return this.#islands;
  }

  /** Bytes of the blocks held (what a message is charged). */
  get blockBytes(): number {
    return this.#blockBytes;
  }

  /** Block bytes that storing [offset, end) would add (ask before insert, to charge them first). */
  newBlockBytes(offset: number, end: number): number {
    const start = Math.max(offset, this.#contiguousEnd);
    if (start >= end) return 0;
    let added = 0;
    for (let index = this.#layout.indexOf(start), last = this.#layout.indexOf(end - 1); index <= last; index++) {
      if (!this.#blocks.has(index)) added += this.#sizeOf(index);
    }
    return added;
  }

  /** Stores data that belongs at `offset` (what already arrived is skipped). */
  insert(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    const start = Math.max(offset, this.#contiguousEnd);
    if (start >= end) return;
    this.#copy(start, end, data, offset);
    if (start === this.#contiguousEnd) {
      if (this.#islands === 0) this.#contiguousEnd = end; // in order, nothing beyond: the common case
      else {
        this.#islands -= this.#countRunStarts(start, end + 1); // islands it reached are joined
        this.#contiguousEnd = this.#firstMissing(end);
      }
    } else {
      this.#islands += (this.#has(start - 1) ? 0 : 1) - this.#countRunStarts(start, end + 1);
      this.#setBits(start, end);
    }
    if (end > this.#highestReceived) this.#highestReceived = end;
  }

  /** How many bytes the next read gives: as many as are contiguous, up to `maxBytes`, within one block. */
  readable(maxBytes: number): number {
    const from = this.#readOffset;
    if (from === this.#contiguousEnd) return 0;
    const block = this.#block(this.#layout.indexOf(from))!;
    return Math.min(this.#contiguousEnd, block.start + block.bytes.length, from + maxBytes) - from;
  }

  /**
   * Copies the next bytes in order into the start of `target` (`readable(target.length)` of them);
   * answers how many. Copied, so they are the reader's and a reader that transfers their buffer
   * detaches nothing of the stream's. The blocks are never handed out, so one read through is kept as
   * a spare for the next block of its size: a stream read as it arrives allocates what it delivers,
   * and next to nothing more.
   */
  readInto(target: Uint8Array): number {
    const length = this.readable(target.length);
    if (length > 0) this.#copyOut(target, length);
    return length;
  }

  /** The next bytes in order (`readable(maxBytes)` of them) in an array of their own, or undefined if none. */
  read(maxBytes: number): ReceivedBytes | undefined {
    const length = this.readable(maxBytes);
    if (length === 0) return undefined;
    const piece = new Uint8Array(length);
    this.#copyOut(piece, length);
    return piece;
  }

  /** Copies the next `length` readable bytes into the start of `target`, and reads past them. */
  #copyOut(target: Uint8Array, length: number): void {
    const from = this.#readOffset;
    const index = this.#layout.indexOf(from);
    const block = this.#block(index)!;
    const at = from - block.start;
    target.set(at === 0 && length === block.bytes.length ? block.bytes : block.bytes.subarray(at, at + length));
    this.#readOffset = from + length;
    if (this.#readOffset === block.start + block.bytes.length) {
      this.#drop(index, block);
      this.#spare = block.bytes;
    }
  }

  /** The whole message (call once contiguousEnd reached `total`): its one block when it has one of its own, else undefined. */
  get wholeBlock(): ReceivedBytes | undefined {
    if (this.#blocks.size !== 1 || this.#lent !== undefined) return undefined;
    const block = this.#blocks.get(0);
    return block !== undefined && block.bytes.length === this.#contiguousEnd ? block.bytes : undefined;
  }

  /** Copies [0, contiguousEnd) into `target`. */
  copyTo(target: Uint8Array): void {
    for (let index = 0, at = 0; at < this.#contiguousEnd; index++) {
      const bytes = this.#blocks.get(index)!.bytes;
      target.set(bytes.length <= this.#contiguousEnd - at ? bytes : bytes.subarray(0, this.#contiguousEnd - at), at);
      at += bytes.length;
    }
  }

  /** Lets go of the spare block (the connection is over: no block will be made again). */
  releaseSpare(): void {
    this.#spare = undefined;
  }

  /** Lets go of everything held. */
  clear(): void {
    this.#spare = undefined;
    this.#blocks.clear();
    this.#lastIndex = -1;
    this.#lastBlock = undefined;
    this.#blockBytes = 0;
  }

  /** Block `index`'s size: the layout's, cut at the end of the data. */
  #sizeOf(index: number): number {
    return Math.min(this.#layout.sizeOf(index), this.#total - this.#layout.startOf(index));
  }

  #block(index: number): Block | undefined {
    if (index === this.#lastIndex) return this.#lastBlock;
    const block = this.#blocks.get(index);
    if (block !== undefined) {
      this.#lastIndex = index;
      this.#lastBlock = block;
    }
    return block;
  }

  #drop(index: number, block: Block): void {
    this.#blocks.delete(index);
    this.#blockBytes -= block.bytes.length;
    if (index === this.#lastIndex) {
      this.#lastIndex = -1;
      this.#lastBlock = undefined;
    }
  }

  /** Copies data[start - dataOffset, end - dataOffset) to [start, end), making blocks as needed. */
  #copy(start: number, end: number, data: Uint8Array, dataOffset: number): void {
    for (let at = start; at < end;) {
      const index = this.#layout.indexOf(at);
      let block = this.#block(index);
      if (block === undefined) {
        const size = this.#sizeOf(index);
        let bytes = this.#lent?.subarray(0, size) ?? this.#spare;
        if (bytes?.length === size) this.#spare = undefined; // what it held is overwritten before it is read
        else bytes = new Uint8Array(size);
        block = { start: this.#layout.startOf(index), bytes, bits: undefined };
        this.#blocks.set(index, block);
        this.#blockBytes += size;
        this.#lastIndex = index;
        this.#lastBlock = block;
      }
      const blockEnd = Math.min(end, block.start + block.bytes.length);
      const whole = at === dataOffset && blockEnd - dataOffset === data.length; // most packets: no view to make
      block.bytes.set(whole ? data : data.subarray(at - dataOffset, blockEnd - dataOffset), at - block.start);
      at = blockEnd;
    }
  }

  /** Whether byte `offset` arrived. */
  #has(offset: number): boolean {
    if (offset < this.#contiguousEnd) return true;
    if (offset >= this.#highestReceived) return false;
    const block = this.#block(this.#layout.indexOf(offset));
    const bits = block?.bits;
    if (bits === undefined) return false;
    const bit = offset - block!.start;
    return (bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  /** Marks [start, end) as arrived (all of it lies beyond contiguousEnd, in blocks that exist). */
  #setBits(start: number, end: number): void {
    for (let at = start; at < end;) {
      const block = this.#block(this.#layout.indexOf(at))!;
      block.bits ??= new Int32Array((block.bytes.length + 31) >>> 5);
      const blockEnd = Math.min(end, block.start + block.bytes.length);
      fillBits(block.bits, at - block.start, blockEnd - block.start);
      at = blockEnd;
    }
  }

  /** How many runs of arrived bytes begin in [start, end): bytes that arrived after one that did not. */
  #countRunStarts(start: number, end: number): number {
    end = Math.min(end, this.#highestReceived); // nothing arrived beyond: no run starts there
    let count = 0;
    let previous = this.#has(start - 1) ? 1 : 0;
    for (let at = start; at < end;) {
      const block = this.#block(this.#layout.indexOf(at));
      const blockEnd = Math.min(end, block === undefined ? this.#layout.startOf(this.#layout.indexOf(at) + 1) : block.start + block.bytes.length);
      if (block?.bits === undefined) previous = 0; // nothing beyond contiguousEnd arrived in this block
      else {
        count += countRunStarts(block.bits, at - block.start, blockEnd - block.start, previous);
        previous = this.#has(blockEnd - 1) ? 1 : 0;
      }
      at = blockEnd;
    }
    return count;
  }

  /** The first byte at or after `offset` (which lies beyond contiguousEnd) that did not arrive. */
  #firstMissing(offset: number): number {
    for (let at = offset; ;) {
      if (at >= this.#highestReceived) return at;
      const block = this.#block(this.#layout.indexOf(at));
      if (block?.bits === undefined) return at;
      const blockEnd = block.start + block.bytes.length;
      const missing = firstClearBit(block.bits, at - block.start, blockEnd - block.start);
      if (missing < blockEnd - block.start) return block.start + missing;
      at = blockEnd;
    }
  }
}

/** Sets bits [from, to) of `bits`. */
function fillBits(bits: Int32Array, from: number, to: number): void {
  const first = from >>> 5;
  const last = (to - 1) >>> 5;
  if (first === last) {
    bits[first]! |= wordMask(from & 31, to - (first << 5));
    return;
  }
  bits[first]! |= -1 << (from & 31);
  if (last > first + 1) bits.fill(-1, first + 1, last);
  bits[last]! |= wordMask(0, to - (last << 5));
}

/** Bits [from, to) of one word, 0 ≤ from < to ≤ 32. */
function wordMask(from: number, to: number): number {
  return (to === 32 ? -1 : (1 << to) - 1) & (-1 << from);
}

/** Set bits in [from, to) whose preceding bit is clear; `previous` is the bit before `from`. */
function countRunStarts(bits: Int32Array, from: number, to: number, previous: number): number {
  let count = 0;
  for (let word = from >>> 5, last = (to - 1) >>> 5; word <= last; word++) {
    const x = bits[word]!;
    const low = word === from >>> 5 ? from & 31 : 0;
    const high = word === last ? to - (word << 5) : 32;
    const before = (x << 1) | previous; // each bit's predecessor (`previous` matters only when low is 0)
    count += popCount(x & ~before & wordMask(low, high));
    previous = x >>> 31;
  }
  return count;
}

/** The first clear bit in [from, to), or `to`. */
function firstClearBit(bits: Int32Array, from: number, to: number): number {
  for (let word = from >>> 5, last = (to - 1) >>> 5; word <= last; word++) {
    const clear = ~bits[word]! & (word === from >>> 5 ? -1 << (from & 31) : -1);
    if (clear !== 0) return Math.min(to, (word << 5) + 31 - Math.clz32(clear & -clear));
  }
  return to;
}

function popCount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
