// The frames inside a data packet's sealed plaintext (docs/wire.md, "Frames"). A packet carries one or
// more frames back to back; every length is checked before it is used, and a packet whose frames do not
// parse is dropped whole (counted as malformed). Integers are little-endian; 64-bit fields hold values
// below 2^53 and are written as two 32-bit halves.

export const FRAME_ACK = 0x10;
export const FRAME_PING = 0x11;
export const FRAME_CLOSE = 0x12;
export const FRAME_MESSAGE_DATA = 0x13;
export const FRAME_STREAM_DATA = 0x14;
export const FRAME_MESSAGE_CREDIT = 0x15;
export const FRAME_STREAM_CREDIT = 0x16;
export const FRAME_STREAMS_CREDIT = 0x17;
export const FRAME_STREAM_RESET = 0x18;

/** type, largest u64, delay µs u32, range count u8, first range length u32; then (gap u32, length u32) each. */
export const ACK_FIXED_BYTES = 18;
export const ACK_RANGE_BYTES = 8;
/** Ranges one ACK frame reports at most (older ones are left out; the sender's loss detection copes). */
export const MAX_ACK_RANGES = 32;
/** type, sequence u32, total u32, offset u32, length u16. */
export const MESSAGE_DATA_HEADER_BYTES = 15;
/** type, flags u8, id u32, offset u64, length u16. */
export const STREAM_DATA_HEADER_BYTES = 16;
/** type, byte limit u64, sequence limit u32. */
export const MESSAGE_CREDIT_BYTES = 13;
/** type, id u32, limit u64. */
export const STREAM_CREDIT_BYTES = 13;
/** type, id limit u32. */
export const STREAMS_CREDIT_BYTES = 5;
/** type, code u8. */
export const CLOSE_BYTES = 2;
/** type, id u32, code u8. */
export const STREAM_RESET_BYTES = 6;
/** Why a writer reset its stream. */
export const RESET_IDLE = 0;
export const RESET_ABORTED = 1;
export const STREAM_FLAG_FIN = 0x01;

export const CLOSE_APPLICATION = 0;
export const CLOSE_PROTOCOL_ERROR = 1;

/** What a packet's frames say, handed out one frame at a time by parseFrames. */
export interface FrameVisitor {
  /** ranges: [start, end) from the highest down. */
  ack(ranges: Array<[number, number]>, delayMs: number): void;
  ping(): void;
  close(code: number): void;
  messageData(sequence: number, total: number, offset: number, data: Uint8Array): void;
  streamData(id: number, offset: number, fin: boolean, data: Uint8Array): void;
  messageCredit(byteLimit: number, sequenceLimit: number): void;
  streamCredit(id: number, limit: number): void;
  streamsCredit(idLimit: number): void;
  streamReset(id: number, code: number): void;
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
}

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/**
 * Parses every frame of `plaintext`, calling the visitor for each, only once the whole packet is known
 * to be well formed (so a bad packet has no partial effect): a checking pass, then a visiting pass.
 * Answers the number of frames, or a string that says what was malformed.
 */
export function parseFrames(plaintext: Uint8Array, visitor: FrameVisitor): number | string {
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  const checked = walkFrames(plaintext, view, undefined);
  return typeof checked === "string" ? checked : walkFrames(plaintext, view, visitor);
}

/** One pass over the frames: checks every length, and calls `visitor` for each frame if given. */
function walkFrames(plaintext: Uint8Array, view: DataView, visitor: FrameVisitor | undefined): number | string {
  const length = plaintext.length;
  let frames = 0;
  let at = 0;
  while (at < length) {
    const type = plaintext[at]!;
    const room = length - at;
    frames++;
    switch (type) {
      case FRAME_ACK: {
        if (room < ACK_FIXED_BYTES) return "truncated ACK frame";
        const largest = u64(view, at + 1);
        const delayMs = view.getUint32(at + 9, true) / 1000;
        const count = plaintext[at + 13]!;
        const firstLength = view.getUint32(at + 14, true);
        if (count === 0 || count > MAX_ACK_RANGES || firstLength === 0 || firstLength > largest + 1) return "bad ACK ranges";
        if (room < ACK_FIXED_BYTES + (count - 1) * ACK_RANGE_BYTES) return "truncated ACK frame";
        const ranges: Array<[number, number]> | undefined = visitor && [[largest + 1 - firstLength, largest + 1]]; // built when visiting
        let low = largest + 1 - firstLength;
        for (let i = 1; i < count; i++) {
          const gap = view.getUint32(at + ACK_FIXED_BYTES + (i - 1) * ACK_RANGE_BYTES, true);
          const rangeLength = view.getUint32(at + ACK_FIXED_BYTES + (i - 1) * ACK_RANGE_BYTES + 4, true);
          const end = low - gap;
          if (gap === 0 || rangeLength === 0 || end - rangeLength < 0) return "bad ACK ranges";
          ranges?.push([end - rangeLength, end]);
          low = end - rangeLength;
        }
        if (ranges !== undefined) visitor!.ack(ranges, delayMs);
        at += ACK_FIXED_BYTES + (count - 1) * ACK_RANGE_BYTES;
        break;
      }
      case FRAME_PING:
        visitor?.ping();
        at += 1;
        break;
      case FRAME_CLOSE:
        if (room < CLOSE_BYTES) return "truncated CLOSE frame";
        visitor?.close(plaintext[at + 1]!);
        at += CLOSE_BYTES;
        break;
      case FRAME_MESSAGE_DATA: {
        if (room < MESSAGE_DATA_HEADER_BYTES) return "truncated message frame";
        const dataLength = view.getUint16(at + 13, true);
        if (room < MESSAGE_DATA_HEADER_BYTES + dataLength) return "message frame longer than its packet";
        const data = at + MESSAGE_DATA_HEADER_BYTES;
        visitor?.messageData(view.getUint32(at + 1, true), view.getUint32(at + 5, true), view.getUint32(at + 9, true), plaintext.subarray(data, data + dataLength));
        at += MESSAGE_DATA_HEADER_BYTES + dataLength;
        break;
      }
      case FRAME_STREAM_DATA: {
        if (room < STREAM_DATA_HEADER_BYTES) return "truncated stream frame";
        const offset = u64(view, at + 6);
        const dataLength = view.getUint16(at + 14, true);
        if (room < STREAM_DATA_HEADER_BYTES + dataLength) return "stream frame longer than its packet";
        if (offset + dataLength > Number.MAX_SAFE_INTEGER) return "stream offset out of range";
        const data = at + STREAM_DATA_HEADER_BYTES;
        visitor?.streamData(view.getUint32(at + 2, true), offset, (plaintext[at + 1]! & STREAM_FLAG_FIN) !== 0, plaintext.subarray(data, data + dataLength));
        at += STREAM_DATA_HEADER_BYTES + dataLength;
        break;
      }
      case FRAME_MESSAGE_CREDIT:
        if (room < MESSAGE_CREDIT_BYTES) return "truncated credit frame";
        visitor?.messageCredit(u64(view, at + 1), view.getUint32(at + 9, true));
        at += MESSAGE_CREDIT_BYTES;
        break;
      case FRAME_STREAM_CREDIT:
        if (room < STREAM_CREDIT_BYTES) return "truncated credit frame";
        visitor?.streamCredit(view.getUint32(at + 1, true), u64(view, at + 5));
        at += STREAM_CREDIT_BYTES;
        break;
      case FRAME_STREAMS_CREDIT:
        if (room < STREAMS_CREDIT_BYTES) return "truncated credit frame";
        visitor?.streamsCredit(view.getUint32(at + 1, true));
        at += STREAMS_CREDIT_BYTES;
        break;
      case FRAME_STREAM_RESET:
        if (room < STREAM_RESET_BYTES) return "truncated reset frame";
        visitor?.streamReset(view.getUint32(at + 1, true), plaintext[at + 5]!);
        at += STREAM_RESET_BYTES;
        break;
      default:
        return `unknown frame type 0x${type.toString(16)}`;
    }
  }
  return frames === 0 ? "no frames" : frames;
}

/**
 * Writes frames into one packet's plaintext without copying payloads: the packet is a list of parts
 * (frame headers in a scratch buffer, payloads as views of the sender's buffers) that the AEAD seals
 * in order. The scratch is reused: a packet must be sealed before the next one is begun.
 */
export class PacketWriter {
  readonly #scratch: Uint8Array;
  readonly #view: DataView;
  #scratchUsed = 0;
  #partStart = 0;
  #parts: Uint8Array[] = [];
  #length = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#scratch = new Uint8Array(capacity);
    this.#view = new DataView(this.#scratch.buffer);
  }

  begin(): void {
    this.#scratchUsed = 0;
    this.#partStart = 0;
    this.#parts = [];
    this.#length = 0;
  }

  get length(): number {
    return this.#length;
  }

  get remaining(): number {
    return this.capacity - this.#length;
  }

  /** The packet's parts, in order. */
  finish(): Uint8Array[] {
    this.#cutPart();
    return this.#parts;
  }

  ack(ranges: ReadonlyArray<readonly [number, number]>, delayMs: number): void {
    const count = ranges.length;
    const at = this.#reserve(ACK_FIXED_BYTES + (count - 1) * ACK_RANGE_BYTES);
    const view = this.#view;
    const [firstStart, firstEnd] = ranges[0]!;
    this.#scratch[at] = FRAME_ACK;
    setU64(view, at + 1, firstEnd - 1);
    view.setUint32(at + 9, Math.min(0xffff_ffff, Math.round(delayMs * 1000)), true);
    this.#scratch[at + 13] = count;
    view.setUint32(at + 14, firstEnd - firstStart, true);
    let low = firstStart;
    for (let i = 1; i < count; i++) {
      const [start, end] = ranges[i]!;
      view.setUint32(at + ACK_FIXED_BYTES + (i - 1) * ACK_RANGE_BYTES, low - end, true);
      view.setUint32(at + ACK_FIXED_BYTES + (i - 1) * ACK_RANGE_BYTES + 4, end - start, true);
      low = start;
    }
  }

  ping(): void {
    this.#scratch[this.#reserve(1)] = FRAME_PING;
  }

  close(code: number): void {
    const at = this.#reserve(CLOSE_BYTES);
    this.#scratch[at] = FRAME_CLOSE;
    this.#scratch[at + 1] = code;
  }

  messageData(sequence: number, total: number, offset: number, data: Uint8Array): void {
    const at = this.#reserve(MESSAGE_DATA_HEADER_BYTES);
    this.#scratch[at] = FRAME_MESSAGE_DATA;
    this.#view.setUint32(at + 1, sequence, true);
    this.#view.setUint32(at + 5, total, true);
    this.#view.setUint32(at + 9, offset, true);
    this.#view.setUint16(at + 13, data.length, true);
    this.#payload(data);
  }

  streamData(id: number, offset: number, fin: boolean, data: Uint8Array): void {
    const at = this.#reserve(STREAM_DATA_HEADER_BYTES);
    this.#scratch[at] = FRAME_STREAM_DATA;
    this.#scratch[at + 1] = fin ? STREAM_FLAG_FIN : 0;
    this.#view.setUint32(at + 2, id, true);
    setU64(this.#view, at + 6, offset);
    this.#view.setUint16(at + 14, data.length, true);
    this.#payload(data);
  }

  messageCredit(byteLimit: number, sequenceLimit: number): void {
    const at = this.#reserve(MESSAGE_CREDIT_BYTES);
    this.#scratch[at] = FRAME_MESSAGE_CREDIT;
    setU64(this.#view, at + 1, byteLimit);
    this.#view.setUint32(at + 9, sequenceLimit, true);
  }

  streamCredit(id: number, limit: number): void {
    const at = this.#reserve(STREAM_CREDIT_BYTES);
    this.#scratch[at] = FRAME_STREAM_CREDIT;
    this.#view.setUint32(at + 1, id, true);
    setU64(this.#view, at + 5, limit);
  }

  streamsCredit(idLimit: number): void {
    const at = this.#reserve(STREAMS_CREDIT_BYTES);
    this.#scratch[at] = FRAME_STREAMS_CREDIT;
    this.#view.setUint32(at + 1, idLimit, true);
  }

  streamReset(id: number, code: number): void {
    const at = this.#reserve(STREAM_RESET_BYTES);
    this.#scratch[at] = FRAME_STREAM_RESET;
    this.#view.setUint32(at + 1, id, true);
    this.#scratch[at + 5] = code;
  }

  #reserve(bytes: number): number {
    if (bytes > this.remaining) throw new RangeError(`frame of ${bytes} bytes does not fit the ${this.remaining} left in the packet`);
    const at = this.#scratchUsed;
    this.#scratchUsed += bytes;
    this.#length += bytes;
    return at;
  }

  #payload(data: Uint8Array): void {
    if (data.length > this.remaining) throw new RangeError(`payload of ${data.length} bytes does not fit the ${this.remaining} left in the packet`);
    this.#cutPart();
    if (data.length > 0) this.#parts.push(data);
    this.#length += data.length;
  }

  #cutPart(): void {
    if (this.#scratchUsed > this.#partStart) this.#parts.push(this.#scratch.subarray(this.#partStart, this.#scratchUsed));
    this.#partStart = this.#scratchUsed;
  }
}
