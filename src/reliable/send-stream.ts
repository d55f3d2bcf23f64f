// The sending half of one stream (a message is a stream of known length): the bytes written and not
// yet acknowledged, what was sent, and what was lost and must go again. The end of a stream is one
// virtual byte at its final offset, so "the end was acknowledged" is just "that byte was", a lost end
// is re-sent like lost data, and an empty message still sends (and gets acknowledged) one frame.

import { internalAssertion } from "../errors/errors.ts";
import { RangeSet } from "./range-set.ts";

/** A range to put in a frame: data bytes [offset, offset + data.length) and perhaps the FIN. */
export interface SendRange {
  offset: number;
  data: Uint8Array;
  fin: boolean;
}

export class SendStream {
  readonly #chunks: Uint8Array[] = [];
  /** Stream offset of #chunks[i]'s first byte. */
  readonly #chunkOffsets: number[] = [];
  #written = 0;
  #finished = false;
  /** Next byte never sent. */
  #next = 0;
  readonly #lost = new RangeSet();
  readonly #acked = new RangeSet();
  /** Bytes released from the front of the buffer (acknowledged and contiguous from 0). */
  #released = 0;
  /** The stream was reset: nothing more goes out, and acknowledgements release nothing. */
  #abandoned = false;
  get written(): number {
    return this.#written;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Bytes held for the peer: written and not yet acknowledged from the front. */
  get bufferedBytes(): number {
    return this.#written - this.#released;
  }

  /** Every byte (and the end) went out at least once (lost ones may still be due again), or it was abandoned. */
  get allSent(): boolean {
    return this.#abandoned || (this.#finished && this.#next >= this.#virtualEnd);
  }

  get hasLost(): boolean {
    return !this.#lost.isEmpty;
  }

  /** Every byte and the end acknowledged. */
  get complete(): boolean {
    return this.#finished && this.#acked.contiguousEnd(0) >= this.#virtualEnd;
  }

  /** Nothing more will happen to it: complete, or abandoned. */
  get settled(): boolean {
    return this.#abandoned || this.complete;
  }

  /** Acknowledged from the start up to here (the end counts as one byte past the data). */
  get acknowledged(): number {
    return this.#acked.contiguousEnd(0);
  }

  /** Where the written data ends, with the end as one byte more once finished: what `acknowledged` reaches. */
  get writtenEnd(): number {
    return this.#virtualEnd;
  }

  /** Whether there is something to send under a credit of `limit` data bytes. */
  hasSendable(limit: number): boolean {
    if (this.#abandoned) return false;
    if (!this.#lost.isEmpty) return true;
    if (this.#next >= this.#virtualEnd) return false;
    return this.#next < limit || (this.#next === this.#written && this.#finished); // a bare FIN needs no credit
  }

  write(bytes: Uint8Array): void {
    if (this.#finished) throw internalAssertion("write after the stream was finished");
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#chunkOffsets.push(this.#written);
    this.#written += bytes.length;
  }

  finish(): void {
    this.#finished = true;
  }

  /**
   * The next range to send, at most `maxBytes` of data: lost bytes first, then new ones below
   * `limit` (the peer's credit). Undefined when there is nothing. A range that `maxBytes` cuts short
   * ends at an offset ≡ `cutResidue` (mod 8), up to 7 bytes sooner: see `take`'s caller.
   */
  take(maxBytes: number, limit: number, cutResidue: number): SendRange | undefined {
    if (this.#abandoned) return undefined;
    if (!this.#lost.isEmpty) {
      const [start, end] = this.#lost.rangeFromTop(this.#lost.rangeCount - 1); // lowest lost range first
      const range = this.#slice(start, end, maxBytes, cutResidue);
      this.#lost.remove(range.offset, range.offset + range.data.length + (range.fin ? 1 : 0));
      return range;
    }
    if (!this.hasSendable(limit)) return undefined;
    const dataEnd = Math.min(this.#written, Math.max(limit, this.#next));
    const end = dataEnd === this.#written ? this.#virtualEnd : dataEnd;
    const range = this.#slice(this.#next, end, maxBytes, cutResidue);
    this.#next = range.offset + range.data.length + (range.fin ? 1 : 0);
    return range;
  }

  /** Answers how many bytes this released from the buffer. */
  onAcked(offset: number, length: number, fin: boolean): number {
    if (this.#abandoned) return 0;
    this.#acked.add(offset, offset + length + (fin ? 1 : 0));
    this.#lost.remove(offset, offset + length + (fin ? 1 : 0));
    const before = this.#released;
    this.#release(Math.min(this.#acked.contiguousEnd(0), this.#written));
    return this.#released - before;
  }

  onLost(offset: number, length: number, fin: boolean): void {
    if (this.#abandoned) return;
    this.#acked.forEachGap(offset, offset + length + (fin ? 1 : 0), (start, end) => this.#lost.add(start, end));
  }

  /** Gives up on the stream (it was reset): drops its bytes; answers how many were still held. */
  abandon(): number {
    const held = this.bufferedBytes;
    this.#abandoned = true;
    this.#lost.remove(0, Number.MAX_SAFE_INTEGER);
    this.#chunks.length = 0;
    this.#chunkOffsets.length = 0;
    this.#released = this.#written;
    return held;
  }

  get #virtualEnd(): number {
    return this.#written + (this.#finished ? 1 : 0);
  }

  /**
   * Data [start, min(end, start + maxBytes)) from one chunk (frames never straddle chunks); FIN if end
   * reaches it. Cut short by `maxBytes`, it ends at an offset ≡ `cutResidue` (mod 8) when it can.
   */
  #slice(start: number, end: number, maxBytes: number, cutResidue: number): SendRange {
    const dataEnd = Math.min(end, this.#written);
    let data: Uint8Array = EMPTY;
    if (start < dataEnd) {
      const i = chunkIndex(this.#chunkOffsets, start);
      const chunk = this.#chunks[i]!;
      const from = start - this.#chunkOffsets[i]!;
      const available = Math.min(chunk.length - from, dataEnd - start);
      let length = Math.min(available, maxBytes);
      const trim = length < available ? (start + length - cutResidue) & 7 : 0;
      if (trim < length) length -= trim; // never down to nothing
      data = chunk.subarray(from, from + length);
    }
    const fin = this.#finished && start + data.length === this.#written && end > this.#written;
    return { offset: start, data, fin };
  }

  #release(upTo: number): void {
    while (this.#chunks.length > 0 && this.#chunkOffsets[0]! + this.#chunks[0]!.length <= upTo) {
      this.#chunks.shift();
      this.#chunkOffsets.shift();
    }
    this.#released = Math.max(this.#released, upTo);
  }
}

/** The index of the chunk holding `offset` (chunk offsets are sorted). */
function chunkIndex(offsets: readonly number[], offset: number): number {
  let low = 0;
  let high = offsets.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >>> 1;
    if (offsets[mid]! <= offset) low = mid;
    else high = mid - 1;
  }
  return low;
}

const EMPTY = new Uint8Array(0);
