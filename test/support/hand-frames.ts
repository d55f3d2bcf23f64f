// Frames of a data packet's plaintext written and read by hand from docs/wire.md ("Frames"), so tests
// that play an authenticated peer do not depend on src/reliable/frames.ts, the code under test.
// Little-endian; 64-bit fields as two 32-bit halves.

import type { Session } from "../../src/reliable/session.ts";

/** docs/wire.md, "Sizes": 1200 − 13-byte header − 16-byte tag. */
const MAX_PLAINTEXT_BYTES = 1171;
/** Virtual time stands still: nothing these tests do waits on a timer. */
const NOW_MS = 1;
const MESSAGE_DATA_HEADER_BYTES = 15;
const STREAM_DATA_HEADER_BYTES = 16;

/**
 * Packs frames into plaintexts and hands each to `session.handlePacket`. Every plaintext is written in
 * the same scratch buffer and scribbled over once handled: the session may keep nothing of it. Reads
 * back the credit the session grants (MESSAGE_CREDIT, STREAM_CREDIT) from what it sends.
 */
export class HandPeer {
  readonly session: Session;
  readonly #packet = new Uint8Array(MAX_PLAINTEXT_BYTES);
  readonly #view = new DataView(this.#packet.buffer);
  #length = 0;
  #packetNumber = 0;
  /** The largest message byte limit the session granted (64 KiB before any frame says more). */
  messageCredit = 64 * 1024;
  /** Stream byte limits the session granted, by id, for the streams this peer sent to (64 KiB before any frame says more). */
  readonly streamCredit = new Map<number, number>();
  malformed = 0;

  constructor(session: Session) {
    this.session = session;
  }

  streamData(id: number, offset: number, fin: boolean, data: Uint8Array): void {
    if (!this.streamCredit.has(id)) this.streamCredit.set(id, 64 * 1024);
    const at = this.#frame(STREAM_DATA_HEADER_BYTES + data.length);
    const view = this.#view;
    this.#packet[at] = 0x14;
    this.#packet[at + 1] = fin ? 1 : 0;
    view.setUint32(at + 2, id, true);
    view.setUint32(at + 6, offset % 2 ** 32, true);
    view.setUint32(at + 10, Math.floor(offset / 2 ** 32), true);
    view.setUint16(at + 14, data.length, true);
    this.#packet.set(data, at + STREAM_DATA_HEADER_BYTES);
  }

  messageData(sequence: number, total: number, offset: number, data: Uint8Array): void {
    const at = this.#frame(MESSAGE_DATA_HEADER_BYTES + data.length);
    const view = this.#view;
    this.#packet[at] = 0x13;
    view.setUint32(at + 1, sequence, true);
    view.setUint32(at + 5, total, true);
    view.setUint32(at + 9, offset, true);
    view.setUint16(at + 13, data.length, true);
    this.#packet.set(data, at + MESSAGE_DATA_HEADER_BYTES);
  }

  /**
   * Sends the packet being filled, if any (padded to full size with PINGs if `padded`: a fragment alone
   * in a whole packet), and takes what the session answers.
   */
  flush(padded = false): void {
    if (this.#length === 0) return;
    if (padded) {
      this.#packet.fill(0x11, this.#length); // PING frames, one byte each
      this.#length = MAX_PLAINTEXT_BYTES;
    }
    if (this.session.handlePacket(this.#packet.subarray(0, this.#length), this.#packetNumber++, NOW_MS) !== undefined) this.malformed++;
    this.#packet.fill(0xee); // the plaintext was valid only during the call
    this.#length = 0;
    for (let sent = this.session.pollTransmit(NOW_MS); sent !== undefined; sent = this.session.pollTransmit(NOW_MS)) {
      this.#readCredits(Buffer.concat(sent.parts));
    }
  }

  /** Room for a frame of `bytes` (sending the packet first if it is full); answers where it goes. */
  #frame(bytes: number): number {
    if (this.#length + bytes > MAX_PLAINTEXT_BYTES) this.flush();
    const at = this.#length;
    this.#length += bytes;
    return at;
  }

  #readCredits(plaintext: Uint8Array): void {
    const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    const u64 = (at: number) => view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
    for (let at = 0; at < plaintext.length;) {
      switch (plaintext[at]) {
        case 0x00: at = plaintext.length; break; // PADDING, to the end (a path MTU probe's)
        case 0x10: at += 18 + (plaintext[at + 13]! - 1) * 8; break; // ACK
        case 0x11: at += 1; break; // PING
        case 0x12: at += 2; break; // CLOSE
        case 0x13: at += MESSAGE_DATA_HEADER_BYTES + view.getUint16(at + 13, true); break;
        case 0x14: at += STREAM_DATA_HEADER_BYTES + view.getUint16(at + 14, true); break;
        case 0x15: this.messageCredit = Math.max(this.messageCredit, u64(at + 1)); at += 13; break;
        case 0x16: {
          const id = view.getUint32(at + 1, true);
          this.streamCredit.set(id, Math.max(this.streamCredit.get(id) ?? 0, u64(at + 5)));
          at += 13;
          break;
        }
        case 0x17: at += 5; break; // STREAMS_CREDIT
        case 0x18: at += 6; break; // STREAM_RESET
        default: throw new Error(`unknown frame type ${plaintext[at]} from the session`);
      }
    }
  }
}
