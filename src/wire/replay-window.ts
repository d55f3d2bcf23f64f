// Sliding replay window over packet numbers (RFC 4303 §3.4.3, as IPsec and WireGuard do): a packet
// is new if its number is above the highest seen, or within the window below it and not yet seen.
// Older ones, and repeats, are replays. check() is called before the (expensive) open and
// record() only after the packet authenticated, so a forged number cannot move the window.

/** Packets the window remembers below the highest number seen. */
export const REPLAY_WINDOW_PACKETS = 128;
const WORDS = REPLAY_WINDOW_PACKETS / 32;

export class ReplayWindow {
  /** Highest packet number recorded; -1 before the first. */
  #highest = -1;
  /** Bit i (word i >> 5, bit i & 31) set = packet (highest − i) was seen. */
  readonly #seen = new Uint32Array(WORDS);

  /** True if `packetNumber` would be accepted now. */
  check(packetNumber: number): boolean {
    if (packetNumber > this.#highest) return true;
    const age = this.#highest - packetNumber;
    if (age >= REPLAY_WINDOW_PACKETS) return false;
    return (this.#seen[age >>> 5]! & (1 << (age & 31))) === 0;
  }

  /** Marks an authenticated packet as seen. */
  record(packetNumber: number): void {
    if (packetNumber > this.#highest) {
      this.#shift(this.#highest < 0 ? REPLAY_WINDOW_PACKETS : packetNumber - this.#highest);
      this.#highest = packetNumber;
      this.#seen[0]! |= 1;
      return;
    }
    const age = this.#highest - packetNumber;
    this.#seen[age >>> 5]! |= 1 << (age & 31);
  }

  /** Ages every bit by `by` packets. */
  #shift(by: number): void {
    const seen = this.#seen;
    if (by >= REPLAY_WINDOW_PACKETS) {
      seen.fill(0);
      return;
    }
    const words = by >>> 5;
    const bits = by & 31;
    for (let i = WORDS - 1; i >= 0; i--) {
      const from = i - words;
      const low = from >= 0 ? seen[from]! : 0;
      const lower = from - 1 >= 0 ? seen[from - 1]! : 0;
      seen[i] = bits === 0 ? low : ((low << bits) | (lower >>> (32 - bits))) >>> 0;
    }
  }
}
