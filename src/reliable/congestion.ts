// Congestion control: NewReno as RFC 9002 §7 specifies it for QUIC (slow start, congestion avoidance,
// one window reduction per recovery period, persistent congestion collapses the window), with a pacer
// (§7.7). Chosen over LEDBAT++ and BBRv3 because it is fully specified by one RFC, has no model
// parameters to tune, and is what QUIC stacks ship by default; docs/design.md says more.

import { MAX_SEND_DATAGRAM_BYTES } from "../wire/constants.ts";

/** RFC 9002 §7.2: min(10 × size, max(14720, 2 × size)). */
const INITIAL_WINDOW_BYTES = Math.min(10 * MAX_SEND_DATAGRAM_BYTES, Math.max(14_720, 2 * MAX_SEND_DATAGRAM_BYTES));
/** RFC 9002 §7.2: 2 × size. */
const MINIMUM_WINDOW_BYTES = 2 * MAX_SEND_DATAGRAM_BYTES;
/** RFC 9002 §7.3.2: halve on loss. */
const LOSS_REDUCTION_FACTOR = 0.5;
/** RFC 9002 §7.7: pace at 1.25 × cwnd / SRTT so the window is not the only brake. */
const PACING_GAIN = 1.25;
/** The pacer lets this much time's worth of sending out at once: our timers tick about once a millisecond. */
const PACING_BURST_MS = 2;

export class NewReno {
  #window = INITIAL_WINDOW_BYTES;
  #slowStartThreshold = Infinity;
  /** Packets sent before this time belong to the current recovery period: their loss does not cut again. */
  #recoveryStartTime = -Infinity;
  #bytesInFlight = 0;
  /** Set when the sender had data but the window stopped it; growth needs it (RFC 9002 §7.8). */
  #windowLimited = false;

  get window(): number {
    return this.#window;
  }

  get bytesInFlight(): number {
    return this.#bytesInFlight;
  }

  /** Whether a packet of `bytes` may go now. Records that the window was the limit when it was. */
  canSend(bytes: number): boolean {
    if (this.#bytesInFlight + bytes <= this.#window) return true;
    this.#windowLimited = true;
    return false;
  }

  onSent(bytes: number): void {
    this.#bytesInFlight += bytes;
  }

  onAcked(bytes: number, sentTime: number): void {
    this.#bytesInFlight -= bytes;
    if (sentTime <= this.#recoveryStartTime || !this.#windowLimited) return;
    if (this.#window < this.#slowStartThreshold) this.#window += bytes;
    else this.#window += (MAX_SEND_DATAGRAM_BYTES * bytes) / this.#window;
  }

  /** A packet is gone from the network without an ack (lost, or abandoned). */
  onRemoved(bytes: number): void {
    this.#bytesInFlight -= bytes;
  }

  /** A loss of a packet sent at `sentTime`: one reduction per recovery period. */
  onCongestion(sentTime: number, now: number): void {
    if (sentTime <= this.#recoveryStartTime) return;
    this.#recoveryStartTime = now;
    this.#slowStartThreshold = Math.max(MINIMUM_WINDOW_BYTES, this.#window * LOSS_REDUCTION_FACTOR);
    this.#window = this.#slowStartThreshold;
    this.#windowLimited = false;
  }

  /** The retransmission timer expired: the path may be gone; start again from the minimum window. */
  onRetransmissionTimeout(now: number): void {
    this.#recoveryStartTime = now;
    this.#slowStartThreshold = Math.max(MINIMUM_WINDOW_BYTES, this.#window * LOSS_REDUCTION_FACTOR);
    this.#window = MINIMUM_WINDOW_BYTES;
  }

  /** The sender ran out of data before the window: the window is not being tested, so it must not grow. */
  onApplicationLimited(): void {
    this.#windowLimited = false;
  }
}

/** A token bucket refilled at 1.25 × cwnd / SRTT. */
export class Pacer {
  #tokens = INITIAL_WINDOW_BYTES;
  #lastRefill = 0;

  /** The time `bytes` may go (≤ now: at once). Never consumes. */
  nextSendTime(bytes: number, window: number, smoothedRttMs: number, now: number): number {
    const rate = (PACING_GAIN * window) / Math.max(smoothedRttMs, 0.001); // bytes per ms
    const capacity = Math.max(INITIAL_WINDOW_BYTES, rate * PACING_BURST_MS);
    this.#tokens = Math.min(capacity, this.#tokens + (now - this.#lastRefill) * rate);
    this.#lastRefill = now;
    if (this.#tokens >= bytes) return now;
    return now + (bytes - this.#tokens) / rate;
  }

  onSent(bytes: number): void {
    this.#tokens -= bytes;
  }
}
