// The bounded, jittered schedule of a handshake's re-sends (intros, the confirm) and its options.
import { keysOf, validateInteger, validateKnownKeys, validateNumber, validateObject } from "../errors/validate.ts";

export interface RetryOptions {
  /** Between attempts, before jitter. Default 200 ms. */
  intervalMs?: number;
  /** Each interval is scaled by a random factor in [1 − jitter, 1 + jitter]. Default 0.2. */
  jitter?: number;
  /** Default 40. */
  maxAttempts?: number;
  /**
   * Give up this long after the first attempt. Default 3000 ms. A responder that answered with a
   * COOKIE (up, and loaded) gets 3 × this, and the re-sends from then on back off (doubling, to 1.6 s).
   */
  deadlineMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { intervalMs: 200, jitter: 0.2, maxAttempts: 40, deadlineMs: 3000 };

/**
 * A responder that is up but loaded (it sent a COOKIE reply) gets this many deadlineMs from the start
 * in all: the 3 s default gave up on a gateway that was slow, not unreachable (a storm of 1,000
 * peers: 763–984 connected in 3 s, all 1,000 given 10 s, issue 13). Anyone who sees an intro can
 * forge its cookie reply: this bounds what that buys (a dead peer's connect fails at 9 s, not 3).
 */
export const LOADED_RESPONDER_DEADLINES = 3;
/** After a COOKIE reply each interval is twice the last, up to this (as QUIC backs off its Initials). */
export const LOADED_RESPONDER_MAX_INTERVAL_MS = 1600;

/** A bounded, jittered retry schedule (intro re-sends, confirm re-sends). */
export class RetrySchedule {
  attempts = 0;
  #nextAt: number;
  /** Between attempts, before jitter: the options' intervalMs until the responder says it is loaded. */
  #intervalMs: number;
  #responderIsLoaded = false;
  /** An extra attempt went since the last scheduled one. */
  #extraTaken = false;
  readonly startedAt: number;
  #deadlineAt: number;
  readonly #options: Required<RetryOptions>;
  readonly #random: () => number;

  constructor(options: Required<RetryOptions>, now: number, random: () => number) {
    this.#options = options;
    this.#random = random;
    this.startedAt = now;
    this.#nextAt = now;
    this.#intervalMs = options.intervalMs;
    this.#deadlineAt = now + options.deadlineMs;
  }

  /**
   * An attempt out of schedule (an answer to a COOKIE, at once): at most one between two scheduled
   * ones, counted in `attempts` and within maxAttempts. Answers whether it may go.
   */
  takeExtraAttempt(): boolean {
    if (this.#extraTaken || this.attempts >= this.#options.maxAttempts) return false;
    this.#extraTaken = true;
    this.attempts++;
    return true;
  }

  /** When the schedule gives up (moved by responderLoaded()). */
  get deadlineAt(): number {
    return this.#deadlineAt;
  }

  /** Whether responderLoaded() was called. */
  get responderIsLoaded(): boolean {
    return this.#responderIsLoaded;
  }

  /**
   * The responder is up but loaded (a COOKIE reply that opened): the deadline moves to
   * LOADED_RESPONDER_DEADLINES × deadlineMs from the start, and the intervals from here on double, so
   * a loaded responder's socket gets fewer copies of what it has not read yet.
   */
  responderLoaded(): void {
    this.#deadlineAt = this.startedAt + LOADED_RESPONDER_DEADLINES * this.#options.deadlineMs;
    this.#responderIsLoaded = true;
  }

  /** 'send' (an attempt is due now: it is counted), 'wait' (until nextDeadline()), or 'expired'. */
  poll(now: number): "send" | "wait" | "expired" {
    if (now >= this.#deadlineAt || (this.attempts >= this.#options.maxAttempts && now >= this.#nextAt)) return "expired";
    if (now < this.#nextAt) return "wait";
    this.attempts++;
    this.#extraTaken = false;
    if (this.#responderIsLoaded) this.#intervalMs = Math.min(2 * this.#intervalMs, Math.max(LOADED_RESPONDER_MAX_INTERVAL_MS, this.#options.intervalMs));
    const { jitter } = this.#options;
    this.#nextAt = now + this.#intervalMs * (1 - jitter + 2 * jitter * this.#random());
    return "send";
  }

  nextDeadline(): number {
    return Math.min(this.#nextAt, this.#deadlineAt);
  }
}

export const RETRY_OPTION_KEYS = keysOf<RetryOptions>()("intervalMs", "jitter", "maxAttempts", "deadlineMs");

/** `options` over `base`, every value checked; `name` names the options object in errors. */
export function checkRetryOptions(options: RetryOptions | undefined, name: string, base: Required<RetryOptions>): Required<RetryOptions> {
  if (options === undefined) return { ...base };
  validateObject(options, name);
  validateKnownKeys(options, name, RETRY_OPTION_KEYS);
  const merged = { ...base, ...options };
  validateNumber(merged.intervalMs, `${name}.intervalMs`, { above: 0, below: Infinity });
  validateInteger(merged.maxAttempts, `${name}.maxAttempts`, 1);
  validateNumber(merged.deadlineMs, `${name}.deadlineMs`, { above: 0, below: Infinity });
  validateNumber(merged.jitter, `${name}.jitter`, { min: 0, below: 1 });
  return merged;
}
