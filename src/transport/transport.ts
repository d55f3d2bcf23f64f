// A transport: one UDP socket, its listener (listener.ts), the handshakes in progress (handshakes.ts)
// and the connections they made (connection.ts), in one arena holding every queue's reserve (options.ts).
// This is the public API; the parts above do the work.
import { isIP } from "node:net";
import { abortErrorOf, illegalConstructor, SluiceError } from "../errors/errors.ts";
import { invalidArgType, invalidArgValue, signalOf } from "../errors/validate.ts";
import { sameBytes } from "../memory/bytes.ts";
import { Arena, DEFAULT_FRAME_BYTES } from "../memory/arena.ts";
import { addressKey, checkAddress, reachableFrom, type Address } from "../wire/address.ts";
import { Framer } from "../wire/framer.ts";
import { PacketAead } from "../wire/packet-aead.ts";
import { CoreCrypto } from "../handshake/core-crypto.ts";
import type { Identity } from "../handshake/noise.ts";
import { importPrivateKey, rawPublicKey } from "../handshake/primitives.ts";
import { checkRetryOptions, RETRY_OPTION_KEYS, type RetryOptions } from "../handshake/retry.ts";
import { Connection, driverOf, type WaitOptions } from "./connection.ts";
import { EachUntilEnd, type ConnectionIterator } from "./connection-iterator.ts";
import { DeadlineTimer } from "./deadlines.ts";
import { Handshakes } from "./handshakes.ts";
import { Introductions } from "./introductions.ts";
import { Listener } from "./listener.ts";
import { NatObservations, type NatType } from "./nat-type.ts";
import { Relays } from "./relays.ts";
import { Warnings } from "./log.ts";
import { arenaPlan, checkKey, checkTransportOptions, type TransportConfig, type TransportOptions, type TransportSeams } from "./options.ts";
import { resolveHost } from "./resolve.ts";
import { TransportCounters, type TransportStats } from "./stats.ts";
import { ConnectionTable } from "./table.ts";
import type { SessionDriver } from "./session-driver.ts";
import { openSocket, type DatagramSocket } from "./udp-socket.ts";

/** The token only this module holds: transports come from Transport.bind(). */
const FROM_BIND = Symbol("Transport");

let bindTransport: (options: TransportOptions, seams: TransportSeams) => Promise<Transport>;
let listenerOfTransport: (transport: Transport) => Listener;
let relaysOfTransport: (transport: Transport) => Relays;

/** Transport.bind() with test seams (for src/internal.ts). */
export function bindWithSeams(options: TransportOptions, seams: TransportSeams): Promise<Transport> {
  return bindTransport(options, seams);
}

/** The relays of `transport` (for src/internal.ts, until introductions carry them). */
export function relaysOf(transport: Transport): Relays {
  return relaysOfTransport(transport);
}

/** The listener of `transport` (for src/internal.ts). */
export function listenerOf(transport: Transport): Listener {
  return listenerOfTransport(transport);
}

export class Transport {
  static {
    bindTransport = (options, seams) => Transport.#bind(options, seams);
    listenerOfTransport = (transport) => transport.#listener;
    relaysOfTransport = (transport) => transport.#relays;
  }

  readonly #identity: Identity;
  readonly #secretKey: Uint8Array;
  readonly #config: TransportConfig;
  readonly #seams: TransportSeams;
  readonly #arena: Arena;
  readonly #framer: Framer;
  readonly #aead: PacketAead;
  readonly #crypto: CoreCrypto;
  #socket!: DatagramSocket;
  readonly #counters = new TransportCounters();
  /** Every connection's next deadline, behind one host timer. */
  readonly #deadlines = new DeadlineTimer(() => performance.now(), () => this.#counters.datagramsReceived);
  readonly #warnings: Warnings;
  readonly #table: ConnectionTable;
  readonly #handshakes: Handshakes;
  readonly #listener: Listener;
  readonly #relays: Relays;
  readonly #introductions: Introductions;
  readonly #acceptQueue: Connection[] = [];
  /** accept() calls waiting, each resolved with the next connection (or undefined at the close). */
  readonly #acceptWaiters = new Set<(connection: Connection | undefined) => void>();
  #closed = false;
  #externalAddress: Address | undefined;
  readonly #natObservations = new NatObservations();

  /** Not for applications: transports come from Transport.bind(). @internal */
  constructor(token: typeof FROM_BIND, config: TransportConfig, identity: Identity, secretKey: Uint8Array, seams: TransportSeams) {
    if (token !== FROM_BIND) throw illegalConstructor("transports come from Transport.bind()", Transport);
    this.#identity = identity;
    this.#secretKey = secretKey;
    this.#config = config;
    this.#seams = seams;
    this.#warnings = new Warnings(config.log);
    const plan = arenaPlan(config);
    this.#arena = Arena.create({ bytes: plan.bytes, frameBytes: DEFAULT_FRAME_BYTES });
    this.#arena.reserveQueues(plan.reservePackets, plan.guardFrames);
    this.#framer = new Framer(this.#arena);
    this.#aead = new PacketAead(this.#arena);
    this.#crypto = new CoreCrypto(this.#arena);
    this.#table = new ConnectionTable(config.maxConnections, (id) => this.#handshakes.owns(id));
    this.#handshakes = new Handshakes({
      identity,
      config,
      seams,
      table: this.#table,
      counters: this.#counters,
      host: {
        arena: this.#arena,
        aead: this.#aead,
        crypto: this.#crypto,
        sendDatagram: (chunks, to) => this.#send(chunks, to),
        countDrop: (reason) => this.#counters.dropAfterRouting(reason),
        connectionClosed: (connection) => {
          this.#table.forget(connection);
          this.#handshakes.connectionEnded(connection);
          this.#relays.closeFor(connection);
          this.#introductions.connectionEnded(connection);
        },
        controlFrame: (connection, type, body) => this.#introductions.handleControl(connection, type, body),
        repunch: (connection) => this.#introductions.repunch(connection),
        pathValidated: (connection) => this.#introductions.pathValidated(connection),
        now: () => performance.now(),
        deadlines: this.#deadlines,
        trace: config.trace,
      },
      accepted: (connection) => this.#accepted(connection),
      observed: (address, gateway) => this.#observed(address, gateway),
      opened: (connection, initiator) => this.#introductions.opened(connection, initiator),
    });
    this.#relays = new Relays(config.relay, (chunks, to) => this.#send(chunks, to));
    this.#introductions = new Introductions({
      ownKey: identity.publicKey,
      config,
      table: this.#table,
      handshakes: this.#handshakes,
      relays: this.#relays,
      boundAddress: () => this.#socket.address,
      accepted: (connection) => this.#accepted(connection),
      observed: (address, gateway) => this.#observed(address, gateway),
      now: () => performance.now(),
    });
    this.#listener = new Listener({
      framer: this.#framer,
      relays: this.#relays,
      table: this.#table,
      handshakes: this.#handshakes,
      counters: this.#counters,
      warnings: this.#warnings,
    });
  }

  /**
   * Binds a UDP socket and starts listening. `options.host` may be a name (resolved once, as
   * node:dgram does); `options.signal` cancels the bind (AbortError).
   */
  static async bind(options: TransportOptions = {}): Promise<Transport> {
    return Transport.#bind(options, {});
  }

  static async #bind(options: TransportOptions, seams: TransportSeams): Promise<Transport> {
    const config = checkTransportOptions(options);
    const { signal } = options;
    const host = await resolveHost(config.host, 0, signal, seams.lookup);
    // A key from 32 random bytes, imported (not generateKeyPairSync(): see handshake/primitives.ts).
    const secretKey = config.secretKey === undefined ? crypto.getRandomValues(new Uint8Array(32)) : new Uint8Array(config.secretKey);
    const privateKey = importPrivateKey(secretKey);
    const identity: Identity = { privateKey, publicKey: rawPublicKey(privateKey) };
    const transport = new Transport(FROM_BIND, config, identity, secretKey, seams);
    try {
      if (signal?.aborted) throw abortErrorOf(signal);
      transport.#socket = await (seams.socket ?? openSocket)({
        host,
        port: config.port,
        receiveBufferBytes: config.receiveBufferBytes,
        onDatagram: transport.#listener.onDatagram,
        onSendError: (error) => {
          transport.#counters.sendFailed(error);
          transport.#warnings.warn("sendError", `UDP send failed: ${error.message}`);
        },
        log: config.log,
      });
    } catch (error) {
      transport.#framer.dispose();
      transport.#aead.dispose();
      transport.#crypto.dispose();
      throw error;
    }
    if (signal?.aborted) {
      await transport.close();
      throw abortErrorOf(signal);
    }
    config.trace?.(`transport bound to ${addressKey(transport.#socket.address.host, transport.#socket.address.port)} (${transport.#socket.kind})`);
    return transport;
  }

  /** This node's static X25519 public key (32 bytes, a copy): what peers pass to connect(). */
  get publicKey(): Uint8Array {
    return new Uint8Array(this.#identity.publicKey);
  }

  /** This node's static X25519 secret key (32 bytes, a copy): bind({ secretKey }) with it keeps the same identity. */
  get secretKey(): Uint8Array {
    return new Uint8Array(this.#secretKey);
  }

  /** The bound local address. */
  get address(): Address {
    return { ...this.#socket.address };
  }

  /**
   * This node's address on the internet, as the gateways it connected to see it: the observed address
   * in the last handshake response from a gateway (a response says whether its sender is one; undefined
   * before any), or in the OBSERVED_ADDRESS a gateway sends once its connection validated a new address
   * of ours (this node changed networks, or its NAT gave it a new port). Behind a NAT it is the NAT's
   * address and the port it maps this socket to, which is what a peer elsewhere must connect() to. A
   * plain peer's view does not count: it may sit on the same LAN, or lie. Each connection's own view is
   * connection.observedAddress.
   */
  get externalAddress(): Address | undefined {
    return this.#externalAddress && { ...this.#externalAddress };
  }

  /** The gateway at `gateway` sees this node at `address`. */
  #observed(address: Address, gateway: Address): void {
    this.#externalAddress = address;
    this.#natObservations.record(gateway, address);
  }

  /**
   * What kind of NAT this node is behind, from what the gateways it connected to observed: "open"
   * (seen at its own address), "cone" (the same port whatever the gateway: hole punching works),
   * "symmetric" (a port per gateway: punching works only towards a cone; a relay may be needed), or
   * "unknown" (no gateway's view, or one that is not our own address: one view cannot tell a cone
   * from a symmetric NAT). One gateway that sees us at our own address and port is enough for "open".
   */
  get natType(): NatType {
    return this.#natObservations.natType(this.#socket.address);
  }

  /**
   * Connects to the node at `address` whose static public key is `publicKey`: only that key's holder
   * can answer. A gateway answers at once; a peer that is not a gateway must be connecting to us at
   * about the same time. Intros are re-sent on `options` (default every 200 ms ± 20%, at most 40,
   * within 3 s), then this rejects (ERR_SLUICE_CONNECT_TIMEOUT; if this socket's sends failed
   * meanwhile, as a Deno --allow-net without the peer's port makes them, its message says how many and
   * its cause is the last failure). A peer that answers with a COOKIE
   * (it is up, and loaded) gets 3 × deadlineMs (9 s), the re-sends from then on at doubling
   * intervals (up to 1.6 s). A connect() to a key already being
   * connected to joins that one. To a key this node holds an open connection with, it opens a new
   * connection that replaces the old one (whose calls then fail with ERR_SLUICE_REPLACED): the way to
   * reach a peer that restarted before the old connection noticed.
   *
   * `address.host` may be a name, as bind()'s host may: resolved once (dns.lookup, as node:dgram
   * resolves a send's), in the families the socket reaches (IPv4 for an IPv4 socket, IPv6 for one
   * bound to an IPv6 address, either, IPv4 first, for one bound to "::"); one that does not resolve
   * rejects with ERR_SLUICE_HOST_NOT_FOUND. An address the socket cannot send to (IPv6 from an IPv4
   * socket, IPv4 from one bound to an IPv6 address) rejects at once with a TypeError
   * (ERR_INVALID_ARG_VALUE), as does this node's own key; an IPv4-mapped address (::ffff:a.b.c.d)
   * from an IPv4 socket is its IPv4 address. `options.signal` cancels the connect(): it rejects with an AbortError
   * (its `cause` the signal's reason; at once if the signal was aborted already), and the handshake is
   * given up unless another connect() to the same key waits on it.
   */
  connect(address: Address, publicKey: Uint8Array | string, options?: RetryOptions & WaitOptions): Promise<Connection> {
    try {
      const to = checkAddress(address, "address");
      const key = checkKey(publicKey, "publicKey");
      const signal = signalOf(options, "options", [...RETRY_OPTION_KEYS, "signal"]);
      let retry = this.#config.retry;
      if (options !== undefined) {
        const { signal: _, ...schedule } = options;
        retry = checkRetryOptions(schedule, "options", retry);
      }
      if (signal?.aborted) throw abortErrorOf(signal);
      if (this.#closed) throw new SluiceError("ERR_SLUICE_CLOSED", "connect() on a closed transport");
      if (sameBytes(key, this.publicKey)) throw invalidArgValue("publicKey", "(this node's own key)", "is this node's own public key", Transport.prototype.connect);
      if (isIP(to.host) !== 0) return this.#handshakes.connect([this.#reachable(to, Transport.prototype.connect)], key, retry, { signal, byApplication: true });
      return this.#connectToName(to, key, retry, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * connect() to a host name, once it resolved in the families the socket reaches: IPv4 for an IPv4
   * socket, IPv6 for one bound to an IPv6 address, either (IPv4 first) for a dual-stack one (bound
   * to "::"), which a name with only an IPv4 address did not resolve for before.
   */
  async #connectToName(to: Address, key: Uint8Array, retry: Required<RetryOptions>, signal: AbortSignal | undefined): Promise<Connection> {
    const bound = this.#socket.address.host;
    const family = bound === "::" ? 0 : bound.includes(":") ? 6 : 4;
    const host = await resolveHost(to.host, family, signal, this.#seams.lookup);
    if (this.#closed) throw new SluiceError("ERR_SLUICE_CLOSED", "connect() on a closed transport");
    return this.#handshakes.connect([this.#reachable({ ...to, host }, Transport.prototype.connect)], key, retry, { signal, byApplication: true });
  }

  /** `to` as the socket can send to it; a TypeError if it cannot (the other address family). */
  #reachable(to: Address, caller: Function): Address {
    const bound = this.#socket.address.host;
    const reachable = reachableFrom(bound, to);
    if (reachable === undefined) {
      throw invalidArgValue("address.host", to.host, `is not reachable from this transport's socket, bound to ${addressKey(bound, this.#socket.address.port)}: bind to "::" to reach IPv4 and IPv6 addresses alike`, caller);
    }
    return reachable;
  }

  /**
   * Connects to the holder of `publicKey` through the rendezvous of `introducer`, a connection to a
   * node both are connected to (a gateway): it asks the introducer for an introduction; the introducer
   * tells each peer the other's key and the address it sees it at (and its local addresses), and both
   * connect at once, so their NATs let each other's packets in (simultaneous open). Resolves with the
   * direct connection; the peer gets it from accept(), or, if it asked for this node at the same
   * time, from its own connectVia() (a connection is handed out once: never by both).
   *
   * With a connection to that peer open already, it first sends a PING on it: if the peer
   * acknowledges it within two probe timeouts (twice the connection's RTO, and 25 ms: 425 ms at the
   * default 200 ms floor, up to ~2 s before its first RTT sample; a PING lost once goes again after
   * the first), that connection is the answer, and the introducer is not asked. If not (the peer was killed and restarted: it lost the connection's
   * keys, and registered with the introducer again), the introducer is asked as above, and the new
   * connection replaces the old one once its handshake has proven the peer's key (the old one's calls
   * then fail with ERR_SLUICE_REPLACED); until then, and if that connect fails, the old one stays.
   * Likewise, an introduction not asked for that names a peer with an open connection makes this
   * node connect back only if that connection's PING goes unacknowledged (a restarted peer dialling
   * through the gateway: its connection replaces the old one and arrives through accept()).
   *
   * Rejects with ERR_SLUICE_INTRODUCTION_FAILED when the introducer refuses (`error.reason`:
   * "notAllowed" by its `introductions` policy, "unknownPeer" when it holds no connection with that key,
   * "rateLimited") or does not answer within 5 s ("noAnswer"); with ERR_SLUICE_CONNECT_TIMEOUT when no
   * direct path opened within `options.retry` (default: connect()'s 3 s); with an AbortError (its
   * `cause` the signal's reason) once `signal` aborts. At most 16 requests wait on one introducer connection (then a RangeError).
   * A connectVia() to a peer that another connectVia() is already asking for joins that request (and
   * its retry options), as connect() joins a handshake to the same key; one of them aborting does not
   * withdraw it while others wait.
   */
  connectVia(introducer: Connection, publicKey: Uint8Array | string, options: { signal?: AbortSignal; retry?: RetryOptions } = {}): Promise<Connection> {
    try {
      const via = this.#ownConnection(introducer, "introducer");
      const key = checkKey(publicKey, "publicKey");
      const signal = signalOf(options, "options", ["signal", "retry"]);
      const retry = options.retry === undefined ? this.#config.retry : checkRetryOptions(options.retry, "options.retry", this.#config.retry);
      if (sameBytes(key, this.publicKey)) throw invalidArgValue("publicKey", "(this node's own key)", "is this node's own public key", Transport.prototype.connectVia);
      if (sameBytes(key, via.remotePublicKey)) throw invalidArgValue("publicKey", "(the introducer's key)", "is the introducer's own key: the connection to it is already open", Transport.prototype.connectVia);
      return this.#introductions.connectVia(via, key, retry, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Introduces the peers of two of this node's connections to each other, as if one had asked with
   * connectVia(): each is told the other's key and the address this node sees it at, and each connects
   * if its `acceptIntroductions` policy accepts (by default, when this node is a gateway); the
   * connection then arrives through its accept(). Throws a RangeError if the connections are to the
   * same peer, or one's control queue is full (its peer is not acknowledging).
   */
  introduce(a: Connection, b: Connection): void {
    const first = this.#ownConnection(a, "a");
    const second = this.#ownConnection(b, "b");
    if (first.ended || second.ended) throw new SluiceError("ERR_SLUICE_CLOSED", "introduce() with a closed connection");
    this.#introductions.introduce(first, second);
  }

  /**
   * The next inbound connection, or undefined once the transport is closed. `options.signal` cancels
   * the wait (AbortError). A connection is handed out once: one that a connect() or connectVia() of
   * this node resolved with (an introduction's connect can join the same handshake) never comes here.
   */
  accept(options?: WaitOptions): Promise<Connection | undefined> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(abortErrorOf(signal));
    const ready = this.#acceptQueue.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#acceptWaiters.delete(waiter);
        reject(abortErrorOf(signal!));
      };
      const waiter = (connection: Connection | undefined) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(connection);
      };
      this.#acceptWaiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * `for await (const connection of transport)`: accept() per step, done once the transport is
   * closed. return() (a loop's `break`) ends it at once: a waiting step settles done, and the
   * connection it waited for stays for the next accept().
   */
  [Symbol.asyncIterator](): ConnectionIterator<Connection> {
    return new EachUntilEnd((signal) => this.accept({ signal }));
  }

  stats(): TransportStats {
    const { handshakesCompleted, handshakesFailed, cookiesSent } = this.#handshakes.stats();
    return {
      introductions: this.#introductions.stats(),
      socket: this.#socket.kind,
      ...this.#counters.snapshot(),
      handshakesCompleted,
      handshakesFailed,
      cookiesSent,
      ...this.#relays.counters,
      relays: this.#relays.count,
      connections: this.#table.size,
      handshakes: this.#handshakes.count,
      perConnection: [...this.#table.connections()].map((connection) => connection.stats()),
    };
  }

  /**
   * Closes every connection (each sends one CLOSE, or, if its peer closed first, the acknowledgement of
   * the peer's CLOSE if still owed; these leave before the socket closes) and handshake,
   * then the socket. Pending connect()s reject; accept() resolves undefined; connections' pending calls
   * end as transport.close() ends them (ERR_SLUICE_CLOSED, recv() undefined).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#config.trace?.(`transport ${addressKey(this.#socket.address.host, this.#socket.address.port)} closing`);
    this.#listener.close();
    const closed = new SluiceError("ERR_SLUICE_CLOSED", "the transport was closed");
    this.#handshakes.close(closed);
    this.#introductions.close(closed);
    for (const connection of [...this.#table.connections()]) connection.abort();
    for (const connection of this.#acceptQueue.splice(0)) driverOf(connection).abort();
    for (const waiter of [...this.#acceptWaiters]) waiter(undefined);
    this.#acceptWaiters.clear();
    this.#deadlines.stop();
    await this.#socket.close();
    this.#framer.dispose();
    this.#aead.dispose();
    this.#crypto.dispose();
    this.#arena.forget();
  }

  /** `await using`: close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The driver of `connection`, one of this transport's (a TypeError naming `name` otherwise). */
  #ownConnection(connection: unknown, name: string): SessionDriver {
    if (!(connection instanceof Connection)) throw invalidArgType(name, "an instance of Connection", connection);
    const driver = driverOf(connection);
    if (this.#table.byKey(driver.remotePublicKey) !== driver && !driver.ended) {
      throw invalidArgValue(name, "(a connection)", "is a connection of another transport", Transport.prototype.connectVia);
    }
    return driver;
  }

  /** A connection a peer started is established: to a waiting accept(), or the accept queue, or refused. */
  #accepted(connection: Connection): void {
    const waiter = this.#acceptWaiters.values().next().value;
    if (waiter !== undefined) {
      this.#acceptWaiters.delete(waiter);
      waiter(connection);
    }
    else if (this.#acceptQueue.length < this.#config.acceptQueueConnections) this.#acceptQueue.push(connection);
    else {
      // The application is not accepting: refuse the newcomer rather than wait for room.
      this.#counters.drop("acceptQueueFull");
      this.#warnings.warn("acceptQueueFull", `accept queue full (${this.#config.acceptQueueConnections}): new connection from ${addressKey(connection.remoteAddress.host, connection.remoteAddress.port)} refused`);
      driverOf(connection).abort();
    }
  }

  /** Sends one datagram; to a relayed address (`to.relay`), through the gateway's relay. */
  #send(chunks: readonly Uint8Array[], to: Address): void {
    const counters = this.#counters;
    const sent = to.relay === undefined ? chunks : [this.#relays.headerFor(to.relay), ...chunks];
    counters.datagramsSent++;
    for (const chunk of sent) counters.bytesSent += chunk.length;
    this.#socket.send(sent, to.host, to.port);
  }
}
