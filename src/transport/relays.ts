// Relays (docs/wire.md, "Relays"): when two peers cannot reach each other directly, a gateway both
// are connected to forwards their datagrams. It forwards them whole and opaque: the peers' handshake
// and data are end to end, so the gateway can neither read nor alter what it carries (a tampered
// datagram does not open at the peer). A relayed datagram is [RELAY][wire version][relay id][datagram].
//
// - Gateway side: a relay joins two connections the gateway holds. Each peer has a relay id of its
//   own; a datagram from peer A with A's id is forwarded to B's current address with B's id, and back.
//   Only a datagram from the address of the connection the id belongs to is forwarded, so strangers
//   cannot use a relay, and nothing is ever sent to an address that is not a live connection's.
//   Bytes are counted against a per-relay and a total budget (token buckets); past them, dropped.
// - Peer side: the relay ids its gateways granted it. A relayed datagram is unwrapped and routed as if
//   it came from the virtual address { gateway host, gateway port, relay id }; a connection whose path
//   is such an address sends through the gateway.
//
// The listener calls receive() synchronously, once per RELAY datagram: nothing here awaits or throws.
import { limitReached } from "../errors/errors.ts";
import { keysOf, validateBoolean, validateInteger, validateKnownKeys, validateObject } from "../errors/validate.ts";
import { ownedCopy } from "../memory/owned-copy.ts";
import { randomUint32 } from "../memory/random-pool.ts";
import { sameAddress, type Address } from "../wire/address.ts";
import { KIND_RELAY, RELAY_HEADER_BYTES, WIRE_VERSION } from "../wire/constants.ts";
import { KeyedBuckets } from "../handshake/admission.ts";
import type { SessionDriver } from "./session-driver.ts";
import type { DropReason } from "./stats.ts";

/** Bytes per second one relay (both directions) may carry, by default. */
export const DEFAULT_RELAY_BYTES_PER_SECOND = 4 * 1024 * 1024;
/** Bytes per second all of a gateway's relays together may carry, by default. */
export const DEFAULT_RELAY_TOTAL_BYTES_PER_SECOND = 32 * 1024 * 1024;
/** Relays a gateway holds at once, by default. */
export const DEFAULT_MAX_RELAYS = 256;
/** Relay ids a peer accepts from its gateways at once. */
const MAX_GRANTED = 64;
/** A budget holds a quarter of a second's bytes: a burst, not a backlog. */
const BURST_SECONDS = 0.25;
/**
 * A full table makes room by closing relays idle this long: a relayed connection's keep-alives (every
 * 5 s) keep its relay in use, so an idle one is a pair that moved to a direct path, or left.
 */
export const RELAY_IDLE_MS = 60_000;
/**
 * Relays one connection may be in at once: a peer relayed to this many others at a time is already
 * unusual, and one connection cannot take the table from the others (outsider suite: one peer asking
 * for 8 introductions filled an 8-relay table).
 */
const MAX_RELAYS_PER_CONNECTION = 16;
/** Of the table, the share the connections from one IP address may be in at once (a quarter). */
const RELAYS_PER_IP_SHARE = 4;
/** Random draws for a free relay id (see the connection ids' reasoning in table.ts). */
const RELAY_ID_DRAWS = 16;

export interface RelayOptions {
  /** Whether this gateway relays for its peers. Default true for a gateway. */
  enabled?: boolean;
  /** Bytes per second one relay (both directions together) may carry. Default 4 MiB/s. */
  bytesPerSecond?: number;
  /** Bytes per second all relays together may carry. Default 32 MiB/s. */
  totalBytesPerSecond?: number;
  /** Relays at once (default 256). */
  maxRelays?: number;
}

export type RelayConfig = Required<RelayOptions>;

/** `options` checked, with defaults; `name` names them in errors. */
export function checkRelayOptions(options: RelayOptions | undefined, name: string): RelayConfig {
  if (options !== undefined) {
    validateObject(options, name);
    validateKnownKeys(options, name, keysOf<RelayOptions>()("enabled", "bytesPerSecond", "totalBytesPerSecond", "maxRelays"));
  }
  const config: RelayConfig = {
    enabled: true,
    bytesPerSecond: DEFAULT_RELAY_BYTES_PER_SECOND,
    totalBytesPerSecond: DEFAULT_RELAY_TOTAL_BYTES_PER_SECOND,
    maxRelays: DEFAULT_MAX_RELAYS,
    ...options,
  };
  validateBoolean(config.enabled, `${name}.enabled`);
  validateInteger(config.bytesPerSecond, `${name}.bytesPerSecond`, 1500, 2 ** 40);
  validateInteger(config.totalBytesPerSecond, `${name}.totalBytesPerSecond`, 1500, 2 ** 40);
  validateInteger(config.maxRelays, `${name}.maxRelays`, 0, 65536);
  return config;
}

/** One direction of a relay: what arrives with `id` from `from` goes to `to` with `toId`. */
interface Forward {
  id: number;
  from: SessionDriver;
  to: SessionDriver;
  toId: number;
  /** Both directions of a relay count against one budget, under the lower id. */
  budgetKey: string;
  /** Both directions share it: when the relay last forwarded (ms). */
  use: { at: number };
}

export interface RelayCounters {
  datagramsRelayed: number;
  bytesRelayed: number;
}

/** What became of a RELAY datagram. */
export type RelayOutcome = { relayed: true } | { unwrap: Address } | { drop: DropReason };

export class Relays {
  readonly #config: RelayConfig;
  readonly #send: (chunks: readonly Uint8Array[], to: Address) => void;
  readonly #forwards = new Map<number, Forward>();
  readonly #pairBudget: KeyedBuckets;
  readonly #totalBudget: KeyedBuckets;
  /** Peer side: relay id → the gateway that granted it, and the header that sends through it. */
  readonly #granted = new Map<number, { gateway: Address; header: Uint8Array }>();
  readonly counters: RelayCounters = { datagramsRelayed: 0, bytesRelayed: 0 };

  constructor(config: RelayConfig, send: (chunks: readonly Uint8Array[], to: Address) => void) {
    this.#config = config;
    this.#send = send;
    this.#pairBudget = new KeyedBuckets(config.bytesPerSecond * BURST_SECONDS, config.bytesPerSecond, config.maxRelays + 1);
    this.#totalBudget = new KeyedBuckets(config.totalBytesPerSecond * BURST_SECONDS, config.totalBytesPerSecond, 1);
  }

  get count(): number {
    return this.#forwards.size / 2;
  }

  /**
   * Gateway side: a relay between connections `a` and `b` (the one they have, if any); answers the relay
   * id each peer sends with. Throws (a RangeError) when relaying is off, the table is full of relays in
   * use, or either side is in its share of it already (MAX_RELAYS_PER_CONNECTION, and a quarter of the
   * table for the connections of one IP address).
   */
  open(a: SessionDriver, b: SessionDriver, now: number): { a: number; b: number } {
    if (!this.#config.enabled) throw limitReached("this gateway does not relay (options.relay.enabled is false)", Relays.prototype.open);
    for (const forward of this.#forwards.values()) {
      if (forward.from === a && forward.to === b) return { a: forward.id, b: forward.toId };
    }
    for (const side of [a, b]) {
      if (this.#relaysOf((driver) => driver === side) >= MAX_RELAYS_PER_CONNECTION) throw limitReached("this connection is in too many relays", Relays.prototype.open);
      const host = side.remoteAddress.host;
      if (this.#relaysOf((driver) => driver.remoteAddress.host === host) >= Math.max(1, this.#config.maxRelays / RELAYS_PER_IP_SHARE)) {
        throw limitReached("the connections of this IP address are in too many relays", Relays.prototype.open);
      }
    }
    if (this.count >= this.#config.maxRelays) this.#closeIdle(now);
    if (this.count >= this.#config.maxRelays) throw limitReached(`too many relays (options.relay.maxRelays = ${this.#config.maxRelays})`, Relays.prototype.open);
    const idA = this.#newId();
    const idB = this.#newId(idA);
    const budgetKey = String(Math.min(idA, idB));
    const use = { at: now };
    this.#forwards.set(idA, { id: idA, from: a, to: b, toId: idB, budgetKey, use });
    this.#forwards.set(idB, { id: idB, from: b, to: a, toId: idA, budgetKey, use });
    return { a: idA, b: idB };
  }

  /** Relays with a side that `matches`. */
  #relaysOf(matches: (driver: SessionDriver) => boolean): number {
    let count = 0;
    for (const forward of this.#forwards.values()) if (matches(forward.from)) count++; // each relay has one forward per side
    return count;
  }

  #closeIdle(now: number): void {
    for (const forward of [...this.#forwards.values()]) if (now - forward.use.at >= RELAY_IDLE_MS) this.#forwards.delete(forward.id);
  }

  /** Gateway side: connection `driver` ended; the relays it was in close. */
  closeFor(driver: SessionDriver): void {
    for (const forward of [...this.#forwards.values()]) if (forward.from === driver || forward.to === driver) this.#forwards.delete(forward.id);
  }

  /** Peer side: the gateway at `gateway` relays for us under `id`; answers the virtual address to send to. */
  grant(gateway: Address, id: number): Address {
    if (!this.#granted.has(id) && this.#granted.size >= MAX_GRANTED) this.#granted.delete(this.#granted.keys().next().value!);
    this.#granted.set(id, { gateway: { host: gateway.host, port: gateway.port }, header: relayHeader(id) });
    return { host: gateway.host, port: gateway.port, relay: id };
  }

  /**
   * Peer side: the header of every datagram sent through relay `relay`. A granted relay's is built once
   * and shared by all its sends (it never changes, so a socket may hold it while a send is pending): a
   * fresh one per datagram cost 2–4 µs on Node 20, the Uint8Array's backing store made off-heap for its
   * DataView, as much as sealing the datagram (the relay benchmark's sender profile).
   */
  headerFor(relay: number): Uint8Array {
    return this.#granted.get(relay)?.header ?? relayHeader(relay);
  }

  /**
   * A RELAY datagram with relay id `id` from `from` (host and port), the whole datagram in `datagram`
   * (valid during the call). A gateway forwards it (copied once); a peer is told to route what it
   * carries as coming from the virtual address answered.
   */
  receive(id: number, datagram: Uint8Array, from: Address, now: number): RelayOutcome {
    const forward = this.#forwards.get(id);
    if (forward !== undefined) return this.#forward(forward, datagram, from, now);
    const granted = this.#granted.get(id);
    if (granted === undefined || !sameAddress(granted.gateway, from)) return { drop: "unknownSender" };
    return { unwrap: { host: from.host, port: from.port, relay: id } };
  }

  #forward(forward: Forward, datagram: Uint8Array, from: Address, now: number): RelayOutcome {
    const source = forward.from.remoteAddress;
    if (source.relay !== undefined || !sameAddress(source, from)) return { drop: "unknownSender" };
    // Only to a proven address: a connection whose path moved is not forwarded to until the move is
    // validated (the relay must not carry more than the path's 3× to an address that has not answered).
    const target = forward.to.remoteAddress;
    if (target.relay !== undefined || forward.to.ended || !forward.to.pathValidated) return { drop: "unknownSender" };
    const bytes = datagram.length;
    if (!this.#pairBudget.tryTake(forward.budgetKey, now, bytes) || !this.#totalBudget.tryTake("all", now, bytes)) return { drop: "relayBudget" };
    // Copied once (the socket may send after the listener's frame is reused), the relay id rewritten.
    const copy = ownedCopy(datagram, 0, bytes);
    writeRelayHeader(copy, forward.toId);
    this.#send([copy], target);
    forward.use.at = now;
    this.counters.datagramsRelayed++;
    this.counters.bytesRelayed += bytes;
    return { relayed: true };
  }

  #newId(taken = 0): number {
    for (let attempt = 0; attempt < RELAY_ID_DRAWS; attempt++) {
      const id = randomUint32() >>> 1;
      if (id !== 0 && id !== taken && !this.#forwards.has(id)) return id;
    }
    throw limitReached(`no free relay id after ${RELAY_ID_DRAWS} random draws`, Relays.prototype.open);
  }
}

/** The header that sends a datagram through the relay `relay` of the gateway it is sent to. */
export function relayHeader(relay: number): Uint8Array {
  const header = new Uint8Array(RELAY_HEADER_BYTES);
  writeRelayHeader(header, relay);
  return header;
}

/** [RELAY][wire version][relay id, u32 little-endian] into `bytes`' first RELAY_HEADER_BYTES (no DataView: one per datagram showed in profiles). */
function writeRelayHeader(bytes: Uint8Array, relay: number): void {
  bytes[0] = KIND_RELAY;
  bytes[1] = WIRE_VERSION;
  bytes[2] = relay & 0xff;
  bytes[3] = (relay >>> 8) & 0xff;
  bytes[4] = (relay >>> 16) & 0xff;
  bytes[5] = relay >>> 24;
}
