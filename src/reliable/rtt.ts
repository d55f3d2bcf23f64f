// Round-trip time and the retransmission timeout, per RFC 6298: its initial RTO and 60 s ceiling, a
// lower floor than its 1 s (a LAN's RTT is well under it), and a cap on the backoff (below).

/** RFC 6298's initial RTO, before any sample. */
const INITIAL_RTO_MS = 1000;
/** Upper bound of the RTO after backoff (RFC 6298 allows ≥ 60 s). */
export const MAX_RTO_MS = 60_000;
/** Default lower bound of the RTO (RFC 6298 says 1 s; freenet uses 500 ms; loopback and LANs need less). */
export const DEFAULT_RTO_FLOOR_MS = 200;
/**
 * Backoff stops doubling here (and at the ceiling the owner gives: an eighth of the dead-peer
 * timeout), so retransmissions keep probing a path that went quiet: unbounded doubling would wait
 * 280 s for 12 timeouts, longer than the idle timeout.
 */
const MAX_BACKOFF = 16;
/** Clock granularity G of RFC 6298 §2: our timers fire with about 1 ms resolution. */
const CLOCK_GRANULARITY_MS = 1;

export class RttEstimator {
  readonly #floorMs: number;
  readonly #backoffCeilingMs: number;
  #smoothed = 0;
  #variation = 0;
  #latest = 0;
  #min = Infinity;
  #hasSample = false;
  /** ×2 per expired RTO; back to 1 on the next sample (RFC 6298 §5.7). */
  #backoff = 1;

  /** `backoffCeilingMs`: backoff never takes the RTO above this (an RTO already above it is not cut). */
  constructor(floorMs: number, backoffCeilingMs = MAX_RTO_MS) {
    this.#floorMs = floorMs;
    this.#backoffCeilingMs = backoffCeilingMs;
  }

  get hasSample(): boolean {
    return this.#hasSample;
  }

  /** SRTT in ms (the initial RTO's worth of guess before any sample, so timers derived from it are sane). */
  get smoothed(): number {
    return this.#hasSample ? this.#smoothed : INITIAL_RTO_MS / 3;
  }

  get variation(): number {
    return this.#variation;
  }

  get latest(): number {
    return this.#latest;
  }

  get min(): number {
    return this.#min;
  }

  /**
   * One RTT measurement from a packet sent once and acknowledged (Karn's rule: every packet is sent
   * once, with its own number, so the sample is never ambiguous). `ackDelayMs` is what the peer reports
   * it held the acknowledgement (at most `maxAckDelayMs`): it is taken off, so the estimate is the
   * path's and not our delayed-ACK timer's (the peer is authenticated, so its report is trusted).
   */
  addSample(sampleMs: number, ackDelayMs: number, maxAckDelayMs: number): void {
    const delay = Math.min(ackDelayMs, maxAckDelayMs);
    const adjusted = sampleMs - delay > 0 ? sampleMs - delay : sampleMs;
    this.#min = Math.min(this.#min, adjusted);
    this.#latest = adjusted;
    if (!this.#hasSample) {
      this.#smoothed = adjusted;
      this.#variation = adjusted / 2;
      this.#hasSample = true;
    } else {
      this.#variation = 0.75 * this.#variation + 0.25 * Math.abs(this.#smoothed - adjusted);
      this.#smoothed = 0.875 * this.#smoothed + 0.125 * adjusted;
    }
    this.#backoff = 1;
  }

  /** RTO = SRTT + max(G, 4·RTTVAR), clamped to [floor, 60 s], times the backoff (up to the ceiling, still ≤ 60 s). */
  get rto(): number {
    const base = Math.max(this.#floorMs, this.#hasSample ? this.#smoothed + Math.max(CLOCK_GRANULARITY_MS, 4 * this.#variation) : INITIAL_RTO_MS);
    return Math.min(MAX_RTO_MS, Math.max(base, Math.min(base * this.#backoff, this.#backoffCeilingMs)));
  }

  /** The backoff starts over without a sample (the connection moved to a new, validated address). */
  clearBackoff(): void {
    this.#backoff = 1;
  }

  /** An RTO expired: double the next one (RFC 6298 §5.5). */
  backOff(): void {
    if (this.rto < MAX_RTO_MS && this.#backoff < MAX_BACKOFF) this.#backoff *= 2;
  }
}
