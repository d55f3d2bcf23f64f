// Bounds on the work strangers can cause, each with a bound on its own memory. All take `now` (ms)
// as an argument, so tests drive them in virtual time.
import { invalidArgType, validateInteger, validateNumber, validateObject } from "../errors/validate.ts";

/**
 * At most one event per `intervalMs` per key (one intro decryption per second per source address,
 * as freenet). Remembers at most `maxKeys` keys: Map order is insertion order, so the oldest entry is
 * always first and expiry is a walk from the front.
 */
export class PerKeyInterval {
  readonly #last = new Map<string, number>();
  readonly #intervalMs: number;
  readonly #maxKeys: number;

  constructor(intervalMs: number, maxKeys: number) {
    this.#intervalMs = intervalMs;
    this.#maxKeys = maxKeys;
  }

  /** True (and the event is recorded) if `key` had no event in the last interval. */
  tryTake(key: string, now: number): boolean {
    const previous = this.#last.get(key);
    if (previous !== undefined && now - previous < this.#intervalMs) return false;
    this.#last.delete(key);
    this.#last.set(key, now);
    for (const [oldest, at] of this.#last) {
      if (now - at < this.#intervalMs && this.#last.size <= this.#maxKeys) break;
      this.#last.delete(oldest);
    }
    return true;
  }
}

export interface AcceptRampStep {
  /** This step applies while the transport is younger than this, in ms. */
  untilMs: number;
  /** New inbound handshakes allowed per 1 s window. */
  perSecond: number;
}

/** freenet's gateway ramp: 5/s for the first 30 s, 20/s until 2 min, then unlimited. */
export const DEFAULT_ACCEPT_RAMP: readonly AcceptRampStep[] = [
  { untilMs: 30_000, perSecond: 5 },
  { untilMs: 120_000, perSecond: 20 },
];

/** `steps` checked (an array of { untilMs ≥ 0, perSecond: an integer ≥ 0 }), or `fallback`; `name` names it in errors. */
export function checkAcceptRamp(steps: readonly AcceptRampStep[] | undefined, name: string, fallback: readonly AcceptRampStep[]): readonly AcceptRampStep[] {
  if (steps === undefined) return fallback;
  if (!Array.isArray(steps)) throw invalidArgType(name, "an instance of Array", steps);
  steps.forEach((step: unknown, i) => {
    validateObject(step, `${name}[${i}]`);
    const { untilMs, perSecond } = step as Partial<AcceptRampStep>;
    validateNumber(untilMs, `${name}[${i}].untilMs`, { min: 0 });
    validateInteger(perSecond, `${name}[${i}].perSecond`, 0);
  });
  return steps;
}

/** Counts new inbound handshakes in 1 s tumbling windows against the step for the transport's age. */
export class AcceptRamp {
  #windowStart = -Infinity;
  #inWindow = 0;
  readonly #steps: readonly AcceptRampStep[];
  readonly #startedAt: number;

  constructor(steps: readonly AcceptRampStep[], startedAt: number) {
    this.#steps = steps;
    this.#startedAt = startedAt;
  }

  tryTake(now: number): boolean {
    const age = now - this.#startedAt;
    const step = this.#steps.find((s) => age < s.untilMs);
    if (step === undefined) return true;
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= step.perSecond) return false;
    this.#inWindow++;
    return true;
  }
}

/** Ids or addresses closed in the last `graceMs`: late packets for them are dropped cheaply. */
export class RecentlyClosed<K> {
  readonly #closedAt = new Map<K, number>();
  readonly #graceMs: number;
  readonly #maxEntries: number;

  constructor(graceMs: number, maxEntries: number) {
    this.#graceMs = graceMs;
    this.#maxEntries = maxEntries;
  }

  add(key: K, now: number): void {
    this.#closedAt.delete(key);
    this.#closedAt.set(key, now);
    this.#expire(now);
  }

  has(key: K, now: number): boolean {
    const at = this.#closedAt.get(key);
    return at !== undefined && now - at < this.#graceMs;
  }

  delete(key: K): void {
    this.#closedAt.delete(key);
  }

  #expire(now: number): void {
    for (const [oldest, at] of this.#closedAt) {
      if (now - at < this.#graceMs && this.#closedAt.size <= this.#maxEntries) break;
      this.#closedAt.delete(oldest);
    }
  }
}
