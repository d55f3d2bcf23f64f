// The bounded, jittered schedule of a handshake's re-sends (intros, the confirm) and its options.
import { validateInteger, validateNumber, validateObject } from "../errors/validate.ts";

export interface RetryOptions {
  /** Between attempts, before jitter. Default 200 ms. */
  intervalMs?: number;
  /** Each interval is scaled by a random factor in [1 − jitter, 1 + jitter]. Default 0.2. */
  jitter?: number;
  /** Default 40. */
  maxAttempts?: number;
  /** Give up this long after the first attempt. Default 3000 ms. */
  deadlineMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { intervalMs: 200, jitter: 0.2, maxAttempts: 40, deadlineMs: 3000 };

/** A bounded, jittered retry schedule (intro re-sends, confirm re-sends). */
export class RetrySchedule {
  attempts = 0;
  #nextAt: number;
  readonly startedAt: number;
  readonly deadlineAt: number;
  readonly #options: Required<RetryOptions>;
  readonly #random: () => number;

  constructor(options: Required<RetryOptions>, now: number, random: () => number) {
    this.#options = options;
    this.#random = random;
    this.startedAt = now;
    this.#nextAt = now;
    this.deadlineAt = now + options.deadlineMs;
  }

  /** 'send' (an attempt is due now: it is counted), 'wait' (until nextDeadline()), or 'expired'. */
  poll(now: number): "send" | "wait" | "expired" {
    if (now >= this.deadlineAt || (this.attempts >= this.#options.maxAttempts && now >= this.#nextAt)) return "expired";
    if (now < this.#nextAt) return "wait";
    this.attempts++;
    const { intervalMs, jitter } = this.#options;
    this.#nextAt = now + intervalMs * (1 - jitter + 2 * jitter * this.#random());
    return "send";
  }

  nextDeadline(): number {
    return Math.min(this.#nextAt, this.deadlineAt);
  }
}

/** `options` over `base`, every value checked; `name` names the options object in errors. */
export function checkRetryOptions(options: RetryOptions | undefined, name: string, base: Required<RetryOptions>): Required<RetryOptions> {
  if (options === undefined) return { ...base };
  validateObject(options, name);
  const merged = { ...base, ...options };
  validateNumber(merged.intervalMs, `${name}.intervalMs`, { above: 0, below: Infinity });
  validateInteger(merged.maxAttempts, `${name}.maxAttempts`, 1);
  validateNumber(merged.deadlineMs, `${name}.deadlineMs`, { above: 0, below: Infinity });
  validateNumber(merged.jitter, `${name}.jitter`, { min: 0, below: 1 });
  return merged;
}
