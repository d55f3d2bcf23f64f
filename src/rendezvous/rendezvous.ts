// The rendezvous, as a state machine with no I/O and no clock (as the handshake endpoint): a node
// introduces two of its connected peers to each other, each learning the other's key, the address
// the introducer sees it at and its local addresses, over its authenticated connection; both then
// connect at once (a simultaneous open). The host feeds it the control frames its connections
// deliver, with `now`, and takes control frames to send from pollTransmit() and outcomes from
// pollEvent(); it calls handleTimeout() at nextDeadline().
//
// What it decides (docs/wire.md, "Control frames"; README, "Rendezvous"):
// - An introducer serves INTRODUCE_REQUESTs by its `introductions` policy, within a token bucket per
//   connection, and only between two connections it holds: it sends only over authenticated
//   connections, to addresses their packets proved, so no peer can make it send anywhere else.
// - A peer acts on an introduction it did not ask for by its `acceptIntroductions` policy (by default
//   only from a gateway it connected to), within the same bucket per connection; each one it acts on
//   costs it one connect() (a bounded retry schedule) to the address given.
// - A request waits at most INTRODUCTION_ANSWER_MS for the answer; a connection has at most
//   MAX_PENDING_INTRODUCTIONS requests waiting.
import { codedError, type IntroductionFailure, type RefusalReason } from "../errors/errors.ts";
import type { Address } from "../wire/address.ts";
import {
  CONTROL_INTRODUCE_REFUSED, CONTROL_INTRODUCE_REQUEST, CONTROL_INTRODUCTION, CONTROL_LOCAL_ADDRESSES, CONTROL_OBSERVED_ADDRESS,
  CONTROL_RELAY_OFFER, introduceRefusedBody, introduceRequestBody, introductionBody, localAddressesBody, observedAddressBody,
  readControl, relayOfferBody,
} from "./frames.ts";

/** Introduction requests a connection may have waiting for the introducer's answer. */
export const MAX_PENDING_INTRODUCTIONS = 16;
/** A request the introducer has not answered within this fails (its answer comes at once, normally within an RTT). */
export const INTRODUCTION_ANSWER_MS = 5000;
/** Introductions per connection: this many at once (requests served, or introductions acted on)... */
export const INTRODUCTION_BURST = 8;
/** ...refilled at this rate per second. */
export const INTRODUCTIONS_PER_SECOND = 2;

/**
 * Which introduction requests a node serves between its connected peers: every one ("all"), none, or
 * those for which the function (the requester's key, the target's key) answers true.
 */
export type IntroductionPolicy = "all" | "none" | ((from: Uint8Array, to: Uint8Array) => boolean);
/**
 * Which introductions a node acts on when it did not ask for them (it connects to the peer, and the
 * connection arrives through accept()): those from peers that said they are gateways in the handshake
 * ("gateways"), from any connected peer ("all"), none, or those for which the function (the
 * introducer's key, the introduced peer's key) answers true.
 */
export type AcceptIntroductionsPolicy = "gateways" | "all" | "none" | ((introducer: Uint8Array, peer: Uint8Array) => boolean);


/** What the host says about one of its connections. */
export interface RendezvousPeer {
  key: Uint8Array;
  /** Where its packets come from (validated, or bounded by what it sent). */
  address: Address;
  /** Its local addresses, as it told us (LOCAL_ADDRESSES), if it did. */
  localAddresses: readonly Address[];
  /** It said it is a gateway (its handshake response did): we initiated the connection. */
  isGateway: boolean;
}

export interface RendezvousConfig<P> {
  ownKey: Uint8Array;
  introductions: IntroductionPolicy;
  acceptIntroductions: AcceptIntroductionsPolicy;
  describe(peer: P): RendezvousPeer;
  /** The live connection with `key`, if any. */
  find(key: Uint8Array): P | undefined;
  /** Whether `peer`'s connection can queue `frames` more control frames now. */
  hasRoom(peer: P, frames: number): boolean;
  /** This node's local addresses (its port on its interfaces), told to gateways. */
  localAddresses(): Address[];
  /**
   * A relay between two peers this node introduces to each other (the relay id each sends with), or
   * undefined when it does not relay (off, or no room).
   */
  openRelay(a: P, b: P): { a: number; b: number } | undefined;
}

export interface RendezvousTransmit<P> {
  to: P;
  type: number;
  body: Uint8Array;
}

export type RendezvousEvent<P> =
  /** Connect to `key` at `address` now: the answer to request `requestId`, or (undefined) an introduction we accept. */
  | { type: "introduced"; via: P; requestId: number | undefined; key: Uint8Array; address: Address; localAddresses: Address[] }
  | { type: "failed"; requestId: number; reason: IntroductionFailure; detail: string }
  | { type: "observedAddress"; via: P; address: Address }
  /** The introducer `via` will relay to the holder of `key` under `relayId` (if no direct path opens). */
  | { type: "relayOffered"; via: P; key: Uint8Array; relayId: number }
  | { type: "localAddresses"; via: P; addresses: Address[] };

export interface IntroductionStats {
  /** Requests this node sent (connectVia). */
  requested: number;
  /** Introductions this node made (a pair counts once): requests served and introduce() calls. */
  made: number;
  /** Requests this node refused, by reason. */
  refused: Record<RefusalReason, number>;
  /** Introductions this node received (answers to its requests and others). */
  received: number;
  /** Introductions it did not ask for and did not act on (acceptIntroductions, or over the rate). */
  declined: number;
  /** Control frames that did not parse, or answered nothing we asked. */
  malformed: number;
}

interface Pending<P> {
  via: P;
  key: Uint8Array;
  deadline: number;
}

const sameKey = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((byte, i) => byte === b[i]);

/** `policy(a, b)`, where a throwing policy refuses. */
function allows(policy: (a: Uint8Array, b: Uint8Array) => boolean, a: Uint8Array, b: Uint8Array): boolean {
  try {
    return policy(new Uint8Array(a), new Uint8Array(b)) === true;
  } catch {
    return false;
  }
}

export class Rendezvous<P> {
  readonly #config: RendezvousConfig<P>;
  /** Per connection: its introduction budget, and its requests waiting. */
  readonly #peers = new Map<P, { tokens: number; at: number; pending: number }>();
  readonly #pending = new Map<number, Pending<P>>();
  #lastRequestId = 0;
  readonly #transmits: RendezvousTransmit<P>[] = [];
  readonly #events: RendezvousEvent<P>[] = [];
  readonly #stats: IntroductionStats = {
    requested: 0, made: 0, refused: { notAllowed: 0, unknownPeer: 0, rateLimited: 0 }, received: 0, declined: 0, malformed: 0,
  };

  constructor(config: RendezvousConfig<P>) {
    this.#config = config;
  }

  stats(): IntroductionStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  /**
   * A connection was established. The initiator tells the responder the address it sees it at
   * (OBSERVED_ADDRESS; the responder's RESPONSE already told the initiator), and a peer tells a
   * gateway its local addresses (for introductions on the same network).
   */
  opened(peer: P, initiator: boolean): void {
    const described = this.#config.describe(peer);
    // Over a relay the address is the gateway's: nothing the peer should take for its own.
    if (initiator && described.address.relay === undefined) this.#transmits.push({ to: peer, type: CONTROL_OBSERVED_ADDRESS, body: observedAddressBody(described.address) });
    if (described.isGateway) this.#transmits.push({ to: peer, type: CONTROL_LOCAL_ADDRESSES, body: localAddressesBody(this.#config.localAddresses()) });
  }

  /**
   * The connection with `peer` moved to a new address of the peer's and validated it (the peer changed
   * networks, or its NAT rebound): the peer is told the address we see it at now (OBSERVED_ADDRESS),
   * as the handshake told it first, or its view of itself (a gateway's: its externalAddress) stays
   * where it was. Not over a relay (that address is the gateway's), and not without room in the
   * control queue: the next move tells it again.
   */
  addressValidated(peer: P): void {
    const { address } = this.#config.describe(peer);
    if (address.relay !== undefined || !this.#config.hasRoom(peer, 1)) return;
    this.#transmits.push({ to: peer, type: CONTROL_OBSERVED_ADDRESS, body: observedAddressBody(address) });
  }

  /**
   * Asks `via` to introduce us to the holder of `key`; the outcome is an event with this request's id
   * (the answer). Throws a RangeError when MAX_PENDING_INTRODUCTIONS are waiting on `via`, or its
   * control queue is full.
   */
  request(via: P, key: Uint8Array, now: number): number {
    const state = this.#peer(via, now);
    if (state.pending >= MAX_PENDING_INTRODUCTIONS || !this.#config.hasRoom(via, 1)) {
      throw codedError(RangeError, "ERR_OUT_OF_RANGE", `too many introduction requests waiting on this connection (at most ${MAX_PENDING_INTRODUCTIONS})`, Rendezvous.prototype.request);
    }
    this.#lastRequestId = (this.#lastRequestId % 0xffff_ffff) + 1; // u32, never 0
    const requestId = this.#lastRequestId;
    state.pending++;
    this.#pending.set(requestId, { via, key: new Uint8Array(key), deadline: now + INTRODUCTION_ANSWER_MS });
    this.#stats.requested++;
    this.#transmits.push({ to: via, type: CONTROL_INTRODUCE_REQUEST, body: introduceRequestBody(requestId, key) });
    return requestId;
  }

  /** The requester gave up (its signal aborted): no event follows. */
  cancel(requestId: number): void {
    this.#settle(requestId);
  }

  /**
   * Introduces the peers of connections `a` and `b` to each other, as if each had asked. Throws a
   * RangeError if they are the same peer or a control queue is full.
   */
  introduce(a: P, b: P): void {
    const [first, second] = [this.#config.describe(a), this.#config.describe(b)];
    if (sameKey(first.key, second.key)) throw codedError(RangeError, "ERR_INVALID_ARG_VALUE", "introduce() needs two different peers", Rendezvous.prototype.introduce);
    if (!this.#config.hasRoom(a, 1) || !this.#config.hasRoom(b, 1)) {
      throw codedError(RangeError, "ERR_OUT_OF_RANGE", "a connection's control queue is full (its peer is not acknowledging)", Rendezvous.prototype.introduce);
    }
    this.#introduce(a, first, 0, b, second);
  }

  /** A control frame `from` delivered (0x20 to 0x2f). */
  handleControl(from: P, type: number, body: Uint8Array, now: number): void {
    const message = readControl(type, body);
    if (message === undefined) {
      this.#stats.malformed++;
      return;
    }
    switch (message.type) {
      case CONTROL_OBSERVED_ADDRESS:
        this.#events.push({ type: "observedAddress", via: from, address: message.address });
        return;
      case CONTROL_LOCAL_ADDRESSES:
        this.#events.push({ type: "localAddresses", via: from, addresses: message.addresses });
        return;
      case CONTROL_INTRODUCE_REQUEST:
        this.#serve(from, message.requestId, message.key, now);
        return;
      case CONTROL_INTRODUCTION:
        this.#introduced(from, message.requestId, message.key, message.address, message.localAddresses, now);
        return;
      case CONTROL_RELAY_OFFER:
        if (sameKey(message.key, this.#config.ownKey)) return void this.#stats.malformed++;
        this.#events.push({ type: "relayOffered", via: from, key: message.key, relayId: message.relayId });
        return;
      case CONTROL_INTRODUCE_REFUSED: {
        const pending = this.#pending.get(message.requestId);
        if (pending === undefined || pending.via !== from) return void this.#stats.malformed++;
        this.#fail(message.requestId, message.reason, `the introducer refused: ${message.reason}`);
      }
    }
  }

  /** `peer`'s connection ended: its requests fail, its budget is forgotten. */
  connectionEnded(peer: P): void {
    for (const [requestId, pending] of this.#pending) {
      if (pending.via === peer) this.#fail(requestId, "noAnswer", "the connection to the introducer ended");
    }
    this.#peers.delete(peer);
  }

  nextDeadline(): number {
    let deadline = Infinity;
    for (const pending of this.#pending.values()) deadline = Math.min(deadline, pending.deadline);
    return deadline;
  }

  handleTimeout(now: number): void {
    for (const [requestId, pending] of this.#pending) {
      if (pending.deadline <= now) this.#fail(requestId, "noAnswer", `the introducer did not answer within ${INTRODUCTION_ANSWER_MS} ms`);
    }
  }

  pollTransmit(): RendezvousTransmit<P> | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): RendezvousEvent<P> | undefined {
    return this.#events.shift();
  }

  // ---------------------------------------------------------------- as introducer

  #serve(from: P, requestId: number, key: Uint8Array, now: number): void {
    const requester = this.#config.describe(from);
    const policy = this.#config.introductions;
    const target = this.#config.find(key);
    let refusal: RefusalReason | undefined;
    if (!this.#take(from, now)) refusal = "rateLimited";
    else if (policy === "none" || (typeof policy === "function" && !allows(policy, requester.key, key))) refusal = "notAllowed";
    // A peer reached only through a relay has no address of its own to give.
    else if (target === undefined || target === from || this.#config.describe(target).address.relay !== undefined || requester.address.relay !== undefined) refusal = "unknownPeer";
    else if (!this.#config.hasRoom(target, 1) || !this.#config.hasRoom(from, 1)) refusal = "rateLimited";
    if (refusal !== undefined) {
      this.#stats.refused[refusal]++;
      this.#transmits.push({ to: from, type: CONTROL_INTRODUCE_REFUSED, body: introduceRefusedBody(requestId, refusal) });
      return;
    }
    this.#introduce(from, requester, requestId, target!, this.#config.describe(target!));
  }

  /**
   * Tells each the other's key and addresses; `a` asked with `requestId` (0: neither asked). When this
   * node relays, each also gets a relay id for the other, sent first so it is there when the
   * introduction makes it connect.
   */
  #introduce(a: P, first: RendezvousPeer, requestId: number, b: P, second: RendezvousPeer): void {
    this.#stats.made++;
    const relay = this.#config.hasRoom(a, 2) && this.#config.hasRoom(b, 2) ? this.#config.openRelay(a, b) : undefined;
    if (relay !== undefined) {
      this.#transmits.push({ to: b, type: CONTROL_RELAY_OFFER, body: relayOfferBody(first.key, relay.b) });
      this.#transmits.push({ to: a, type: CONTROL_RELAY_OFFER, body: relayOfferBody(second.key, relay.a) });
    }
    const about = (peer: RendezvousPeer, id: number) => introductionBody({ requestId: id, key: peer.key, address: peer.address, localAddresses: [...peer.localAddresses] });
    this.#transmits.push({ to: b, type: CONTROL_INTRODUCTION, body: about(first, 0) });
    this.#transmits.push({ to: a, type: CONTROL_INTRODUCTION, body: about(second, requestId) });
  }

  // ---------------------------------------------------------------- as the introduced

  #introduced(via: P, requestId: number, key: Uint8Array, address: Address, localAddresses: Address[], now: number): void {
    // Neither this node nor the introducer itself: the connection to it is the one this came over.
    if (sameKey(key, this.#config.ownKey) || sameKey(key, this.#config.describe(via).key)) return void this.#stats.malformed++;
    if (requestId !== 0) {
      const pending = this.#pending.get(requestId);
      if (pending === undefined || pending.via !== via || !sameKey(pending.key, key)) return void this.#stats.malformed++; // late, or not what we asked
      this.#settle(requestId);
      this.#stats.received++;
      this.#events.push({ type: "introduced", via, requestId, key, address, localAddresses });
      return;
    }
    this.#stats.received++;
    if (!this.#accepts(via, key) || !this.#take(via, now)) {
      this.#stats.declined++;
      return;
    }
    this.#events.push({ type: "introduced", via, requestId: undefined, key, address, localAddresses });
  }

  #accepts(via: P, key: Uint8Array): boolean {
    const policy = this.#config.acceptIntroductions;
    if (policy === "all") return true;
    if (policy === "none") return false;
    const introducer = this.#config.describe(via);
    if (policy === "gateways") return introducer.isGateway;
    return allows(policy, introducer.key, key);
  }

  // ---------------------------------------------------------------- bookkeeping

  #peer(peer: P, now: number): { tokens: number; at: number; pending: number } {
    let state = this.#peers.get(peer);
    if (state === undefined) {
      state = { tokens: INTRODUCTION_BURST, at: now, pending: 0 };
      this.#peers.set(peer, state); // one entry per live connection: removed by connectionEnded()
    }
    return state;
  }

  /** Takes one introduction from `peer`'s budget if it has one. */
  #take(peer: P, now: number): boolean {
    const state = this.#peer(peer, now);
    state.tokens = Math.min(INTRODUCTION_BURST, state.tokens + ((now - state.at) * INTRODUCTIONS_PER_SECOND) / 1000);
    state.at = now;
    if (state.tokens < 1) return false;
    state.tokens--;
    return true;
  }

  #fail(requestId: number, reason: IntroductionFailure, detail: string): void {
    if (this.#settle(requestId)) this.#events.push({ type: "failed", requestId, reason, detail });
  }

  /** Forgets request `requestId`; answers whether it was waiting. */
  #settle(requestId: number): boolean {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return false;
    this.#pending.delete(requestId);
    const state = this.#peers.get(pending.via);
    if (state !== undefined) state.pending--;
    return true;
  }
}
