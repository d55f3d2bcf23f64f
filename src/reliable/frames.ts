// The frames inside a data packet's sealed plaintext (docs/wire.md, "Frames"). A packet carries one or
// more frames back to back; every length is checked before it is used, and a packet whose frames do not
// parse is dropped whole (counted as malformed). Integers are little-endian; 64-bit fields hold values
// below 2^53 and are written as two 32-bit halves.
import { internalAssertion } from "../errors/errors.ts";
import { MAX_DATAGRAM_BYTES } from "../wire/constants.ts";

const FRAME_PADDING = 0x00;
const FRAME_ACK = 0x10;
const FRAME_PING = 0x11;
const FRAME_CLOSE = 0x12;
const FRAME_MESSAGE_DATA = 0x13;
const FRAME_STREAM_DATA = 0x14;
const FRAME_MESSAGE_CREDIT = 0x15;
const FRAME_STREAM_CREDIT = 0x16;
const FRAME_STREAMS_CREDIT = 0x17;
const FRAME_STREAM_RESET = 0x18;
const FRAME_PATH_CHALLENGE = 0x19;
const FRAME_PATH_RESPONSE = 0x1a;
const FRAME_STOP_SENDING = 0x1b;
const FRAME_MESSAGE_REFUSED = 0x1c;
/**
 * Control frames (0x20 to 0x2f) share one layout: type u8, control sequence u32, body length u16, body.
 * The Session delivers each once, in sequence order, to its host, which knows what the bodies mean.
 */
const FRAME_CONTROL_FIRST = 0x20;
const FRAME_CONTROL_LAST = 0x2f;
const CONTROL_SEQUENCE = 1;
const CONTROL_LENGTH = 5;
export const CONTROL_HEADER_BYTES = 7;

// Each frame's fields, by offset from its type byte (at 0), for the parser and the writer alike.
/** ACK: largest u64, delay µs u32, range count u8, first range length u32; then (gap u32, length u32) each. */
const ACK_LARGEST = 1;
const ACK_DELAY = 9;
const ACK_RANGE_COUNT = 13;
const ACK_FIRST_RANGE = 14;
const ACK_FIXED_BYTES = 18;
const ACK_RANGE_GAP = 0;
const ACK_RANGE_LENGTH = 4;
const ACK_RANGE_BYTES = 8;
/** Ranges one ACK frame reports at most (older ones are left out; the sender's loss detection copes). */
export const MAX_ACK_RANGES = 32;
/** Message data: sequence u32, total u32, offset u32, length u16, then the data. */
const MESSAGE_SEQUENCE = 1;
const MESSAGE_TOTAL = 5;
const MESSAGE_OFFSET = 9;
const MESSAGE_LENGTH = 13;
export const MESSAGE_DATA_HEADER_BYTES = 15;
/** Stream data: flags u8, id u32, offset u64, length u16, then the data. */
const STREAM_FLAGS = 1;
const STREAM_ID = 2;
const STREAM_OFFSET = 6;
const STREAM_LENGTH = 14;
export const STREAM_DATA_HEADER_BYTES = 16;
/** Message credit: byte limit u64, sequence limit u32. */
const MESSAGE_CREDIT_BYTE_LIMIT = 1;
const MESSAGE_CREDIT_SEQUENCE_LIMIT = 9;
const MESSAGE_CREDIT_BYTES = 13;
/** Stream credit: id u32, limit u64. */
const STREAM_CREDIT_ID = 1;
const STREAM_CREDIT_LIMIT = 5;
const STREAM_CREDIT_BYTES = 13;
/** Streams credit: id limit u32. */
const STREAMS_CREDIT_ID_LIMIT = 1;
const STREAMS_CREDIT_BYTES = 5;
/** Close: code u8. */
const CLOSE_CODE = 1;
const CLOSE_BYTES = 2;
/** Stream reset: id u32, code u8. */
const RESET_ID = 1;
const RESET_CODE = 5;
const STREAM_RESET_BYTES = 6;
/** Stop sending: id u32, code u8. */
const STOP_ID = 1;
const STOP_CODE = 5;
const STOP_SENDING_BYTES = 6;
/** Message refused: sequence u32, its declared length u32, the receiver's largest message u32. */
const REFUSED_SEQUENCE = 1;
const REFUSED_LENGTH = 5;
const REFUSED_LIMIT = 9;
const MESSAGE_REFUSED_BYTES = 13;
/** Path challenge and response: 8 bytes of data. */
const PATH_DATA = 1;
export const PATH_DATA_BYTES = 8;
const PATH_FRAME_BYTES = PATH_DATA + PATH_DATA_BYTES;
/** Why a writer reset its stream (0 is no longer sent: it meant an idle writer, a timeout since removed). */
export const RESET_ABORTED = 1;
/** Why a reader stopped its stream. */
export const STOP_CANCELLED = 0;
const STREAM_FLAG_FIN = 0x01;

export const CLOSE_APPLICATION = 0;
/** The peer broke the protocol (an optimistic ACK, say): the connection failed. */
export const CLOSE_PROTOCOL_VIOLATION = 1;

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
  stopSending(id: number, code: number): void;
  messageRefused(sequence: number, length: number, limit: number): void;
  /** `data` is a view of the packet: valid only during the call. */
  pathChallenge(data: Uint8Array): void;
  pathResponse(data: Uint8Array): void;
  /** A control frame (0x20 to 0x2f): `body` is a view of the packet, valid only during the call. */
  control(type: number, sequence: number, body: Uint8Array): void;
}

/** Whether `type` is a control frame's type (0x20 to 0x2f). */
function isControlFrame(type: number): boolean {
  return type >= FRAME_CONTROL_FIRST && type <= FRAME_CONTROL_LAST;
}

/**
 * A 64-bit field, or -1 when it is 2^53 or more: the wire keeps such fields below 2^53 (so a number
 * holds them exactly), and a packet with one above is malformed.
 */
function u64(view: DataView, at: number): number {
  const value = view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
  return value <= Number.MAX_SAFE_INTEGER ? value : -1;
}

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/**
 * Whether a well-formed packet is a probe: only PATH_CHALLENGE, PATH_RESPONSE and PADDING (RFC 9000
 * §9.1: such a packet tests a path and does not move the connection onto it).
 */
export function isProbing(plaintext: Uint8Array): boolean {
  for (let at = 0; at < plaintext.length; at += PATH_FRAME_BYTES) {
    const type = plaintext[at];
    if (type === FRAME_PADDING) return true;
    if (type !== FRAME_PATH_CHALLENGE && type !== FRAME_PATH_RESPONSE) return false;
  }
  return true;
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
      case FRAME_PADDING:
        // Zero bytes to the end: no frame may follow padding.
        while (at < length) if (plaintext[at++] !== FRAME_PADDING) return "padding followed by something else";
        frames--;
        break;
      case FRAME_PATH_CHALLENGE:
      case FRAME_PATH_RESPONSE: {
        if (room < PATH_FRAME_BYTES) return "truncated path frame";
        const data = plaintext.subarray(at + PATH_DATA, at + PATH_FRAME_BYTES);
        if (type === FRAME_PATH_CHALLENGE) visitor?.pathChallenge(data);
        else visitor?.pathResponse(data);
        at += PATH_FRAME_BYTES;
        break;
      }
      case FRAME_ACK: {
        if (room < ACK_FIXED_BYTES) return "truncated ACK frame";
        const largest = u64(view, at + ACK_LARGEST);
        if (largest < 0) return "ACK largest out of range";
        const delayMs = view.getUint32(at + ACK_DELAY, true) / 1000;
        const count = plaintext[at + ACK_RANGE_COUNT]!;
        const firstLength = view.getUint32(at + ACK_FIRST_RANGE, true);
        if (count === 0 || count > MAX_ACK_RANGES || firstLength === 0 || firstLength > largest + 1) return "bad ACK ranges";
        if (room < ACK_FIXED_BYTES + (count - 1) * ACK_RANGE_BYTES) return "truncated ACK frame";
        const ranges: Array<[number, number]> | undefined = visitor && [[largest + 1 - firstLength, largest + 1]]; // built when visiting
        let low = largest + 1 - firstLength;
        for (let i = 1; i < count; i++) {
          const range = at + ACK_FIXED_BYTES + (i - 1) * ACK_RANGE_BYTES;
          const gap = view.getUint32(range + ACK_RANGE_GAP, true);
          const rangeLength = view.getUint32(range + ACK_RANGE_LENGTH, true);
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
        visitor?.close(plaintext[at + CLOSE_CODE]!);
        at += CLOSE_BYTES;
        break;
      case FRAME_MESSAGE_DATA: {
        if (room < MESSAGE_DATA_HEADER_BYTES) return "truncated message frame";
        const dataLength = view.getUint16(at + MESSAGE_LENGTH, true);
        if (room < MESSAGE_DATA_HEADER_BYTES + dataLength) return "message frame longer than its packet";
        const data = at + MESSAGE_DATA_HEADER_BYTES;
        visitor?.messageData(
          view.getUint32(at + MESSAGE_SEQUENCE, true), view.getUint32(at + MESSAGE_TOTAL, true), view.getUint32(at + MESSAGE_OFFSET, true),
          plaintext.subarray(data, data + dataLength),
        );
        at += MESSAGE_DATA_HEADER_BYTES + dataLength;
        break;
      }
      case FRAME_STREAM_DATA: {
        if (room < STREAM_DATA_HEADER_BYTES) return "truncated stream frame";
        const offset = u64(view, at + STREAM_OFFSET);
        const dataLength = view.getUint16(at + STREAM_LENGTH, true);
        if (room < STREAM_DATA_HEADER_BYTES + dataLength) return "stream frame longer than its packet";
        if (offset < 0 || offset + dataLength > Number.MAX_SAFE_INTEGER) return "stream offset out of range";
        const data = at + STREAM_DATA_HEADER_BYTES;
        visitor?.streamData(view.getUint32(at + STREAM_ID, true), offset, (plaintext[at + STREAM_FLAGS]! & STREAM_FLAG_FIN) !== 0, plaintext.subarray(data, data + dataLength));
        at += STREAM_DATA_HEADER_BYTES + dataLength;
        break;
      }
      case FRAME_MESSAGE_CREDIT: {
        if (room < MESSAGE_CREDIT_BYTES) return "truncated credit frame";
        const byteLimit = u64(view, at + MESSAGE_CREDIT_BYTE_LIMIT);
        if (byteLimit < 0) return "credit out of range";
        visitor?.messageCredit(byteLimit, view.getUint32(at + MESSAGE_CREDIT_SEQUENCE_LIMIT, true));
        at += MESSAGE_CREDIT_BYTES;
        break;
      }
      case FRAME_STREAM_CREDIT: {
        if (room < STREAM_CREDIT_BYTES) return "truncated credit frame";
        const byteLimit = u64(view, at + STREAM_CREDIT_LIMIT);
        if (byteLimit < 0) return "credit out of range";
        visitor?.streamCredit(view.getUint32(at + STREAM_CREDIT_ID, true), byteLimit);
        at += STREAM_CREDIT_BYTES;
        break;
      }
      case FRAME_STREAMS_CREDIT:
        if (room < STREAMS_CREDIT_BYTES) return "truncated credit frame";
        visitor?.streamsCredit(view.getUint32(at + STREAMS_CREDIT_ID_LIMIT, true));
        at += STREAMS_CREDIT_BYTES;
        break;
      case FRAME_STREAM_RESET:
        if (room < STREAM_RESET_BYTES) return "truncated reset frame";
        visitor?.streamReset(view.getUint32(at + RESET_ID, true), plaintext[at + RESET_CODE]!);
        at += STREAM_RESET_BYTES;
        break;
      case FRAME_STOP_SENDING:
        if (room < STOP_SENDING_BYTES) return "truncated stop frame";
        visitor?.stopSending(view.getUint32(at + STOP_ID, true), plaintext[at + STOP_CODE]!);
        at += STOP_SENDING_BYTES;
        break;
      case FRAME_MESSAGE_REFUSED:
        if (room < MESSAGE_REFUSED_BYTES) return "truncated refusal frame";
        visitor?.messageRefused(view.getUint32(at + REFUSED_SEQUENCE, true), view.getUint32(at + REFUSED_LENGTH, true), view.getUint32(at + REFUSED_LIMIT, true));
        at += MESSAGE_REFUSED_BYTES;
        break;
      default: {
        if (!isControlFrame(type)) return `unknown frame type 0x${type.toString(16)}`;
        if (room < CONTROL_HEADER_BYTES) return "truncated control frame";
        const bodyLength = view.getUint16(at + CONTROL_LENGTH, true);
        if (room < CONTROL_HEADER_BYTES + bodyLength) return "control frame longer than its packet";
        const body = at + CONTROL_HEADER_BYTES;
        visitor?.control(type, view.getUint32(at + CONTROL_SEQUENCE, true), plaintext.subarray(body, body + bodyLength));
        at += CONTROL_HEADER_BYTES + bodyLength;
      }
    }
  }
  return frames === 0 ? "no frames" : frames;
}

/** Zeros that PADDING frames are views of (FRAME_PADDING is 0): longer than any packet's plaintext. */
const PADDING_BYTES = new Uint8Array(MAX_DATAGRAM_BYTES);

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
  /** This packet's room: at most the writer's capacity, less when the path allows less. */
  #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#scratch = new Uint8Array(capacity);
    this.#view = new DataView(this.#scratch.buffer);
  }

  /** A new packet of at most `capacity` bytes (the writer's capacity by default). */
  begin(capacity = this.#scratch.length): void {
    this.#scratchUsed = 0;
    this.#partStart = 0;
    this.#parts = [];
    this.#length = 0;
    this.#capacity = Math.min(capacity, this.#scratch.length);
  }

  get length(): number {
    return this.#length;
  }

  get remaining(): number {
    return this.#capacity - this.#length;
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
    setU64(view, at + ACK_LARGEST, firstEnd - 1);
    view.setUint32(at + ACK_DELAY, Math.min(0xffff_ffff, Math.round(delayMs * 1000)), true);
    this.#scratch[at + ACK_RANGE_COUNT] = count;
    view.setUint32(at + ACK_FIRST_RANGE, firstEnd - firstStart, true);
    let low = firstStart;
    for (let i = 1; i < count; i++) {
      const [start, end] = ranges[i]!;
      const range = at + ACK_FIXED_BYTES + (i - 1) * ACK_RANGE_BYTES;
      view.setUint32(range + ACK_RANGE_GAP, low - end, true);
      view.setUint32(range + ACK_RANGE_LENGTH, end - start, true);
      low = start;
    }
  }

  ping(): void {
    this.#scratch[this.#reserve(1)] = FRAME_PING;
  }

  /** PADDING to the end of the packet (a path MTU probe's bulk): a view of shared zeros, not scratch. */
  padding(): void {
    this.#payload(PADDING_BYTES.subarray(0, this.remaining));
  }

  pathChallenge(data: Uint8Array): void {
    this.#pathFrame(FRAME_PATH_CHALLENGE, data);
  }

  pathResponse(data: Uint8Array): void {
    this.#pathFrame(FRAME_PATH_RESPONSE, data);
  }

  #pathFrame(type: number, data: Uint8Array): void {
    const at = this.#reserve(PATH_FRAME_BYTES);
    this.#scratch[at] = type;
    this.#scratch.set(data, at + PATH_DATA);
  }

  close(code: number): void {
    const at = this.#reserve(CLOSE_BYTES);
    this.#scratch[at] = FRAME_CLOSE;
    this.#scratch[at + CLOSE_CODE] = code;
  }

  messageData(sequence: number, total: number, offset: number, data: Uint8Array): void {
    const at = this.#reserve(MESSAGE_DATA_HEADER_BYTES);
    this.#scratch[at] = FRAME_MESSAGE_DATA;
    this.#view.setUint32(at + MESSAGE_SEQUENCE, sequence, true);
    this.#view.setUint32(at + MESSAGE_TOTAL, total, true);
    this.#view.setUint32(at + MESSAGE_OFFSET, offset, true);
    this.#view.setUint16(at + MESSAGE_LENGTH, data.length, true);
    this.#payload(data);
  }

  streamData(id: number, offset: number, fin: boolean, data: Uint8Array): void {
    const at = this.#reserve(STREAM_DATA_HEADER_BYTES);
    this.#scratch[at] = FRAME_STREAM_DATA;
    this.#scratch[at + STREAM_FLAGS] = fin ? STREAM_FLAG_FIN : 0;
    this.#view.setUint32(at + STREAM_ID, id, true);
    setU64(this.#view, at + STREAM_OFFSET, offset);
    this.#view.setUint16(at + STREAM_LENGTH, data.length, true);
    this.#payload(data);
  }

  messageCredit(byteLimit: number, sequenceLimit: number): void {
    const at = this.#reserve(MESSAGE_CREDIT_BYTES);
    this.#scratch[at] = FRAME_MESSAGE_CREDIT;
    setU64(this.#view, at + MESSAGE_CREDIT_BYTE_LIMIT, byteLimit);
    this.#view.setUint32(at + MESSAGE_CREDIT_SEQUENCE_LIMIT, sequenceLimit, true);
  }

  streamCredit(id: number, limit: number): void {
    const at = this.#reserve(STREAM_CREDIT_BYTES);
    this.#scratch[at] = FRAME_STREAM_CREDIT;
    this.#view.setUint32(at + STREAM_CREDIT_ID, id, true);
    setU64(this.#view, at + STREAM_CREDIT_LIMIT, limit);
  }

  streamsCredit(idLimit: number): void {
    const at = this.#reserve(STREAMS_CREDIT_BYTES);
    this.#scratch[at] = FRAME_STREAMS_CREDIT;
    this.#view.setUint32(at + STREAMS_CREDIT_ID_LIMIT, idLimit, true);
  }

  streamReset(id: number, code: number): void {
    const at = this.#reserve(STREAM_RESET_BYTES);
    this.#scratch[at] = FRAME_STREAM_RESET;
    this.#view.setUint32(at + RESET_ID, id, true);
    this.#scratch[at + RESET_CODE] = code;
  }

  stopSending(id: number, code: number): void {
    const at = this.#reserve(STOP_SENDING_BYTES);
    this.#scratch[at] = FRAME_STOP_SENDING;
    this.#view.setUint32(at + STOP_ID, id, true);
    this.#scratch[at + STOP_CODE] = code;
  }

  messageRefused(sequence: number, length: number, limit: number): void {
    const at = this.#reserve(MESSAGE_REFUSED_BYTES);
    this.#scratch[at] = FRAME_MESSAGE_REFUSED;
    this.#view.setUint32(at + REFUSED_SEQUENCE, sequence, true);
    this.#view.setUint32(at + REFUSED_LENGTH, length, true);
    this.#view.setUint32(at + REFUSED_LIMIT, limit, true);
  }

  /** A control frame; its body is copied into the packet's scratch (bodies are small: addresses, keys). */
  control(type: number, sequence: number, body: Uint8Array): void {
    const at = this.#reserve(CONTROL_HEADER_BYTES + body.length);
    this.#scratch[at] = type;
    this.#view.setUint32(at + CONTROL_SEQUENCE, sequence, true);
    this.#view.setUint16(at + CONTROL_LENGTH, body.length, true);
    this.#scratch.set(body, at + CONTROL_HEADER_BYTES);
  }

  #reserve(bytes: number): number {
    if (bytes > this.remaining) throw internalAssertion(`frame of ${bytes} bytes does not fit the ${this.remaining} left in the packet`);
    const at = this.#scratchUsed;
    this.#scratchUsed += bytes;
    this.#length += bytes;
    return at;
  }

  #payload(data: Uint8Array): void {
    if (data.length > this.remaining) throw internalAssertion(`payload of ${data.length} bytes does not fit the ${this.remaining} left in the packet`);
    this.#cutPart();
    if (data.length > 0) this.#parts.push(data);
    this.#length += data.length;
  }

  #cutPart(): void {
    if (this.#scratchUsed > this.#partStart) this.#parts.push(this.#scratch.subarray(this.#partStart, this.#scratchUsed));
    this.#partStart = this.#scratchUsed;
  }
}
