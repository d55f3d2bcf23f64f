// The driver of the rendezvous state machine (rendezvous/rendezvous.ts): it hands it the control frames
// connections deliver, queues what it answers on the connections named, keeps its timer, and acts on
// its outcomes: an introduction makes this node connect() to the peer (a simultaneous open, as the
// peer does the same), and the connection goes to the connectVia() that asked for it, or else to
// accept().
//
// The connect climbs a ladder: the peer's local addresses (a LAN, or the same NAT without
// hairpinning) and the address the introducer sees it at (hole punching) at once, the first that
// answers winning. Local addresses are only the peer's word, so they are tried only when the
// introducer sees both peers at the same public host (behind one NAT: where a LAN path can exist),
// and with a few intros each (CLAIMED_ADDRESS_INTROS): an introduction cannot aim this node at
// third parties; if none has answered after RELAY_AFTER_MS and the introducer offered a relay, the
// relay too. A connection that opened over the relay keeps probing the direct addresses and moves to
// one once it answers (session-driver.ts).
import { networkInterfaces } from "node:os";
import { abortErrorOf, SluiceError, type IntroductionFailure } from "../errors/errors.ts";
import { reachableFrom, type Address } from "../wire/address.ts";
import type { RetryOptions } from "../handshake/retry.ts";
import { MAX_LOCAL_ADDRESSES } from "../rendezvous/frames.ts";
import { Rendezvous, type IntroductionStats, type RendezvousEvent } from "../rendezvous/rendezvous.ts";
import { connectionFor, driverOf, type Connection } from "./connection.ts";
import type { Handshakes } from "./handshakes.ts";
import type { Relays } from "./relays.ts";
import { encodeKey } from "./identity.ts";
import type { TransportConfig } from "./options.ts";
import { ignore, type SessionDriver } from "./session-driver.ts";
import type { ConnectionTable } from "./table.ts";

interface IntroductionsInit {
  ownKey: Uint8Array;
  config: TransportConfig;
  table: ConnectionTable;
  handshakes: Handshakes;
  /** This node's relays: a gateway's table (it offers relays with its introductions), a peer's grants. */
  relays: Relays;
  /** The socket's bound address. */
  boundAddress(): Address;
  /** A connection we were introduced to without asking: for accept(). */
  accepted(connection: Connection): void;
  /** The gateway at `gateway` told us the address it sees us at (transport.externalAddress). */
  observed(address: Address, gateway: Address): void;
  now(): number;
}

/**
 * A direct path has this long to open before the relay is tried as well (~5 intro re-sends: a hole
 * punched through two cone NATs opened within ~50 ms in the network-namespace bed).
 */
export const RELAY_AFTER_MS = 1000;
/** Relay offers remembered (by the introduced peer's key) while their introduction's connect runs. */
const MAX_RELAY_OFFERS = 64;

/** Where an introduction says to try: the direct rungs of the ladder. */
interface Rungs {
  /** The address the introducer sees the peer at. */
  address: Address;
  /** The peer's own addresses on its interfaces, as it told them, those this socket can send to. */
  localAddresses: readonly Address[];
  /** How many it told of a family this socket cannot send to (a dual-stack peer's IPv6 ones, to an IPv4 socket). */
  otherFamily: number;
  /** Whether the introducer sees both peers at one public host: only then are local addresses tried. */
  behindOneNat: boolean;
}

/** A connectVia() waiting for the introducer's answer. */
interface Request {
  /** The connection to the introducer asked. */
  via: SessionDriver;
  key: Uint8Array;
  retry: Required<RetryOptions>;
  /** The open connection with the peer that did not answer a PING, if any: not the answer. */
  stale: SessionDriver | undefined;
  resolve(connection: Connection): void;
  reject(error: Error): void;
}

/** The rejection of a connectVia() whose introduction failed, with `reason` saying why. */
function introductionError(reason: IntroductionFailure, key: Uint8Array, detail: string): SluiceError {
  const peer = encodeKey(key, "hex");
  const what: Record<IntroductionFailure, string> = {
    notAllowed: `the introducer does not introduce this node to ${peer} (its introductions policy refused)`,
    unknownPeer: `the introducer has no connection with ${peer}: that peer is not connected to it (not started yet, gone, or connected to another gateway)`,
    rateLimited: "the introducer refused: too many introduction requests from this connection (8 at once, 2 a second), or its control frames to either of you are not acknowledged yet (16 at once: many introductions to one peer at the same moment, or a peer that stopped answering); try again in a second",
    noAnswer: `no introduction to ${peer}: ${detail}`,
  };
  const error = new SluiceError("ERR_SLUICE_INTRODUCTION_FAILED", what[reason]);
  return Object.assign(error, { reason });
}

/**
 * This node's local addresses, as gateways are told them: the bound address if it is one, else the
 * bound port on each interface's address (not loopback; IPv6 too if bound to "::"), at most
 * MAX_LOCAL_ADDRESSES. None where the interfaces cannot be read (Deno without --allow-sys).
 */
function localAddresses(bound: Address): Address[] {
  if (bound.host !== "0.0.0.0" && bound.host !== "::") return [bound];
  const deno = (globalThis as { Deno?: { permissions: { querySync(query: { name: string; kind: string }): { state: string } } } }).Deno;
  if (deno !== undefined && deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state !== "granted") return [];
  let interfaces: ReturnType<typeof networkInterfaces>;
  try {
    interfaces = networkInterfaces();
  } catch {
    return [];
  }
  const found: Address[] = [];
  for (const entries of Object.values(interfaces)) {
    for (const entry of entries ?? []) {
      const usable = !entry.internal && (entry.family === "IPv4" || (bound.host === "::" && !entry.address.startsWith("fe80:")));
      if (usable && found.length < MAX_LOCAL_ADDRESSES) found.push({ host: entry.address, port: bound.port });
    }
  }
  return found;
}

export class Introductions {
  readonly #init: IntroductionsInit;
  readonly #rendezvous: Rendezvous<SessionDriver>;
  readonly #requests = new Map<number, Request>();
  /** Re-punch requests waiting for the introducer's answer: the connection whose path went silent. */
  readonly #repunches = new Map<number, SessionDriver>();
  /** connectVia() requests waiting for an answer, by introducer and peer key: later calls for both join them. */
  readonly #askedFor = new Map<string, { answered: Promise<Connection>; requestId: number; waiting: number }>();
  /**
   * Connects started by an introduction we did not ask for, by the peer's key: their connection goes
   * to accept(), unless a connectVia() to the same peer claimed it meanwhile.
   */
  readonly #introducedConnects = new Map<string, { promise: Promise<Connection>; claimed: boolean; claimers: number }>();
  /**
   * Peers (by key) our own answered requests are connecting to: their connection goes to connectVia().
   * The peer's request for us, answered meanwhile, adds an introduction we did not ask for; its connect
   * joins ours, and handed the same connection to accept() as well (two peers asking for each other).
   */
  readonly #answeredConnects = new Set<string>();
  #connectsFailed = 0;
  /** Relays introducers offered, by the introduced peer's key (the relayed address to connect to). */
  readonly #relayOffers = new Map<string, Address>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  /** Set by close(): why every connectVia() still to be answered rejects. */
  #closedWith: Error | undefined;

  constructor(init: IntroductionsInit) {
    this.#init = init;
    this.#rendezvous = new Rendezvous<SessionDriver>({
      ownKey: init.ownKey,
      introductions: init.config.introductions,
      acceptIntroductions: init.config.acceptIntroductions,
      describe: (driver) => ({
        key: driver.remotePublicKey, address: driver.remoteAddress, localAddresses: driver.remoteLocalAddresses, isGateway: driver.remoteIsGateway,
      }),
      find: (key) => this.#openWith(key), // a closing connection's peer is leaving: unknown
      hasRoom: (driver, frames) => !driver.ended && driver.session.controlRoom >= frames,
      localAddresses: () => localAddresses(init.boundAddress()),
      openRelay: (a, b) => {
        try {
          return init.relays.open(a, b, init.now());
        } catch {
          return undefined; // relaying is off, or the table is full: introduced without a relay
        }
      },
    });
  }

  stats(): IntroductionStats & { connectsFailed: number } {
    return { ...this.#rendezvous.stats(), connectsFailed: this.#connectsFailed };
  }

  /**
   * See Transport.connectVia (arguments checked there). An open connection with the peer is the
   * answer if its peer still acknowledges a PING (two probe timeouts): a peer killed and restarted
   * lost that connection's keys, and registered again with the introducer, which is then asked.
   */
  connectVia(gateway: SessionDriver, key: Uint8Array, retry: Required<RetryOptions>, signal: AbortSignal | undefined): Promise<Connection> {
    if (signal?.aborted) return Promise.reject(abortErrorOf(signal));
    const open = this.#openWith(key);
    if (open === undefined) return this.#ask(gateway, key, retry, signal, undefined);
    const answer = open.answersPing().then((alive) => {
      const current = this.#openWith(key); // a new connection may have replaced it meanwhile (the peer dialled)
      if (current !== undefined && (alive || current !== open)) {
        current.introducer ??= gateway;
        return connectionFor(current);
      }
      return this.#ask(gateway, key, retry, signal, open);
    });
    return abortable(answer, signal, () => false); // the open connection is not the caller's to end
  }

  /**
   * Asks `gateway` for the peer with `key`, or joins a connect for it already under way. `stale` is
   * an open connection with the peer that did not answer a PING: the answer replaces it.
   */
  #ask(gateway: SessionDriver, key: Uint8Array, retry: Required<RetryOptions>, signal: AbortSignal | undefined, stale: SessionDriver | undefined): Promise<Connection> {
    if (signal?.aborted) return Promise.reject(abortErrorOf(signal));
    // The transport closed while connectVia() checked an open connection: not the introducer's failure.
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    const introduced = this.#introducedConnects.get(encodeKey(key));
    if (introduced !== undefined) {
      introduced.claimed = true;
      introduced.claimers++;
      // The last claimer to abort closes a connection that opens after all; another still wants it.
      return abortable(introduced.promise, signal, () => --introduced.claimers === 0);
    }
    // One request per introducer and peer at a time, as connect() shares one handshake per key:
    // concurrent calls each sent a request of their own, and the introducer's rate limit refused
    // some (4 of 12). Through another introducer, a call asks on its own (that one may know the peer).
    const askedKey = `${gateway.localId} ${encodeKey(key)}`;
    let asked = this.#askedFor.get(askedKey);
    if (asked === undefined) {
      if (gateway.ended) return Promise.reject(introductionError("noAnswer", key, "the connection to the introducer is closed"));
      const requestId = this.#rendezvous.request(gateway, key, this.#init.now());
      const answered = new Promise<Connection>((resolve, reject) => this.#requests.set(requestId, { via: gateway, key, retry, stale, resolve, reject }));
      const entry = { answered, requestId, waiting: 0 };
      asked = entry;
      this.#askedFor.set(askedKey, entry);
      const forget = () => {
        if (this.#askedFor.get(askedKey) === entry) this.#askedFor.delete(askedKey);
      };
      answered.then(forget, forget);
      this.#flush();
    }
    const shared = asked;
    shared.waiting++;
    return abortable(shared.answered, signal, () => {
      if (--shared.waiting > 0) return false; // others still wait for the answer
      if (this.#askedFor.get(askedKey) === shared) this.#askedFor.delete(askedKey);
      this.#requests.delete(shared.requestId);
      this.#rendezvous.cancel(shared.requestId);
      return true;
    });
  }

  /** See Transport.introduce. */
  introduce(a: SessionDriver, b: SessionDriver): void {
    this.#rendezvous.introduce(a, b);
    this.#flush();
  }

  /**
   * `driver`'s direct path has been silent (wire/path.ts, re-punching): ask its introducer for the
   * peer again. The request shows the introducer where we are now; the introduction it sends the
   * peer makes the peer punch that address, and the answer makes us punch where the peer is now.
   * Nothing if the introducer is gone or has requests enough waiting: the next silence asks again.
   */
  repunch(driver: SessionDriver): void {
    const via = this.#introducerOf(driver);
    if (via === undefined || this.#closedWith !== undefined) return;
    let requestId: number;
    try {
      requestId = this.#rendezvous.request(via, driver.remotePublicKey, this.#init.now());
    } catch {
      return; // MAX_PENDING_INTRODUCTIONS waiting, or its control queue is full
    }
    this.#repunches.set(requestId, driver);
    this.#flush();
  }

  /**
   * The connection to ask for `driver`'s peer: the one to its introducer's key that is open now. The
   * connection it was introduced over may have ended while the introducer's node lives on (a gateway
   * that restarted forgot it, and this node registered again: a new connection replaced the old);
   * asking the old one, re-punching stopped for good, and a NAT rebinding after a gateway restart
   * ended the connection at deadPeerTimeoutMs (test/netns/gateway-restart.test.ts).
   */
  #introducerOf(driver: SessionDriver): SessionDriver | undefined {
    const via = driver.introducer;
    if (via === undefined) return undefined;
    const current = this.#openWith(via.remotePublicKey);
    if (current !== undefined) driver.introducer = current;
    return current;
  }

  /** A connection was established: it tells the peer what it should know (see Rendezvous.opened). */
  opened(driver: SessionDriver, initiator: boolean): void {
    this.#rendezvous.opened(driver, initiator);
    this.#flush();
  }

  /** `driver`'s path moved to a new address of its peer's, now validated (see Rendezvous.addressValidated). */
  pathValidated(driver: SessionDriver): void {
    if (this.#closedWith !== undefined) return;
    this.#rendezvous.addressValidated(driver);
    this.#flush();
  }

  /** A control frame `driver`'s peer sent. */
  handleControl(driver: SessionDriver, type: number, body: Uint8Array): void {
    if (this.#closedWith !== undefined) return;
    this.#rendezvous.handleControl(driver, type, body, this.#init.now());
    this.#flush();
  }

  connectionEnded(driver: SessionDriver): void {
    if (this.#closedWith !== undefined) return;
    this.#rendezvous.connectionEnded(driver);
    this.#flush();
  }

  /** Every connectVia() waiting for an answer rejects with `error`; nothing more happens. */
  close(error: Error): void {
    this.#closedWith = error;
    clearTimeout(this.#timer);
    for (const request of this.#requests.values()) request.reject(error);
    this.#requests.clear();
    this.#repunches.clear();
  }

  /** Queues what the rendezvous answered, acts on its outcomes, and re-arms its timer. */
  #flush(): void {
    if (this.#closedWith !== undefined) return;
    const rendezvous = this.#rendezvous;
    for (let transmit = rendezvous.pollTransmit(); transmit !== undefined; transmit = rendezvous.pollTransmit()) {
      transmit.to.sendControl(transmit.type, transmit.body); // room was checked by the rendezvous
    }
    for (let event = rendezvous.pollEvent(); event !== undefined; event = rendezvous.pollEvent()) this.#act(event);
    this.#arm(rendezvous.nextDeadline());
  }

  #act(event: RendezvousEvent<SessionDriver>): void {
    switch (event.type) {
      case "observedAddress":
        event.via.observedAddress = event.address;
        // A gateway's view, as its RESPONSE's (which said it is one): told again after we moved.
        if (event.via.remoteIsGateway) this.#init.observed(event.address, event.via.remoteAddress);
        return;
      case "localAddresses":
        event.via.remoteLocalAddresses = event.addresses;
        return;
      case "failed": {
        this.#repunches.delete(event.requestId);
        const request = this.#requests.get(event.requestId);
        this.#requests.delete(event.requestId);
        request?.reject(introductionError(event.reason, request.key, event.detail));
        return;
      }
      case "relayOffered": {
        const keyText = encodeKey(event.key);
        this.#relayOffers.delete(keyText);
        this.#relayOffers.set(keyText, this.#init.relays.grant(event.via.remoteAddress, event.relayId));
        if (this.#relayOffers.size > MAX_RELAY_OFFERS) this.#relayOffers.delete(this.#relayOffers.keys().next().value!);
        return;
      }
      case "introduced": {
        // The peer's local addresses are its word alone: worth trying only if the introducer sees us
        // both at one public host (one NAT, where a LAN path can exist).
        const bound = this.#init.boundAddress().host;
        const localAddresses = event.localAddresses.flatMap((local) => reachableFrom(bound, local) ?? []);
        const rungs: Rungs = {
          address: event.address, localAddresses, otherFamily: event.localAddresses.length - localAddresses.length, behindOneNat: event.via.observedAddress?.host === event.address.host,
        };
        const repunched = event.requestId === undefined ? undefined : this.#repunches.get(event.requestId);
        if (repunched !== undefined) {
          this.#repunches.delete(event.requestId!);
          repunched.punch(event.address);
        } else if (event.requestId === undefined) this.#connectIntroduced(event.via, event.key, rungs);
        else this.#answered(event.requestId, rungs);
      }
    }
  }

  /** Our request was answered: connect to the peer, which is connecting to us too. */
  #answered(requestId: number, rungs: Rungs): void {
    const request = this.#requests.get(requestId);
    if (request === undefined) return;
    this.#requests.delete(requestId);
    const live = this.#openWith(request.key);
    if (live !== undefined && live !== request.stale) return request.resolve(connectionFor(live));
    const keyText = encodeKey(request.key);
    const introduced = this.#introducedConnects.get(keyText);
    if (introduced !== undefined) introduced.claimed = true;
    this.#answeredConnects.add(keyText);
    const connecting = this.#connect(request.via, request.key, rungs, request.retry);
    connecting.then(request.resolve, request.reject).finally(() => this.#answeredConnects.delete(keyText));
  }

  /**
   * We were introduced by `via` without asking (and the policy accepts it): connect, and hand the
   * connection to accept(). With a connection open to the peer already, the introduction may be the
   * peer's re-punch (its NAT rebound it elsewhere): a connection silent for REPUNCH_AFTER_MS punches
   * the address named at once. Otherwise it must not answer a PING first (a live connection sends
   * nothing where an introducer says: it may be a victim's address); then it punches there and
   * checks again, and only if that goes unanswered too is there a new connect: the peer restarted
   * and is dialling us (its intros come to us anyway; ours punch its NAT's hole). Named where the
   * connection sends already, there is no hole to punch (our packets keep ours open): the peer's
   * intros reach us, and we answer them. Connecting anew then, while our own NAT had rebound us,
   * replaced the connection the peer's punch mended a moment later (the bed's idle rebinding).
   */
  #connectIntroduced(via: SessionDriver, key: Uint8Array, rungs: Rungs): void {
    const open = this.#openWith(key);
    if (open === undefined) return this.#connectUnasked(via, key, rungs);
    if (open.silent) open.punch(rungs.address);
    open.answersPing().then(async (alive) => {
      if (!alive) {
        if (!open.punch(rungs.address)) return; // named where we send: nothing to punch, no connect
        alive = await open.answersPing();
      }
      const current = this.#openWith(key); // the same, none (it ended meanwhile), or one that replaced it
      if (!alive && this.#closedWith === undefined && (current === open || current === undefined)) this.#connectUnasked(via, key, rungs);
    }, ignore);
  }

  #connectUnasked(via: SessionDriver, key: Uint8Array, rungs: Rungs): void {
    const keyText = encodeKey(key);
    if (this.#introducedConnects.has(keyText)) return; // already connecting for the same introduction
    if (this.#answeredConnects.has(keyText)) return; // connecting for our own request: the connection is connectVia()'s
    const entry = { promise: this.#connect(via, key, rungs, this.#init.config.retry), claimed: false, claimers: 0 };
    this.#introducedConnects.set(keyText, entry);
    entry.promise.then(
      (connection) => {
        this.#introducedConnects.delete(keyText);
        // Not if a connectVia() claimed it, or the application's own connect() joined its handshake.
        if (!entry.claimed && !this.#init.handshakes.handedToApplication(connection)) this.#init.accepted(connection);
      },
      () => this.#introducedConnects.delete(keyText),
    );
  }

  /** The connection with `key` if it is open (not closing, draining or over: a new one replaces those). */
  #openWith(key: Uint8Array): SessionDriver | undefined {
    const driver = this.#init.table.byKey(key);
    return driver !== undefined && !driver.closing && driver.session.state === "open" ? driver : undefined;
  }

  /**
   * connect() for an introduction, up the ladder: the direct rungs at once, the relay after
   * RELAY_AFTER_MS (or half the deadline, if shorter) if one was offered. A connection over the relay goes on probing the direct rungs.
   * Its timeout says which rungs were tried and why each failed. The connection remembers `via`, the
   * introducer, to ask again should its direct path go silent.
   */
  async #connect(via: SessionDriver, key: Uint8Array, rungs: Rungs, retry: Required<RetryOptions>): Promise<Connection> {
    const keyText = encodeKey(key);
    const locals = rungs.behindOneNat ? rungs.localAddresses : [];
    const direct = [rungs.address, ...locals];
    const handshakes = this.#init.handshakes;
    let relay: Address | undefined;
    const connecting = handshakes.connect([rungs.address], key, retry, { claimed: locals });
    const relayTimer = setTimeout(() => {
      relay = this.#relayOffers.get(keyText);
      if (relay !== undefined) handshakes.connect([relay], key, retry).catch(() => {}); // joins the connect above
    }, Math.min(RELAY_AFTER_MS, retry.deadlineMs / 2)); // a short deadline still leaves the relay its half
    (relayTimer as { unref?: () => void }).unref?.();
    try {
      const connection = await connecting;
      const driver = driverOf(connection);
      driver.introducer ??= via;
      if (connection.remoteAddress.relay !== undefined) driver.probeDirect(direct);
      return connection;
    } catch (error) {
      this.#connectsFailed++;
      const code = (error as { code?: string }).code;
      if (code !== "ERR_SLUICE_CONNECT_TIMEOUT") throw error;
      const failed = new SluiceError("ERR_SLUICE_CONNECT_TIMEOUT",
        `introduced to ${encodeKey(key, "hex")}, but no path opened within ${retry.deadlineMs} ms; tried ${describeRungs(rungs, relay, this.#relayOffers.has(keyText))}. ` +
        "The peer did not connect back (it declined the introduction, or left), or the NATs between do not let a hole be punched and no relay answered",
        { cause: error });
      return Promise.reject(failed);
    } finally {
      clearTimeout(relayTimer);
      this.#relayOffers.delete(keyText);
    }
  }

  #arm(deadline: number): void {
    if (deadline === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = deadline;
    if (deadline === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity;
      this.#rendezvous.handleTimeout(this.#init.now());
      this.#flush();
    }, Math.max(0, Math.ceil(deadline - this.#init.now())));
    // The socket keeps the process alive while the transport is open; this timer must not on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }
}

/** What a failed connect tried, rung by rung, for its error. */
function describeRungs(rungs: Rungs, relay: Address | undefined, offered: boolean): string {
  const show = (address: Address) => `${address.host}:${address.port}`;
  const told = rungs.localAddresses.map(show).join(", ");
  const local = rungs.localAddresses.length === 0
    ? rungs.otherFamily > 0 ? `no local address (the peer told ${rungs.otherFamily}, of an address family this node's socket cannot send to)` : "no local address (the peer told none)"
    : rungs.behindOneNat ? `its local addresses ${told} (no answer)`
    : `not its local addresses ${told} (it is not behind this node's public address)`;
  const relayed = relay !== undefined
    ? `a relay through ${show(relay)} (no answer)`
    : offered ? "no relay (offered after the direct rungs had their time)" : "no relay (the introducer offered none: it does not relay, or has no room)";
  return `${local}; the address the introducer sees it at, ${show(rungs.address)} (no answer); ${relayed}`;
}

/**
 * `promise`, or an AbortError once `signal` fires. `cancel` gives up the wait's work and answers
 * whether this was its last waiter; only then is a connection that opens after all aborted.
 */
function abortable(promise: Promise<Connection>, signal: AbortSignal | undefined, cancel?: () => boolean): Promise<Connection> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    let aborted = false;
    let last = true;
    const onAbort = () => {
      aborted = true;
      last = cancel?.() ?? true;
      reject(abortErrorOf(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (connection) => {
        signal.removeEventListener("abort", onAbort);
        if (!aborted) resolve(connection);
        else if (last) driverOf(connection).abort();
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        if (!aborted) reject(error);
      },
    );
  });
}
