// A transport: one UDP socket, its listener, and the connections and handshakes it routes to.
//
// The listener (route()) runs once per datagram, synchronously, and never throws: the core
// classifies the datagram (assembly/wire.ts), the listener finds its queue by connection id (data,
// responses) or by source address (intros), and hands it over with a try-send that answers
// 'sent' | 'full' | 'closed' at once. Every datagram that goes nowhere is counted under one reason.
// Expensive work (X25519, AES-GCM) happens in the queues' consumers, never in the listener, and
// work for strangers is bounded: intro decryptions per address, the gateway accept ramp, and the
// number of handshakes and connections.
//
// A handshake's consumer awaits its own queue's recv(): a receive, never a send. No await anywhere
// waits for a bounded queue to have room.
import { addressKey, checkAddress, type Address } from "./wire/address.ts";
import { Arena, DEFAULT_FRAME_BYTES } from "./memory/arena.ts";
import { channel } from "./channel/channel.ts";
import { Connection, type ConnectionHost } from "./connection.ts";
import { generateKeyPair, importPrivateKey, importPublicKey, rawPublicKey, type PublicKey } from "./handshake/crypto.ts";
import { Framer, PARSE_NO_FRAME } from "./wire/framer.ts";
import { PacketAead } from "./wire/packet-aead.ts";
import {
  invalidArgType, invalidArgValue, validateBoolean, validateBytes, validateFunction, validateInteger, validateObject,
  validateString,
} from "./errors/validate.ts";
import {
  buildIntro, buildResponse, openIntro, openResponse, STATUS_OK, STATUS_VERSION_MISMATCH,
  type Identity, type IntroState, type OpenedIntro, type SessionKeys,
} from "./handshake/messages.ts";
import {
  AcceptRamp, checkAcceptRamp, DEFAULT_ACCEPT_RAMP, PerKeyInterval, RecentlyClosed, type AcceptRampStep,
} from "./handshake/admission.ts";
import { checkRetryOptions, DEFAULT_RETRY, RetrySchedule, type RetryOptions } from "./handshake/retry.ts";
import type { Receiver } from "./channel/receiver.ts";
import { checkReliabilityOptions, type ReliabilityConfig, type ReliabilityOptions } from "./reliable/options.ts";
import type { Sender } from "./channel/sender.ts";
import { noDrops, type DropReason, type TransportStats } from "./transport-stats.ts";
import { openSocket, type DatagramSocket, type SocketFactory } from "./udp-socket.ts";
import { compatible, describeVersion, normalizeVersion, type ProtocolVersion } from "./wire/version.ts";
import {
  FRAME_CONFIRM, FRAME_CONFIRM_ACK, KIND_DATA, KIND_INTRO, KIND_RESPONSE, MAX_DATAGRAM_BYTES,
  WIRE_UNKNOWN_VERSION,
} from "./wire/constants.ts";

/** Kernel receive buffer asked for (Linux doubles it): a 208 KiB default lost most of a flood. */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Datagrams queued per connection before the listener drops (freenet: 2048 = ~2.3 s at 10 Mbit/s). */
export const DEFAULT_INBOUND_QUEUE_PACKETS = 1024;
/** Datagrams queued per handshake (intros, responses, the confirm). */
export const DEFAULT_HANDSHAKE_QUEUE_PACKETS = 16;
export const DEFAULT_MAX_CONNECTIONS = 128;
export const DEFAULT_MAX_HANDSHAKES = 64;
/** New inbound connections waiting for accept(); beyond this a new connection is refused (counted). */
export const DEFAULT_ACCEPT_QUEUE_CONNECTIONS = 64;
/** One intro decryption per source address per this interval (freenet: 1 s). */
export const INTRO_DECRYPT_INTERVAL_MS = 1000;
/** Late packets for a closed connection are dropped without crypto for this long. */
export const RECENTLY_CLOSED_MS = 2000;
/** A responder waits this long for the initiator's confirm (freenet: 5 s). */
export const RESPONDER_CONFIRM_TIMEOUT_MS = 5000;
/** Source addresses the intro limiter remembers at once. */
const MAX_TRACKED_ADDRESSES = 65536;
/**
 * Random draws for a free connection id. At most ~6 × 65,536 of 2^31 ids are ever taken (connections,
 * handshakes, recently closed), so 16 taken draws in a row has a chance below 10^-58.
 */
const CONNECTION_ID_DRAWS = 16;
/** A drop reason is logged at most once per this interval. */
const LOG_INTERVAL_MS = 10_000;

export interface TransportOptions {
  /** Address to bind. Default "0.0.0.0" (use "::" for IPv6). */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /** A gateway accepts intros from strangers; other nodes only answer peers they are connecting to. Default false. */
  gateway?: boolean;
  /** This node's static X25519 secret key, 32 bytes. Default: a new random key. */
  secretKey?: Uint8Array;
  receiveBufferBytes?: number;
  inboundQueuePackets?: number;
  handshakeQueuePackets?: number;
  maxConnections?: number;
  maxHandshakes?: number;
  acceptQueueConnections?: number;
  /** Gateway accept ramp; [] for none. Default 5/s for 30 s, 20/s until 2 min, then unlimited. */
  acceptRamp?: readonly AcceptRampStep[];
  /** Bounds and timers of every connection's reliable delivery (message size, windows, RTO floor, keep-alive...). */
  reliability?: ReliabilityOptions;
  /** Defaults for connect(): intro re-sends every 200 ms ± 20%, at most 40, within 3 s. */
  retry?: RetryOptions;
  /** The protocol version this node speaks and the oldest it accepts. Default 2.0, accepting ≥ 2.0. */
  version?: ProtocolVersion;
  /** Where rate-limited warnings go. Default console.warn; null for silence. */
  log?: ((message: string) => void) | null;
  /** @internal Replaces the UDP socket (tests put a seeded fault injector in front of a real one). */
  socket?: SocketFactory;
  /** @internal For tests: connections to peers with these public keys never consume their inbound queue. */
  stallConsumersOf?: (remotePublicKey: Uint8Array) => boolean;
  /** Random numbers in [0, 1) for retry jitter. Default Math.random. */
  random?: () => number;
}

interface Settle {
  resolve(connection: Connection): void;
  reject(error: Error): void;
}

/** A handshake in progress: the listener routes its packets to `queue`; #runHandshake consumes them. */
interface Handshake {
  role: "initiator" | "responder";
  localId: number;
  address: Address;
  key: string;
  queue: Sender;
  receiver: Receiver;
  done: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** connect()'s promise (both roles: a connecting side may become the responder in a simultaneous open). */
  settle?: Settle;
  // initiator
  remoteStatic?: Uint8Array;
  remoteStaticKey?: PublicKey;
  intro?: IntroState;
  schedule?: RetrySchedule;
  // responder
  opened?: OpenedIntro;
  response?: Uint8Array;
  keys?: SessionKeys;
  remoteId?: number;
  /** The connection a restarted peer's new handshake will replace once it confirms. */
  replacing?: Connection;
}

function positiveInteger(options: TransportOptions, name: keyof TransportOptions, fallback: number, max: number): number {
  const value = options[name] ?? fallback;
  validateInteger(value, `options.${name}`, 1, max);
  return value;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}


export class Transport {
  /** This node's static X25519 public key (32 bytes): what peers pass to connect(). */
  readonly publicKey: Uint8Array;
  readonly #identity: Identity;
  readonly #gateway: boolean;
  readonly #version: Required<ProtocolVersion>;
  readonly #arena: Arena;
  readonly #framer: Framer;
  readonly #aead: PacketAead;
  #socket!: DatagramSocket;
  readonly #retry: Required<RetryOptions>;
  readonly #reliability: ReliabilityConfig;
  readonly #stallConsumersOf: ((remotePublicKey: Uint8Array) => boolean) | undefined;
  readonly #random: () => number;
  readonly #log: ((message: string) => void) | null;
  readonly #limits: {
    inboundQueuePackets: number;
    handshakeQueuePackets: number;
    maxConnections: number;
    maxHandshakes: number;
    acceptQueueConnections: number;
  };

  /** Connections and handshakes by the connection id the peer sends to (chosen by us). */
  readonly #byId = new Map<number, Connection | Handshake>();
  readonly #handshakeByAddress = new Map<string, Handshake>();
  readonly #connectionByAddress = new Map<string, Connection>();
  readonly #recentlyClosedIds: RecentlyClosed<number>;
  readonly #recentlyClosedAddresses: RecentlyClosed<string>;
  readonly #introLimiter = new PerKeyInterval(INTRO_DECRYPT_INTERVAL_MS, MAX_TRACKED_ADDRESSES);
  readonly #acceptRamp: AcceptRamp;
  readonly #acceptQueue: Connection[] = [];
  readonly #acceptWaiters: ((connection: Connection | undefined) => void)[] = [];
  #closed = false;
  #externalAddress: Address | undefined;

  readonly #stats = {
    datagramsReceived: 0, bytesReceived: 0, datagramsRouted: 0, datagramsSent: 0, bytesSent: 0, sendErrors: 0,
    listenerErrors: 0, handshakesCompleted: 0, handshakesFailed: 0, droppedAfterRouting: 0,
  };
  readonly #drops = noDrops();
  readonly #lastLogged = new Map<string, number>();
  readonly #host: ConnectionHost;

  private constructor(options: TransportOptions, identity: Identity) {
    this.#identity = identity;
    this.publicKey = identity.publicKey;
    if (options.gateway !== undefined) validateBoolean(options.gateway, "options.gateway");
    this.#gateway = options.gateway === true;
    this.#version = normalizeVersion(options.version, "options.version");
    this.#retry = checkRetryOptions(options.retry, "options.retry", DEFAULT_RETRY);
    this.#reliability = checkReliabilityOptions(options.reliability, "options.reliability");
    this.#stallConsumersOf = options.stallConsumersOf;
    if (options.random !== undefined) validateFunction(options.random, "options.random");
    this.#random = options.random ?? Math.random;
    if (options.log !== undefined && options.log !== null && typeof options.log !== "function") {
      throw invalidArgType("options.log", "of type function or null", options.log);
    }
    this.#log = options.log === undefined ? (message) => console.warn(message) : options.log;
    this.#limits = {
      inboundQueuePackets: positiveInteger(options, "inboundQueuePackets", DEFAULT_INBOUND_QUEUE_PACKETS, 65536),
      handshakeQueuePackets: positiveInteger(options, "handshakeQueuePackets", DEFAULT_HANDSHAKE_QUEUE_PACKETS, 4096),
      maxConnections: positiveInteger(options, "maxConnections", DEFAULT_MAX_CONNECTIONS, 65536),
      maxHandshakes: positiveInteger(options, "maxHandshakes", DEFAULT_MAX_HANDSHAKES, 65536),
      acceptQueueConnections: positiveInteger(options, "acceptQueueConnections", DEFAULT_ACCEPT_QUEUE_CONNECTIONS, 65536),
    };
    this.#arena = Arena.create({ bytes: arenaBytesFor(this.#limits), frameBytes: DEFAULT_FRAME_BYTES });
    this.#framer = new Framer(this.#arena);
    this.#aead = new PacketAead(this.#arena);
    const now = performance.now();
    this.#acceptRamp = new AcceptRamp(checkAcceptRamp(options.acceptRamp, "options.acceptRamp", DEFAULT_ACCEPT_RAMP), now);
    this.#recentlyClosedIds = new RecentlyClosed(RECENTLY_CLOSED_MS, 4 * this.#limits.maxConnections);
    this.#recentlyClosedAddresses = new RecentlyClosed(RECENTLY_CLOSED_MS, 4 * this.#limits.maxConnections);
    this.#host = {
      arena: this.#arena,
      aead: this.#aead,
      sendDatagram: (chunks, to) => this.#send(chunks, to),
      countDrop: (reason) => this.#consumerDrop(reason),
      connectionClosed: (connection) => this.#forget(connection),
      now: () => performance.now(),
    };
  }

  /** Binds a UDP socket and starts listening. */
  static async bind(options: TransportOptions = {}): Promise<Transport> {
    validateObject(options, "options");
    const host = options.host ?? "0.0.0.0";
    validateString(host, "options.host");
    const port = options.port ?? 0;
    validateInteger(port, "options.port", 0, 65535);
    let identity: Identity;
    if (options.secretKey === undefined) identity = generateKeyPair();
    else {
      validateBytes(options.secretKey, "options.secretKey", 32);
      const privateKey = importPrivateKey(options.secretKey);
      identity = { privateKey, publicKey: rawPublicKey(privateKey) };
    }
    const receiveBufferBytes = positiveInteger(options, "receiveBufferBytes", DEFAULT_RECEIVE_BUFFER_BYTES, 1 << 30);
    const transport = new Transport(options, identity);
    try {
      transport.#socket = await (options.socket ?? openSocket)({
        host, port, receiveBufferBytes,
        onDatagram: transport.#onDatagram,
        onSendError: (error) => {
          transport.#stats.sendErrors++;
          transport.#warn("sendError", `UDP send failed: ${error.message}`);
        },
      });
    } catch (error) {
      transport.#framer.dispose();
      transport.#aead.dispose();
      throw error;
    }
    return transport;
  }

  /** The bound local address. */
  get address(): Address {
    return { ...this.#socket.address };
  }

  /** This node's address as the last gateway it connected to observed it (undefined before any). */
  get externalAddress(): Address | undefined {
    return this.#externalAddress && { ...this.#externalAddress };
  }

  /**
   * Connects to the node at `address` whose static public key is `publicKey`. A gateway answers at
   * once; a peer that is not a gateway must be connecting to us at about the same time. Intros are
   * re-sent on `options` (default every 200 ms ± 20%, at most 40, within 3 s), then this rejects.
   */
  connect(address: Address, publicKey: Uint8Array, options?: RetryOptions): Promise<Connection> {
    try {
      const to = checkAddress(address, "address");
      validateBytes(publicKey, "publicKey", 32);
      const remoteStatic = new Uint8Array(publicKey);
      const retry = options === undefined ? this.#retry : checkRetryOptions(options, "options", this.#retry);
      if (this.#closed) throw new Error("connect on a closed transport");
      let remoteStaticKey: PublicKey;
      try {
        remoteStaticKey = importPublicKey(remoteStatic);
      } catch {
        throw invalidArgValue("publicKey", publicKey, "is not a usable X25519 public key");
      }
      const key = addressKey(to.host, to.port);
      if (this.#handshakeByAddress.has(key)) throw new Error(`a handshake with ${key} is already in progress`);
      if (this.#handshakeByAddress.size >= this.#limits.maxHandshakes) throw new RangeError(`too many handshakes in progress (options.maxHandshakes = ${this.#limits.maxHandshakes})`);
      if (this.#connectionByAddress.size >= this.#limits.maxConnections && !this.#connectionByAddress.has(key)) {
        throw new RangeError(`too many connections (options.maxConnections = ${this.#limits.maxConnections})`);
      }
      return new Promise<Connection>((resolve, reject) => {
        const now = performance.now();
        const handshake = this.#newHandshake("initiator", to, key);
        handshake.settle = { resolve, reject };
        handshake.remoteStatic = remoteStatic;
        handshake.remoteStaticKey = remoteStaticKey;
        handshake.intro = buildIntro(this.#framer, this.#identity, remoteStatic, remoteStaticKey, handshake.localId, this.#version);
        handshake.schedule = new RetrySchedule(retry, now, this.#random);
        this.#resendIntro(handshake);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The next inbound connection, or undefined once the transport is closed. */
  accept(): Promise<Connection | undefined> {
    const ready = this.#acceptQueue.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#acceptWaiters.push(resolve));
  }

  stats(): TransportStats {
    const perConnection = [...this.#connectionByAddress.values()].map((connection) => connection.stats());
    return {
      socket: this.#socket.kind,
      ...this.#stats,
      drops: { ...this.#drops },
      connections: this.#connectionByAddress.size,
      handshakes: this.#handshakeByAddress.size,
      perConnection,
    };
  }

  /** Closes every connection and handshake, then the socket. Pending connect()s reject; accept() ends. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const handshake of [...this.#handshakeByAddress.values()]) this.#failHandshake(handshake, new Error("the transport was closed"));
    for (const connection of [...this.#connectionByAddress.values()]) connection.abort();
    for (const connection of this.#acceptQueue.splice(0)) connection.abort();
    for (const waiter of this.#acceptWaiters.splice(0)) waiter(undefined);
    await this.#socket.close();
    this.#framer.dispose();
    this.#aead.dispose();
    this.#arena.forget();
  }

  // ---------------------------------------------------------------- the listener

  readonly #onDatagram = (datagram: Uint8Array, host: string, port: number): void => {
    try {
      this.route(datagram, host, port);
    } catch (error) {
      // A bug of ours, never a reason to stop routing for every other peer.
      this.#stats.listenerErrors++;
      this.#warn("listenerError", `listener error (datagram dropped): ${(error as Error).stack ?? String(error)}`);
    }
  };

  /** @internal Routes one datagram; what happened to it is counted. Exposed for the never-blocks tests. */
  route(datagram: Uint8Array, host: string, port: number): "sent" | "full" | "closed" | "dropped" {
    this.#stats.datagramsReceived++;
    this.#stats.bytesReceived += datagram.length;
    if (this.#closed) return this.#countDrop("recentlyClosed");
    const framer = this.#framer;
    const kind = framer.parse(datagram);
    if (kind < 0) return kind === PARSE_NO_FRAME ? this.#counted("full") : this.#countDrop(kind === WIRE_UNKNOWN_VERSION ? "versionMismatch" : "malformed");
    if (kind === KIND_INTRO) return this.#routeIntro(host, port);
    const id = framer.connection();
    const target = this.#byId.get(id);
    if (target === undefined) return this.#countDrop(this.#recentlyClosedIds.has(id, performance.now()) ? "recentlyClosed" : "unknownSender");
    if (target instanceof Connection) {
      if (kind !== KIND_DATA) return this.#countDrop("unknownSender");
      return this.#counted(target.route(framer, host, port));
    }
    // A response belongs to an initiator, data to a responder awaiting its confirm.
    if ((kind === KIND_RESPONSE) !== (target.role === "initiator")) return this.#countDrop("unknownSender");
    return this.#counted(framer.handOver(target.queue));
  }

  /** An intro parse() accepted: to its handshake, or (within the limits on strangers) to a new one. */
  #routeIntro(host: string, port: number): "sent" | "full" | "closed" | "dropped" {
    const key = addressKey(host, port);
    const handshake = this.#handshakeByAddress.get(key);
    if (handshake !== undefined) return this.#counted(this.#framer.handOver(handshake.queue));
    const now = performance.now();
    const established = this.#connectionByAddress.get(key);
    if (established === undefined) {
      // A stranger. Only a gateway talks to strangers; a recently closed peer waits out its grace.
      if (!this.#gateway) return this.#countDrop(this.#recentlyClosedAddresses.has(key, now) ? "recentlyClosed" : "unknownSender");
      if (!this.#introLimiter.tryTake(key, now) || !this.#acceptRamp.tryTake(now)) return this.#countDrop("rateLimited");
    } else if (!this.#introLimiter.tryTake(key, now)) {
      return this.#countDrop("rateLimited"); // a restarted peer re-sends intros; one decryption per second
    }
    if (this.#handshakeByAddress.size >= this.#limits.maxHandshakes) return this.#countDrop("overCapacity");
    if (established === undefined && this.#connectionByAddress.size >= this.#limits.maxConnections) return this.#countDrop("overCapacity");
    const fresh = this.#newHandshake("responder", { host, port }, key);
    fresh.replacing = established;
    fresh.timer = setTimeout(() => this.#failHandshake(fresh, new Error("no confirm from the initiator")), RESPONDER_CONFIRM_TIMEOUT_MS);
    return this.#counted(this.#framer.handOver(fresh.queue));
  }

  #counted(outcome: "sent" | "full" | "closed"): "sent" | "full" | "closed" {
    if (outcome === "sent") this.#stats.datagramsRouted++;
    else if (outcome === "full") this.#countDrop("queueFull");
    else this.#countDrop("recentlyClosed");
    return outcome;
  }

  #countDrop(reason: DropReason): "dropped" {
    this.#drops[reason]++;
    return "dropped";
  }

  /** A drop by a queue's consumer, of a datagram the listener had routed (so counted there too). */
  #consumerDrop(reason: DropReason): void {
    this.#drops[reason]++;
    this.#stats.droppedAfterRouting++;
  }

  #warn(topic: string, message: string): void {
    if (this.#log === null) return;
    const now = performance.now();
    const last = this.#lastLogged.get(topic);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    this.#lastLogged.set(topic, now);
    this.#log(`sluice: ${message}`);
  }

  #send(chunks: readonly Uint8Array[], to: Address): void {
    this.#stats.datagramsSent++;
    for (const chunk of chunks) this.#stats.bytesSent += chunk.length;
    this.#socket.send(chunks, to.host, to.port);
  }

  // ---------------------------------------------------------------- handshakes

  /** A random id not in use. Throws after CONNECTION_ID_DRAWS taken ones (never, in practice: see there). */
  #newConnectionId(): number {
    const now = performance.now();
    const draw = new Uint32Array(1);
    for (let attempt = 0; attempt < CONNECTION_ID_DRAWS; attempt++) {
      // 31 bits: V8 keeps such a number a small integer, so the listener's lookup by id allocates
      // nothing (ids of 2^31 and up cost each datagram ~12 ns more, measured).
      const id = crypto.getRandomValues(draw)[0]! >>> 1;
      if (id !== 0 && !this.#byId.has(id) && !this.#recentlyClosedIds.has(id, now)) return id;
    }
    throw new RangeError(`no free connection id after ${CONNECTION_ID_DRAWS} random draws`);
  }

  #newHandshake(role: "initiator" | "responder", address: Address, key: string): Handshake {
    const [queue, receiver] = channel(this.#limits.handshakeQueuePackets, { arena: this.#arena, maxPacketSize: MAX_DATAGRAM_BYTES, maxLanes: 1 });
    const handshake: Handshake = { role, localId: this.#newConnectionId(), address, key, queue, receiver, done: false };
    this.#byId.set(handshake.localId, handshake);
    this.#handshakeByAddress.set(key, handshake);
    void this.#runHandshake(handshake);
    return handshake;
  }

  /** The handshake's consumer: one packet at a time, until the handshake ends (its queue closes). */
  async #runHandshake(handshake: Handshake): Promise<void> {
    for (;;) {
      const packet = await handshake.receiver.recv();
      if (packet === undefined || handshake.done) return;
      try {
        this.#handshakePacket(handshake, packet);
      } catch (error) {
        this.#stats.listenerErrors++;
        this.#warn("handshakeError", `handshake error (packet dropped): ${(error as Error).stack ?? String(error)}`);
      }
    }
  }

  #handshakePacket(handshake: Handshake, packet: Uint8Array): void {
    const kind = this.#framer.parse(packet);
    if (kind === KIND_INTRO) this.#handshakeIntro(handshake, packet);
    else if (kind === KIND_RESPONSE) this.#handshakeResponse(handshake, packet);
    else if (kind === KIND_DATA) this.#handshakeConfirm(handshake, packet, this.#framer.packetNumber());
  }

  #handshakeIntro(handshake: Handshake, packet: Uint8Array): void {
    if (handshake.role === "responder" && handshake.opened !== undefined) {
      // The initiator did not get our response and repeats its intro: repeat the same response.
      if (equalBytes(packet, handshake.opened.datagram) && handshake.response) this.#send([handshake.response], handshake.address);
      else this.#consumerDrop("handshakeRedundant");
      return;
    }
    if (handshake.role === "initiator") {
      // Simultaneous open: both sides sent intros. The side with the higher static key answers; the
      // other keeps its own intro going and ignores the peer's (without spending a decryption on it).
      if (compareBytes(this.publicKey, handshake.remoteStatic!) < 0) {
        this.#consumerDrop("handshakeRedundant");
        return;
      }
      if (!this.#introLimiter.tryTake(handshake.key, performance.now())) {
        this.#consumerDrop("rateLimited");
        return;
      }
    }
    const opened = openIntro(this.#identity, packet);
    if (opened === undefined) {
      this.#consumerDrop("decryptFailed");
      if (handshake.role === "responder") this.#failHandshake(handshake);
      return;
    }
    // Who may connect: a gateway takes anyone; otherwise the peer we are connecting to, or the peer
    // of an established connection that restarted (same static key).
    const expected = handshake.remoteStatic ?? handshake.replacing?.remotePublicKey;
    if (!this.#gateway && (expected === undefined || !equalBytes(expected, opened.initiatorStatic))) {
      this.#consumerDrop("unknownSender");
      if (handshake.role === "responder") this.#failHandshake(handshake);
      return;
    }
    const agreed = compatible(this.#version, opened.version);
    const built = buildResponse(this.#framer, this.#identity, opened, {
      status: agreed ? STATUS_OK : STATUS_VERSION_MISMATCH,
      version: this.#version,
      responderConnection: handshake.localId,
      observedAddress: handshake.address,
    });
    if (built === undefined || built.datagram.length > packet.length) {
      // An unusable initiator key (or a response larger than the intro: never amplify).
      this.#consumerDrop("decryptFailed");
      if (handshake.role === "responder") this.#failHandshake(handshake);
      return;
    }
    this.#send([built.datagram], handshake.address);
    if (!agreed) {
      this.#consumerDrop("versionMismatch");
      this.#failHandshake(handshake, new Error(`protocol version mismatch: ${handshake.key} speaks ${describeVersion(opened.version)}, this node ${describeVersion(this.#version)}`));
      return;
    }
    // Now (or from now on, for a connecting side that lost the tie-break) the responder.
    handshake.role = "responder";
    clearTimeout(handshake.timer);
    handshake.timer = setTimeout(() => this.#failHandshake(handshake, new Error(`no confirm from ${handshake.key} within ${RESPONDER_CONFIRM_TIMEOUT_MS} ms of our response`)), RESPONDER_CONFIRM_TIMEOUT_MS);
    handshake.opened = opened;
    handshake.response = built.datagram;
    handshake.keys = built.keys;
  }

  #handshakeResponse(handshake: Handshake, packet: Uint8Array): void {
    const opened = openResponse(this.#identity, handshake.intro!, packet);
    if (opened === undefined) {
      this.#consumerDrop("decryptFailed");
      return;
    }
    if (opened.status === STATUS_VERSION_MISMATCH || !compatible(this.#version, opened.version)) {
      this.#consumerDrop("versionMismatch");
      this.#failHandshake(handshake, new Error(`protocol version mismatch: ${handshake.key} speaks ${describeVersion(opened.version)}, this node ${describeVersion(this.#version)}`));
      return;
    }
    if (opened.status !== STATUS_OK || opened.responderConnection === 0) {
      this.#consumerDrop("malformed");
      return;
    }
    if (opened.observedAddress) this.#externalAddress = opened.observedAddress;
    const connection = new Connection({
      host: this.#host,
      localId: handshake.localId,
      remoteId: opened.responderConnection,
      remoteAddress: handshake.address,
      remotePublicKey: handshake.remoteStatic!,
      keys: opened.keys,
      inboundQueuePackets: this.#limits.inboundQueuePackets,
      reliability: this.#reliability,
      stalled: this.#stallConsumersOf?.(handshake.remoteStatic!),
      observedAddress: opened.observedAddress,
      confirm: { options: this.#retry, random: this.#random },
    });
    this.#establish(handshake, connection);
  }

  /** A data packet to a responder: the initiator's confirm (or its first message, if the confirm was lost). */
  #handshakeConfirm(handshake: Handshake, packet: Uint8Array, packetNumber: number): void {
    if (handshake.keys === undefined) {
      this.#consumerDrop("unknownSender");
      return;
    }
    const plaintext = this.#aead.open(handshake.keys.receive, packet);
    if (plaintext === undefined) {
      this.#consumerDrop("decryptFailed");
      return;
    }
    const opened = handshake.opened!;
    const connection = new Connection({
      host: this.#host,
      localId: handshake.localId,
      remoteId: opened.initiatorConnection,
      remoteAddress: handshake.address,
      remotePublicKey: opened.initiatorStatic,
      keys: handshake.keys,
      inboundQueuePackets: this.#limits.inboundQueuePackets,
      reliability: this.#reliability,
      stalled: this.#stallConsumersOf?.(opened.initiatorStatic),
    });
    // The confirm (answered inside), or the initiator's first data if the confirm was lost: either proves its keys.
    connection.deliverOpened(plaintext, packetNumber);
    if (plaintext[0] !== FRAME_CONFIRM) connection.sendFrame(FRAME_CONFIRM_ACK);
    this.#establish(handshake, connection);
  }

  /** The handshake becomes a connection: same id, packets queued meanwhile move over. */
  #establish(handshake: Handshake, connection: Connection): void {
    this.#endHandshake(handshake);
    this.#stats.handshakesCompleted++;
    handshake.replacing?.abort(); // the restarted peer's old connection
    const previous = this.#connectionByAddress.get(handshake.key);
    if (previous !== undefined && previous !== handshake.replacing) previous.abort(); // a fresh connect supersedes
    this.#byId.set(connection.localId, connection);
    this.#connectionByAddress.set(handshake.key, connection);
    this.#recentlyClosedAddresses.delete(handshake.key);
    for (let packet = handshake.receiver.tryRecv(); packet instanceof Uint8Array; packet = handshake.receiver.tryRecv()) {
      if (this.#framer.parse(packet) === KIND_DATA) connection.route(this.#framer, handshake.address.host, handshake.address.port);
    }
    handshake.receiver.close();
    if (handshake.settle) {
      handshake.settle.resolve(connection);
      return;
    }
    const waiter = this.#acceptWaiters.shift();
    if (waiter !== undefined) waiter(connection);
    else if (this.#acceptQueue.length < this.#limits.acceptQueueConnections) this.#acceptQueue.push(connection);
    else {
      // The application is not accepting: refuse the newcomer rather than wait for room.
      this.#countDrop("acceptQueueFull");
      this.#warn("acceptQueueFull", `accept queue full (${this.#limits.acceptQueueConnections}): new connection from ${handshake.key} refused`);
      connection.abort();
    }
  }

  #resendIntro(handshake: Handshake): void {
    if (handshake.done || handshake.role !== "initiator") return;
    const schedule = handshake.schedule!;
    const now = performance.now();
    const due = schedule.poll(now);
    if (due === "expired") {
      this.#failHandshake(handshake, new Error(
        `connect to ${handshake.key} failed: no valid answer after ${schedule.attempts} intros within ${Math.round(schedule.deadlineAt - schedule.startedAt)} ms ` +
        "(the peer is down, is not a gateway and not connecting to us, or its public key is not the one given)",
      ));
      return;
    }
    if (due === "send") this.#send([handshake.intro!.datagram], handshake.address);
    handshake.timer = setTimeout(() => this.#resendIntro(handshake), Math.max(0, schedule.nextDeadline() - now));
  }

  #endHandshake(handshake: Handshake): void {
    handshake.done = true;
    clearTimeout(handshake.timer);
    if (this.#byId.get(handshake.localId) === handshake) this.#byId.delete(handshake.localId);
    if (this.#handshakeByAddress.get(handshake.key) === handshake) this.#handshakeByAddress.delete(handshake.key);
    handshake.queue.close();
  }

  #failHandshake(handshake: Handshake, error?: Error): void {
    if (handshake.done) return;
    this.#endHandshake(handshake);
    handshake.receiver.close();
    handshake.receiver.drain(() => {});
    this.#stats.handshakesFailed++;
    if (handshake.settle && error) handshake.settle.reject(error);
  }

  #forget(connection: Connection): void {
    const now = performance.now();
    if (this.#byId.get(connection.localId) === connection) this.#byId.delete(connection.localId);
    this.#recentlyClosedIds.add(connection.localId, now);
    for (const [key, known] of this.#connectionByAddress) {
      if (known !== connection) continue;
      this.#connectionByAddress.delete(key);
      this.#recentlyClosedAddresses.add(key, now);
    }
  }
}

/** Frames for every queue at capacity at once, so a stalled consumer can never empty the pool for others. */
function arenaBytesFor(limits: { inboundQueuePackets: number; handshakeQueuePackets: number; maxConnections: number; maxHandshakes: number }): number {
  // Per channel: its packets, its control frames (channel, lane) and its descriptor ring.
  const perChannel = (capacity: number) => capacity + 2 + Math.ceil((capacity * 4) / DEFAULT_FRAME_BYTES) + 1;
  const frames = limits.maxConnections * perChannel(limits.inboundQueuePackets)
    + limits.maxHandshakes * perChannel(limits.handshakeQueuePackets)
    + 256; // the scratch frames (the framer's two, the AEAD's), the thread's frame cache, bitmap overheads
  const bytes = frames * DEFAULT_FRAME_BYTES + 64 * 1024;
  const ceiling = 2 * 1024 * 1024 * 1024 - 65536;
  if (bytes > ceiling) {
    throw new RangeError(`maxConnections × inboundQueuePackets (${limits.maxConnections} × ${limits.inboundQueuePackets}) needs ${Math.ceil(bytes / 2 ** 20)} MiB of frames, over the 2 GiB ceiling of shared memory`);
  }
  return bytes;
}
