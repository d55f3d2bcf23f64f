// The listener's and senders' door to assembly/wire.ts. A datagram is copied once, into a landing
// frame of the transport's arena, where the core classifies it and reads its fields; when it is
// routed, that frame itself goes to the queue (handOver), and the framer takes a fresh one. One
// Framer per transport (one thread).
import type { Arena } from "../memory/arena.ts";
import { FRAME_DATA } from "../memory/core.ts";
import { poolExhausted } from "../errors/errors.ts";
import { validateInteger } from "../errors/validate.ts";
import { trySendFrame, type Sender, type TrySendResult } from "../channel/sender.ts";
import { MAX_DATAGRAM_BYTES } from "./constants.ts";

/** parse()'s answer when the frame pool is empty, so there is nowhere to parse (counted as a full queue). */
export const PARSE_NO_FRAME = -100;

export class Framer {
  readonly #arena: Arena;
  /** The frame the next datagram lands in; 0 after a hand-over found the pool empty. */
  #landing: number;
  #landed = 0;

  constructor(arena: Arena) {
    validateInteger(arena.frameBytes, "arena.frameBytes", FRAME_DATA + MAX_DATAGRAM_BYTES + 64);
    const landing = arena.core.allocFrame();
    if (landing === 0) throw poolExhausted("the transport's landing frame", Framer);
    this.#arena = arena;
    this.#landing = landing;
  }

  /** Copies the datagram in and classifies it: its kind, or a negative WIRE_* reason (or PARSE_NO_FRAME). */
  parse(datagram: Uint8Array): number {
    const { core } = this.#arena;
    const length = datagram.length;
    if (length > MAX_DATAGRAM_BYTES || length === 0) return core.wireParse(0, length); // refused on its length alone
    if (this.#landing === 0 && (this.#landing = core.allocFrame()) === 0) return PARSE_NO_FRAME;
    this.#arena.bytes.set(datagram, this.#landing + FRAME_DATA);
    this.#landed = length;
    return core.wireParse(this.#landing + FRAME_DATA, length);
  }

  /** The datagram parse() last accepted, where it lies in the arena (valid until the next parse). */
  landed(): Uint8Array {
    const at = this.#landing + FRAME_DATA;
    return this.#arena.bytes.subarray(at, at + this.#landed);
  }

  /** The frame the datagram parse() last accepted lies in: what handOver() gives the queue. */
  get landingFrame(): number {
    return this.#landing;
  }

  /** The connection id of the packet parse() last accepted (DATA's destination; a handshake packet's). */
  connection(): number {
    return this.#arena.core.wireConnection(this.#landing + FRAME_DATA) >>> 0;
  }

  /** Packet number of the DATA packet parse() last accepted (below 2^53). */
  packetNumber(): number {
    const { core } = this.#arena;
    const at = this.#landing + FRAME_DATA;
    return core.wirePacketNumberHigh(at) * 2 ** 32 + (core.wirePacketNumberLow(at) >>> 0);
  }

  /**
   * trySend() of the datagram parse() last accepted, without copying it again: its frame goes into
   * the queue through `inlet` (the queue must live in this framer's arena), and the next datagram
   * lands in a fresh one.
   */
  handOver(inlet: Sender): TrySendResult {
    const outcome = trySendFrame(inlet, this.#landing, this.#landed);
    if (outcome === "sent") this.#landing = this.#arena.core.allocFrame(); // 0 if the pool is empty: parse() tries again
    return outcome;
  }

  dispose(): void {
    if (this.#landing !== 0) this.#arena.core.freeFrame(this.#landing);
    this.#landing = 0;
  }
}
