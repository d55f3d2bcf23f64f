// What a stranger may cost a responder, per source IP and in all: intro decryptions, pending
// handshakes, the gateway's accept ramp, connections; and the ids closed a moment ago. Every table has
// a bound on its own memory, and every method takes `now` (ms), so tests drive them in virtual time.
//
// "Per IP" means per IPv4 address, or per IPv6 /64 (one host usually holds a whole /64, so a finer key
// would let it multiply its budget by choosing addresses).
import { isIP } from "node:net";
import { invalidArgType, validateInteger, validateNumber, validateObject } from "../errors/validate.ts";
import { ipv6Groups, unmapped, type Address } from "../wire/address.ts";

/** The key budgets are kept under: the IPv4 address, or the first four groups of an IPv6 address. */
export function ipKey(host: string): string {
  const address = unmapped(host);
  if (isIP(address) !== 6) return address;
  return `${ipv6Groups(address).slice(0, 4).map((group) => group.toString(16)).join(":")}::/64`;
}

/**
 * Token buckets by key: `burst` events at once, refilled at `perSecond`. Remembers at most `maxKeys`
 * keys; beyond that the least recently used is forgotten (a forgotten key starts full again, which a
 * spoofing attacker gains nothing from: the buckets guard per-IP fairness, the global bounds guard work).
 */
export class KeyedBuckets {
  readonly #tokens = new Map<string, { tokens: number; at: number }>();
  readonly #burst: number;
  readonly #perSecond: number;
  readonly #maxKeys: number;

  constructor(burst: number, perSecond: number, maxKeys: number) {
    this.#burst = burst;
    this.#perSecond = perSecond;
    this.#maxKeys = maxKeys;
  }

  /** Takes `amount` tokens (default one) for `key` if it has them. */
  tryTake(key: string, now: number, amount = 1): boolean {
    const bucket = this.#tokens.get(key);
    let tokens = this.#burst;
    if (bucket !== undefined) {
      tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) * this.#perSecond) / 1000);
      this.#tokens.delete(key); // re-inserted below: Map order is then least recently used first
    }
    if (tokens < amount) {
      this.#tokens.set(key, { tokens, at: now });
      return false;
    }
    this.#tokens.set(key, { tokens: tokens - amount, at: now });
    if (this.#tokens.size > this.#maxKeys) this.#tokens.delete(this.#tokens.keys().next().value!);
    return true;
  }
}

/** Counts of things held per key (pending handshakes, connections), each under a per-key cap. */
export class KeyedCounts {
  readonly #counts = new Map<string, number>();

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  add(key: string): void {
    this.#counts.set(key, this.count(key) + 1);
  }

  remove(key: string): void {
    const count = this.count(key) - 1;
    if (count > 0) this.#counts.set(key, count);
    else this.#counts.delete(key);
  }
}

/** No one IP may take more than this share of a ramp window (at least one), so a few IPs cannot use it up. */
const RAMP_SHARE_PER_IP = 4;

/**
 * Whether `from` can only be this machine: ::1, or 127.0.0.0/8 as plain IPv4 (what an IPv4 socket
 * reports), never through a relay. The kernel drops both from any other interface (martian sources);
 * it does not drop ::ffff:127.0.0.1 or ::2 arriving at a dual-stack socket, so neither counts (a
 * review reached a fresh gateway from another network namespace with both, and took the whole ramp).
 */
export function isLoopbackSource(from: Address): boolean {
  return from.relay === undefined && (from.host === "::1" || (isIP(from.host) === 4 && from.host.startsWith("127.")));
}

/**
 * New inbound connections per 1 s window for the transport's age, charged only for intros that are
 * fully proven (mac1, cookie when under load, both seals, a fresh timestamp), so garbage and replays
 * never use it; and per IP at most a quarter of each window, except loopback (isLoopbackSource):
 * peers on the gateway's own machine (tests, demos, co-located nodes) share the whole window. With the default 5/s, one
 * IP's quarter is 1/s: five peers on 127.0.0.1 took 4 s to connect to a fresh gateway, and two of
 * them timed out.
 */
export class AcceptRamp {
  readonly #steps: readonly AcceptRampStep[];
  readonly #startedAt: number;
  #windowStart = -Infinity;
  #inWindow = 0;
  readonly #perIp = new Map<string, number>();

  constructor(steps: readonly AcceptRampStep[], startedAt: number) {
    this.#steps = steps;
    this.#startedAt = startedAt;
  }

  /** A connection from `ip` (its budget key), `loopback` if isLoopbackSource said so of its address. */
  tryTake(ip: string, now: number, loopback = false): boolean {
    const step = this.#steps.find((s) => now - this.#startedAt < s.untilMs);
    if (step === undefined) return true;
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
      this.#perIp.clear();
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    const share = loopback ? step.perSecond : Math.max(1, Math.floor(step.perSecond / RAMP_SHARE_PER_IP));
    if (this.#inWindow >= step.perSecond || fromIp >= share) return false;
    this.#inWindow++;
    this.#perIp.set(ip, fromIp + 1);
    return true;
  }
}

/** Events in the current 1 s window (intros decrypted): the load signal for cookies. */
export class WindowCounter {
  #windowStart = -Infinity;
  #count = 0;

  add(now: number): void {
    this.#roll(now);
    this.#count++;
  }

  count(now: number): number {
    this.#roll(now);
    return this.#count;
  }

  #roll(now: number): void {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
    }
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
