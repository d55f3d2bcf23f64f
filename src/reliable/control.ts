// Control frames (0x20 to 0x2f: the rendezvous's requests and introductions, observed and local
// addresses) ride a connection's Session as credits do, retransmitted until acknowledged and never
// delivered to recv(). Unlike credits they are not idempotent (an introduction makes its receiver
// connect), so each carries a control sequence: the receiver hands each one to its host once, in
// sequence order, and ignores copies.
//
// Bounds: a sender has at most CONTROL_WINDOW frames unacknowledged past its oldest one and
// MAX_QUEUED_CONTROL_FRAMES queued in all (send() answers false beyond: the caller refuses what it
// was asked); a receiver holds at most CONTROL_WINDOW frames, and a frame numbered past its window
// (which a sender keeping its own window never sends) is dropped and counted. The host takes the
// frames delivered by each packet before the next packet is handled.
import { internalAssertion } from "../errors/errors.ts";
import { CONTROL_HEADER_BYTES, type PacketWriter } from "./frames.ts";
import { withSent } from "./sent-lists.ts";

/**
 * Control frames in flight past the oldest unacknowledged one, and held by a receiver past the next
 * one it expects. The sender's window keeps the receiver's: whatever it acknowledged, it received.
 */
export const CONTROL_WINDOW = 16;
/** Control frames a sender queues (sent or not) before send() refuses more. */
export const MAX_QUEUED_CONTROL_FRAMES = 64;
/** The largest control frame body: the largest the rendezvous sends is 132 bytes. */
const MAX_CONTROL_BODY_BYTES = 256;

interface OutgoingControl {
  sequence: number;
  type: number;
  body: Uint8Array;
  state: "due" | "inFlight" | "acknowledged";
}

/** What a sent packet carried of control frames, so its acknowledgement or loss can settle them. */
export interface ControlSent {
  controls: readonly OutgoingControl[];
}

/** A control frame delivered to the host. */
export interface ControlFrame {
  type: number;
  body: Uint8Array;
}

export class ControlFrames {
  /** Oldest first: acknowledged ones leave from the front, so the window is [queue[0].sequence, + CONTROL_WINDOW). */
  readonly #queue: OutgoingControl[] = [];
  #nextSequence = 0;
  /** The next sequence the host has not been given. */
  #nextExpected = 0;
  /** Frames received past a gap, by sequence (at most CONTROL_WINDOW). */
  readonly #ahead = new Map<number, ControlFrame>();
  readonly #ready: ControlFrame[] = [];
  /** Frames numbered past the receive window (a sender that broke the protocol), ignored. */
  dropped = 0;

  /** Queues a frame; false when MAX_QUEUED_CONTROL_FRAMES are queued (nothing is queued then). */
  send(type: number, body: Uint8Array): boolean {
    if (this.#queue.length >= MAX_QUEUED_CONTROL_FRAMES) return false;
    if (body.length > MAX_CONTROL_BODY_BYTES) throw internalAssertion(`control frame body of ${body.length} bytes (at most ${MAX_CONTROL_BODY_BYTES})`);
    this.#queue.push({ sequence: this.#nextSequence++, type, body: new Uint8Array(body), state: "due" });
    return true;
  }

  /** How many more frames send() would take now. */
  get room(): number {
    return MAX_QUEUED_CONTROL_FRAMES - this.#queue.length;
  }

  /** Whether a queued frame may be sent now (it is due and inside the window). */
  get due(): boolean {
    const end = this.#windowEnd();
    for (const frame of this.#queue) {
      if (frame.sequence >= end) return false;
      if (frame.state === "due") return true;
    }
    return false;
  }

  /** Writes the due frames that fit, oldest first, and records them in the packet. */
  write(writer: PacketWriter, packet: ControlSent): void {
    const end = this.#windowEnd();
    for (const frame of this.#queue) {
      if (frame.sequence >= end || writer.remaining < CONTROL_HEADER_BYTES + frame.body.length) return;
      if (frame.state !== "due") continue;
      writer.control(frame.type, frame.sequence, frame.body);
      frame.state = "inFlight";
      packet.controls = withSent(packet.controls, frame);
    }
  }

  onAcked(packet: ControlSent): void {
    for (const frame of packet.controls) frame.state = "acknowledged";
    while (this.#queue.length > 0 && this.#queue[0]!.state === "acknowledged") this.#queue.shift();
  }

  /** The packet is lost: its frames go again, unless another copy was acknowledged meanwhile. */
  onLost(packet: ControlSent): void {
    for (const frame of packet.controls) if (frame.state === "inFlight") frame.state = "due";
  }

  /** The connection is over: nothing more is sent. */
  discard(): void {
    this.#queue.length = 0;
  }

  /** A control frame arrived (`body` is valid only during the call). */
  receive(type: number, sequence: number, body: Uint8Array): void {
    if (sequence < this.#nextExpected || this.#ahead.has(sequence)) return; // a copy: its ACK was lost
    // The window starts at the oldest frame the host has not taken, so what is held (ready and ahead)
    // stays within CONTROL_WINDOW. The host takes frames after each packet, so a sender keeping its
    // own window (past its oldest unacknowledged frame, which we received) always fits.
    if (sequence >= this.#nextExpected - this.#ready.length + CONTROL_WINDOW) {
      this.dropped++;
      return;
    }
    this.#ahead.set(sequence, { type, body: new Uint8Array(body) });
    for (let next = this.#ahead.get(this.#nextExpected); next !== undefined; next = this.#ahead.get(this.#nextExpected)) {
      this.#ahead.delete(this.#nextExpected++);
      this.#ready.push(next);
    }
  }

  /** The next frame for the host, in sequence order; undefined when none is waiting. */
  poll(): ControlFrame | undefined {
    return this.#ready.shift();
  }

  #windowEnd(): number {
    return (this.#queue[0]?.sequence ?? this.#nextSequence) + CONTROL_WINDOW;
  }
}
