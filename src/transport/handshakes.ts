// The handshakes, driven. src/handshake/endpoint.ts decides everything about them with no I/O and no
// clock; this gives it the listener's handshake datagrams and the time, runs its expensive work (the
// X25519 of queued intros and responses) off the listener in its own macrotask, keeps one timer at its
// next deadline, sends what it answers, and turns its outcomes into connections, or connect() failures.
//
// Nothing here waits on a bounded queue: the endpoint's work queue refuses (counted) when full.
import { abortErrorOf, SluiceError } from "../errors/errors.ts";
import { randomBytes } from "../memory/random-pool.ts";
import { makeSpareKeyPair, spareKeyPairWanted } from "../handshake/primitives.ts";
import { addressKey, type Address } from "../wire/address.ts";
import { DATA_PACKET_NUMBER } from "../wire/constants.ts";
import { HandshakeEndpoint, type Connected, type EndpointStats } from "../handshake/endpoint.ts";
import type { Identity } from "../handshake/noise.ts";
import type { RetryOptions } from "../handshake/retry.ts";
import { connectionFor, type Connection } from "./connection.ts";
import type { TransportConfig, TransportSeams } from "./options.ts";
import { SessionDriver, type ConnectionHost } from "./session-driver.ts";
import type { TransportCounters } from "./stats.ts";
import type { ConnectionTable } from "./table.ts";

interface Settle {
  resolve(connection: Connection): void;
  reject(error: Error): void;
  /** The application's connect() (not one the node made for an introduction): see handedToApplication. */
  byApplication: boolean;
  /** The socket's failed sends when it began (see #timedOutWithSendErrors). */
  sendErrorsBefore: number;
}

/** How a connect() joins its handshake (see Handshakes.connect). */
interface JoinOptions {
  signal?: AbortSignal | undefined;
  /** Addresses that get a few intros only (see CLAIMED_ADDRESS_INTROS). */
  claimed?: readonly Address[];
  /** The application's own connect(): the connection is its, and accept() must not hand it out too. */
  byApplication?: boolean;
}

interface HandshakesInit {
  identity: Identity;
  config: TransportConfig;
  seams: TransportSeams;
  table: ConnectionTable;
  counters: TransportCounters;
  /** The transport's arena, packet AEAD, crypto and socket, for the handshakes and the connections they make. */
  host: ConnectionHost;
  /** A connection a peer started is established: for accept(). */
  accepted(connection: Connection): void;
  /** The gateway at `gateway` told us our address as it sees it. */
  observed(address: Address, gateway: Address): void;
  /** A connection was established (before it is handed to anyone), as the initiator or not. */
  opened(connection: SessionDriver, initiator: boolean): void;
}

/** The packet number of a DATA datagram the wire parser accepted (below 2^53). */
function packetNumberOf(datagram: Uint8Array): number {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  return view.getUint32(DATA_PACKET_NUMBER + 4, true) * 2 ** 32 + view.getUint32(DATA_PACKET_NUMBER, true);
}

export class Handshakes {
  readonly #endpoint: HandshakeEndpoint;
  readonly #config: TransportConfig;
  readonly #seams: TransportSeams;
  readonly #table: ConnectionTable;
  readonly #counters: TransportCounters;
  readonly #host: ConnectionHost;
  readonly #accepted: (connection: Connection) => void;
  readonly #observed: (address: Address, gateway: Address) => void;
  readonly #opened: (connection: SessionDriver, initiator: boolean) => void;
  /** connect()s waiting, by the endpoint's connect id. */
  readonly #settles = new Map<number, Settle[]>();
  /** Connections an application's connect() resolved with (see handedToApplication). */
  readonly #handedToApplication = new WeakSet<Connection>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #workScheduled = false;
  /** Whether a spare ephemeral key pair is to be made (see SPARE_KEY_PAIRS). */
  #spareScheduled = false;
  #closed = false;
  /** Where the handshake datagram being handled came from (for the trace of a refusal). */
  #datagramFrom: Address | undefined;

  constructor(init: HandshakesInit) {
    this.#config = init.config;
    this.#seams = init.seams;
    this.#table = init.table;
    this.#counters = init.counters;
    this.#host = init.host;
    this.#accepted = init.accepted;
    this.#observed = init.observed;
    this.#opened = init.opened;
    const { config } = init;
    this.#endpoint = new HandshakeEndpoint({
      identity: init.identity,
      gateway: config.gateway,
      version: config.version,
      retry: config.retry,
      limits: config.handshakeLimits,
      crypto: init.host.crypto,
      random: config.random,
      randomBytes,
      newId: () => init.table.newConnectionId(),
      // A new connection's first packets are in key phase 0: the traffic secret's own key.
      openData: (key, datagram) => {
        const plaintext = init.host.aead.open(key, datagram);
        return plaintext && { plaintext, packetNumber: packetNumberOf(datagram) };
      },
      // The listener counted every handshake datagram as routed to the endpoint: a drop comes after that.
      countDrop: (reason) => {
        this.#counters.dropAfterRouting(reason);
        if (this.#config.trace === undefined) return; // a flood's drops cost nothing more with the trace off
        const from = this.#datagramFrom === undefined ? "" : ` from ${describe(this.#datagramFrom)}`;
        this.#config.trace(`handshake datagram${from} refused: ${reason}`);
      },
    }, init.host.now());
  }

  /**
   * Starts connecting to the holder of `publicKey` at `addresses` (intros to each; the first that
   * answers wins), or joins a connect() to the same key in progress. Throws a RangeError at once for an
   * unusable key or when the limits are reached. Once `signal` aborts it rejects with an AbortError;
   * the handshake is given up when no other connect() waits on it.
   */
  connect(addresses: readonly Address[], publicKey: Uint8Array, retry: Required<RetryOptions>, options: JoinOptions = {}): Promise<Connection> {
    const { signal, claimed = [], byApplication = false } = options;
    if (signal?.aborted) return Promise.reject(abortErrorOf(signal));
    const id = this.#endpoint.connect(publicKey, addresses, this.#host.now(), retry, claimed);
    // Every connect() of the endpoint's is one of these: a new id is a new handshake.
    if (this.#config.trace !== undefined && !this.#settles.has(id)) {
      this.#config.trace(`handshake ${id} started: intros to ${[...addresses, ...claimed].map(describe).join(", ")} every ${retry.intervalMs} ms, for at most ${retry.deadlineMs} ms`);
    }
    const promise = new Promise<Connection>((resolve, reject) => {
      const settle: Settle = { resolve, reject, byApplication, sendErrorsBefore: this.#counters.sendErrors };
      const waiting = this.#settles.get(id);
      if (waiting !== undefined) waiting.push(settle);
      else this.#settles.set(id, [settle]);
      if (signal === undefined) return;
      const onAbort = () => {
        this.#withdraw(id, settle);
        reject(abortErrorOf(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      settle.resolve = (connection) => (done(), resolve(connection));
      settle.reject = (error) => (done(), reject(error));
    });
    this.#flush();
    return promise;
  }

  /** A connect() waiting on handshake `id` was aborted: the handshake goes too if nobody else waits on it. */
  #withdraw(id: number, settle: Settle): void {
    const waiting = this.#settles.get(id);
    if (waiting === undefined) return;
    waiting.splice(waiting.indexOf(settle), 1);
    if (waiting.length > 0) return;
    this.#settles.delete(id);
    this.#endpoint.cancel(id);
    this.#config.trace?.(`handshake ${id} cancelled: its connect() was aborted`);
    this.#flush();
  }

  /** An INTRO, RESPONSE or COOKIE from `from` (the bytes are the listener's: valid during the call). */
  handle(kind: number, datagram: Uint8Array, from: Address): void {
    this.#datagramFrom = from;
    this.#endpoint.handleDatagram(kind, datagram, from, this.#host.now());
    this.#datagramFrom = undefined;
    this.#flush();
  }

  /** Whether `id` is a handshake's (so its DATA goes to handleData). */
  owns(id: number): boolean {
    return this.#endpoint.owns(id);
  }

  /** A DATA packet for handshake `id`: the initiator's confirm, which establishes the connection. */
  handleData(id: number, datagram: Uint8Array, from: Address): void {
    this.#datagramFrom = from;
    this.#endpoint.handleData(id, datagram, from, this.#host.now());
    this.#datagramFrom = undefined;
    this.#flush();
  }

  /** Connection `driver` ended: its peer's slot is freed, its newest intro remembered. */
  connectionEnded(driver: SessionDriver): void {
    this.#endpoint.connectionEnded(driver.remotePublicKey, driver.localId);
  }

  /** How many are in progress (ours and strangers'). */
  get count(): number {
    const { answering, connecting } = this.#endpoint.stats();
    return answering + connecting;
  }

  stats(): EndpointStats {
    return this.#endpoint.stats();
  }

  /** Every connect() in progress rejects with `error`; nothing more happens (the transport is closing). */
  close(error: Error): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const settles of this.#settles.values()) for (const settle of settles) settle.reject(error);
    this.#settles.clear();
  }

  /** Sends what the endpoint answered, acts on its outcomes, and schedules its timer and its work. */
  #flush(): void {
    if (this.#closed) return;
    const endpoint = this.#endpoint;
    for (let transmit = endpoint.pollTransmit(); transmit !== undefined; transmit = endpoint.pollTransmit()) {
      this.#host.sendDatagram([transmit.datagram], transmit.to);
    }
    for (let event = endpoint.pollEvent(); event !== undefined; event = endpoint.pollEvent()) {
      if (event.type === "connected") this.#connected(event);
      else {
        this.#config.trace?.(`handshake ${event.connectId} failed: ${event.error.code} (${event.error.message})`);
        this.#settle(event.connectId)?.forEach((settle) => settle.reject(this.#timedOutWithSendErrors(event.error, settle)));
      }
    }
    if (endpoint.hasQueuedWork && !this.#workScheduled) {
      this.#workScheduled = true;
      setImmediate(() => {
        this.#workScheduled = false;
        if (this.#closed) return;
        endpoint.processQueued(this.#host.now());
        this.#flush();
      });
    } else if (!endpoint.hasQueuedWork && spareKeyPairWanted() && !this.#spareScheduled) {
      // Off the handshake's path: the datagrams above are gone, and the answer takes a round trip.
      // Queued work goes first: under a flood of intros no spare is made (none would stay spare).
      this.#spareScheduled = true;
      setImmediate(() => {
        this.#spareScheduled = false;
        makeSpareKeyPair();
      });
    }
    this.#arm(endpoint.nextDeadline());
  }

  #arm(deadline: number): void {
    if (deadline === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = deadline;
    if (deadline === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#endpoint.handleTimeout(this.#host.now());
      this.#flush();
    }, Math.max(0, Math.ceil(deadline - this.#host.now())));
    // The socket keeps the process alive while the transport is open; this timer must not on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /**
   * A connect that timed out while the socket's sends failed says so, the last failure its cause: a
   * Deno process whose --allow-net left out the peer's port waited 3 s and was told the peer was down
   * (its denied sends only logged and counted).
   */
  #timedOutWithSendErrors(error: Error, settle: Settle): Error {
    const failed = this.#counters.sendErrors - settle.sendErrorsBefore;
    const last = this.#counters.lastSendError;
    if ((error as SluiceError).code !== "ERR_SLUICE_CONNECT_TIMEOUT" || failed === 0 || last === undefined) return error;
    return new SluiceError("ERR_SLUICE_CONNECT_TIMEOUT", `${error.message}. Meanwhile ${failed} of this socket's sends failed; the last: ${last.message}`, { cause: last });
  }

  /**
   * Whether an application's connect() resolved with `connection`: a connect the node made for an
   * introduction that joined the same handshake must not hand it to accept() as well (an app reading
   * both read one connection twice).
   */
  handedToApplication(connection: Connection): boolean {
    return this.#handedToApplication.has(connection);
  }

  #settle(connectId: number | undefined): Settle[] | undefined {
    if (connectId === undefined) return undefined;
    const settles = this.#settles.get(connectId);
    this.#settles.delete(connectId);
    return settles;
  }

  /** A handshake completed: its connection, under the same id, replacing any older one with the same key. */
  #connected(event: Connected): void {
    const driver = new SessionDriver({
      host: this.#host,
      localId: event.localId,
      remoteId: event.remoteId,
      remoteAddress: event.address,
      arrivedFrom: event.arrivedFrom,
      remotePublicKey: event.remoteKey,
      secrets: event.secrets,
      observedAddress: event.observedAddress,
      remoteIsGateway: event.peerIsGateway,
      inboundQueuePackets: this.#config.inboundQueuePackets,
      reliability: this.#config.reliability,
      random: this.#config.random,
      keyPhaseLimits: this.#seams.keyPhaseLimits,
      confirm: event.role === "initiator" ? { options: this.#config.retry, random: this.#config.random } : undefined,
      stalled: this.#seams.stallConsumersOf?.(event.remoteKey),
    });
    this.#config.trace?.(`handshake ${event.connectId ?? event.localId} completed with ${describe(event.address)} as ${event.role}`);
    // The same peer's older connection: it restarted, or we connected again. It ends with an error
    // (it ended as a clean close: a message its send() had taken was lost, and whenClosed resolved).
    this.#table.add(driver)?.abort(new SluiceError("ERR_SLUICE_REPLACED", `replaced by a new connection with the same peer (${describe(event.address)}): this side connected to it again, or the peer restarted`));
    if (event.observedAddress !== undefined && event.peerIsGateway) this.#observed(event.observedAddress, event.address);
    this.#opened(driver, event.role === "initiator");
    if (event.role === "initiator") driver.sendFirstPacket();
    if (event.firstData !== undefined) {
      // A lone CONFIRM (answered inside), or the initiator's first data: either proves its keys. The
      // connection's first packet, at the end of this turn, tells the initiator (see SessionDriver).
      driver.deliverOpened(event.firstData.plaintext, event.firstData.packetNumber, event.arrivedFrom);
    }
    const connection = connectionFor(driver);
    const settles = this.#settle(event.connectId);
    if (settles === undefined) return this.#accepted(connection);
    if (settles.some((settle) => settle.byApplication)) this.#handedToApplication.add(connection);
    settles.forEach((settle) => settle.resolve(connection));
  }
}


/** host:port (and relay), as a trace line names an address. */
function describe(address: Address): string {
  return addressKey(address.host, address.port, address.relay);
}
