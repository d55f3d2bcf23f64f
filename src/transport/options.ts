// A transport's options: what each means, its default and its bound, checked once by bind(); and the
// size of the transport's arena: every queue's reserve, and one shared part for bursts beyond it.
import {
  invalidArgType, invalidArgValue, keysOf, outOfRange, validateAbortSignal, validateBoolean, validateBytes, validateFunction, validateInteger,
  validateKnownKeys, validateObject, validateOneOf,
} from "../errors/validate.ts";
import { DEFAULT_FRAME_BYTES, MAX_ARENA_BYTES } from "../memory/arena.ts";
import { validateHost } from "../wire/address.ts";
import { normalizeVersion, type ProtocolVersion } from "../wire/version.ts";
import { checkAcceptRamp, DEFAULT_ACCEPT_RAMP, type AcceptRampStep } from "../handshake/admission.ts";
import type { HandshakeLimits } from "../handshake/endpoint.ts";
import { checkRetryOptions, DEFAULT_RETRY, type RetryOptions } from "../handshake/retry.ts";
import { checkReliabilityOptions, type ReliabilityConfig, type ReliabilityOptions } from "../reliable/options.ts";
import type { KeyPhaseLimits } from "../wire/packet-keys.ts";
import type { AcceptIntroductionsPolicy, IntroductionPolicy } from "../rendezvous/rendezvous.ts";
import { decodeKey } from "./identity.ts";
import { traceFor, type Trace } from "./log.ts";
import { checkRelayOptions, type RelayConfig, type RelayOptions } from "./relays.ts";
import type { HostLookup } from "./resolve.ts";
import type { SocketFactory } from "./udp-socket.ts";

// Frozen like DEFAULT_RELIABILITY, so no program can change another's defaults. (Here because
// src/handshake/ was being rewritten when this was added: where they are defined is the better place.)
Object.freeze(DEFAULT_RETRY);
for (const step of DEFAULT_ACCEPT_RAMP) Object.freeze(step);
Object.freeze(DEFAULT_ACCEPT_RAMP);

/** Kernel receive buffer asked for (Linux doubles it): a 208 KiB default lost most of a flood. */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Datagrams queued per connection before the listener drops (freenet: 2048 = ~2.3 s at 10 Mbit/s). */
export const DEFAULT_INBOUND_QUEUE_PACKETS = 1024;
/**
 * Datagrams every inbound queue may always hold, whatever the others hold (or its capacity, if
 * smaller): a connection's consumer drains its queue after each datagram the socket delivers, so a
 * queue holds more than a few only when its consumer stalls or the process is busy.
 */
export const QUEUE_RESERVE_PACKETS = 16;
/**
 * Datagrams all inbound queues may hold together beyond their reserves (2 KiB of shared memory each,
 * resident only once used): 32 MiB, sixteen full default queues.
 */
export const DEFAULT_SHARED_QUEUE_PACKETS = 16_384;
/** Connections accepted from peers at once; as many again may be opened by connect(). */
export const DEFAULT_MAX_CONNECTIONS = 128;
/**
 * ...on a gateway: measured, an idle connection costs a gateway ~27 KiB (RSS), so 10,000 take ~270
 * MiB, and its arena (every queue's reserve) ~870 MiB of address space, touched only as used.
 */
export const DEFAULT_GATEWAY_MAX_CONNECTIONS = 10_000;
/**
 * A gateway's connections ping after this long without hearing from the peer (unless
 * reliability.keepAliveMs says otherwise): longer than its peers' (5 s by default, and at most ~25 s
 * where they keep NAT bindings open), so a peer's PING always comes first and the gateway only
 * answers; a vanished idle peer is still noticed within this + deadPeerTimeoutMs. With both sides at
 * 5 s, both pinged within the same millisecond: twice the datagrams one ping and its ACK need, and
 * a gateway's idle CPU is what its keep-alive datagrams cost (~22 µs each, measured at 10,000 peers).
 */
export const DEFAULT_GATEWAY_KEEP_ALIVE_MS = 30_000;
/** Accepted connections from one IP (IPv6: one /64). */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 32;
/** Intros answered and waiting for the initiator's first data packet, in all... */
export const DEFAULT_MAX_HANDSHAKES = 256;
/** ...and from one IP (IPv6: one /64). */
export const DEFAULT_MAX_HANDSHAKES_PER_IP = 8;
/** Our own connect()s in progress at once (never shared with strangers). */
export const DEFAULT_MAX_CONNECTING = 256;
/** Intro decryptions (X25519) one IP may cause at once... */
export const DEFAULT_INTRO_BURST_PER_IP = 16;
/** ...refilled at this rate per second. */
export const DEFAULT_INTROS_PER_IP_PER_SECOND = 8;
/**
 * More intro decryptions than this in one second, or half of maxHandshakes pending, and the node is
 * "under load": an intro must then carry a valid cookie (mac2), which proves its source address,
 * before anything is spent on it. ~64 decryptions cost ~2–3% of a core here.
 */
export const DEFAULT_UNDER_LOAD_INTROS_PER_SECOND = 64;
/** New inbound connections waiting for accept(); beyond this a new connection is refused (counted). */
export const DEFAULT_ACCEPT_QUEUE_CONNECTIONS = 64;

export interface TransportOptions {
  /** Address to bind, or a host name resolved once (dns.lookup, IPv4 first). Default "0.0.0.0" (use "::" for IPv6). */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /** A gateway accepts intros from strangers; other nodes only answer peers they are connecting to. Default false. */
  gateway?: boolean;
  /** This node's static X25519 secret key: 32 bytes, or as text (hex or base64url). Default: a new random key. */
  secretKey?: Uint8Array | string;
  /**
   * Which introduction requests (Transport.connectVia() on a peer) this node serves between two of its
   * connected peers: "all", "none", or those for which the function (the requester's public key, the
   * target's) answers true. Default "all" on a gateway, "none" otherwise.
   */
  introductions?: IntroductionPolicy;
  /**
   * Which introductions this node acts on when it did not ask for them (it connects to the peer at
   * once, and the connection arrives through accept()): from a gateway it connected to ("gateways"),
   * from any connected peer ("all"), "none", or those for which the function (the introducer's public
   * key, the introduced peer's) answers true. Default "gateways".
   */
  acceptIntroductions?: AcceptIntroductionsPolicy;
  /**
   * Kernel receive buffer asked for (Linux doubles it): with the system's 208 KiB, most of a flood
   * was lost. Node only: in Deno the socket keeps the system's size (net.core.rmem_default), as
   * Deno.listenDatagram cannot set it and Deno's node:dgram leaves it as it was (while its
   * getRecvBufferSize() answers the size asked for). Default 4 MiB.
   */
  receiveBufferBytes?: number;
  /** Datagrams one connection's inbound queue holds at most before the listener drops (counted). Default 1024. */
  inboundQueuePackets?: number;
  /**
   * Datagrams all inbound queues may hold together beyond the 16 each may always hold: past its 16, a
   * queue takes more only from this shared part, so stalled consumers cost only their own packets.
   * Default 16,384, or what all the queues could hold beyond their reserves if that is less.
   */
  sharedQueuePackets?: number;
  /** Connections accepted from peers at once (as many again may be opened by connect()). Default 10,000 on a gateway, else 128. */
  maxConnections?: number;
  /** Accepted connections from one IP (IPv6: one /64). Default 32. */
  maxConnectionsPerIp?: number;
  /** Intros answered and waiting for the initiator's first data packet. Default 256. */
  maxHandshakes?: number;
  /** ...from one IP (IPv6: one /64). Default 8. */
  maxHandshakesPerIp?: number;
  /** Our own connect()s in progress at once. Default 256. */
  maxConnecting?: number;
  /** Intro decryptions one IP may cause at once (default 16), refilled at introsPerIpPerSecond (default 8). */
  introBurstPerIp?: number;
  introsPerIpPerSecond?: number;
  /** Above this many intro decryptions per second, intros need a cookie (mac2) first; 0: always. Default 64. */
  underLoadIntrosPerSecond?: number;
  acceptQueueConnections?: number;
  /** A gateway's relaying for peers that cannot reach each other directly (budgets, or off). */
  relay?: RelayOptions;
  /**
   * Gateway accept ramp: new inbound connections per 1 s window while the transport is young; [] for
   * none. Default 5/s for 30 s, 20/s until 2 min, then unlimited. One IP address (an IPv6 /64) gets at
   * most a quarter of each window (at least 1); loopback peers (::1, or 127.0.0.0/8 to an IPv4 socket) the whole window. A connect() the
   * ramp turns away is not answered; its intros are re-sent and get in at a later window, within the
   * connect's deadline (3 s by default) or not at all.
   */
  acceptRamp?: readonly AcceptRampStep[];
  /**
   * Bounds and timers of every connection's reliable delivery (message size, windows, RTO floor,
   * keep-alive...). On a gateway, keepAliveMs defaults to 30 s (DEFAULT_GATEWAY_KEEP_ALIVE_MS): its peers ping first.
   */
  reliability?: ReliabilityOptions;
  /** Defaults for connect(): intro re-sends every 200 ms ± 20%, at most 40, within 3 s. */
  retry?: RetryOptions;
  /** The protocol version this node speaks and the oldest it accepts. Default 3.0, accepting ≥ 3.0. */
  version?: ProtocolVersion;
  /** Where rate-limited warnings go. Default console.warn; null for silence. */
  log?: ((message: string) => void) | null;
  /**
   * Where the debug trace goes (handshakes, path changes, losses, closes: one line each). Default: on
   * Node, util.debuglog("sluice"), which prints when NODE_DEBUG names sluice; else nothing.
   */
  debug?: (message: string) => void;
  /** Cancels bind() (the name lookup and the socket's bind): it rejects with an AbortError. */
  signal?: AbortSignal;
  /** Random numbers in [0, 1) for retry jitter. Default Math.random. */
  random?: () => number;
}

/** Test seams, given only through src/internal.ts: never part of the public options. */
export interface TransportSeams {
  /** Replaces the UDP socket (tests put a seeded fault injector in front of a real one). */
  socket?: SocketFactory | undefined;
  /** Connections to peers with these public keys never consume their inbound queue. */
  stallConsumersOf?: ((remotePublicKey: Uint8Array) => boolean) | undefined;
  /** When connections update their keys (tests make it happen within a short transfer). */
  keyPhaseLimits?: KeyPhaseLimits | undefined;
  /** Replaces dns.lookup for host names (tests make a name fail without asking a DNS server). */
  lookup?: HostLookup | undefined;
}

/** The options, checked, with every default filled in. */
export interface TransportConfig {
  host: string;
  port: number;
  gateway: boolean;
  secretKey: Uint8Array | undefined;
  introductions: IntroductionPolicy;
  acceptIntroductions: AcceptIntroductionsPolicy;
  receiveBufferBytes: number;
  inboundQueuePackets: number;
  sharedQueuePackets: number;
  maxConnections: number;
  /** The handshake endpoint's bounds (maxHandshakes, per-IP budgets, the accept ramp...). */
  handshakeLimits: HandshakeLimits;
  acceptQueueConnections: number;
  relay: RelayConfig;
  reliability: ReliabilityConfig;
  retry: Required<RetryOptions>;
  version: Required<ProtocolVersion>;
  log: ((message: string) => void) | null;
  /** The debug trace, or undefined when off. */
  trace: Trace | undefined;
  random: () => number;
}

function integerOption(options: TransportOptions, name: keyof TransportOptions, fallback: number, min: number, max: number): number {
  const value = options[name] ?? fallback;
  validateInteger(value, `options.${name}`, min, max);
  return value;
}

function positiveInteger(options: TransportOptions, name: keyof TransportOptions, fallback: number, max: number): number {
  return integerOption(options, name, fallback, 1, max);
}

/**
 * A static key given as 32 bytes (copied) or as text, hex or base64url (decodeKey()); a TypeError
 * naming `name` otherwise.
 */
export function checkKey(key: unknown, name: string): Uint8Array {
  if (typeof key !== "string") {
    if (!(key instanceof Uint8Array)) throw invalidArgType(name, "an instance of Uint8Array or of type string", key, checkKey);
    validateBytes(key, name, 32);
    return new Uint8Array(key);
  }
  try {
    return decodeKey(key);
  } catch {
    throw invalidArgValue(name, key, "must be a 32-byte key as 64 hex digits or 43 base64url characters", checkKey);
  }
}

/** `options` checked (TypeError or RangeError, with a code, naming the first bad one) and completed. */
const TRANSPORT_OPTION_KEYS = keysOf<TransportOptions>()(
  "host", "port", "gateway", "secretKey", "introductions", "acceptIntroductions", "receiveBufferBytes", "inboundQueuePackets",
  "sharedQueuePackets", "maxConnections", "maxConnectionsPerIp", "maxHandshakes", "maxHandshakesPerIp", "maxConnecting",
  "introBurstPerIp", "introsPerIpPerSecond", "underLoadIntrosPerSecond", "acceptQueueConnections", "relay", "acceptRamp",
  "reliability", "retry", "version", "log", "debug", "signal", "random",
);

export function checkTransportOptions(options: TransportOptions): TransportConfig {
  validateObject(options, "options");
  validateKnownKeys(options, "options", TRANSPORT_OPTION_KEYS);
  const host = options.host ?? "0.0.0.0";
  validateHost(host, "options.host");
  const port = options.port ?? 0;
  validateInteger(port, "options.port", 0, 65535);
  const secretKey = options.secretKey === undefined ? undefined : checkKey(options.secretKey, "options.secretKey");
  const receiveBufferBytes = positiveInteger(options, "receiveBufferBytes", DEFAULT_RECEIVE_BUFFER_BYTES, 1 << 30);
  if (options.gateway !== undefined) validateBoolean(options.gateway, "options.gateway");
  const introductions = options.introductions ?? (options.gateway === true ? "all" : "none");
  if (typeof introductions !== "function") validateOneOf(introductions, "options.introductions", ["all", "none"] as const);
  const acceptIntroductions = options.acceptIntroductions ?? "gateways";
  if (typeof acceptIntroductions !== "function") validateOneOf(acceptIntroductions, "options.acceptIntroductions", ["gateways", "all", "none"] as const);
  const version = normalizeVersion(options.version, "options.version");
  const maxConnections = positiveInteger(options, "maxConnections", options.gateway === true ? DEFAULT_GATEWAY_MAX_CONNECTIONS : DEFAULT_MAX_CONNECTIONS, 65536);
  const handshakeLimits: HandshakeLimits = {
    maxHandshakes: positiveInteger(options, "maxHandshakes", DEFAULT_MAX_HANDSHAKES, 65536),
    maxHandshakesPerIp: positiveInteger(options, "maxHandshakesPerIp", DEFAULT_MAX_HANDSHAKES_PER_IP, 65536),
    maxConnecting: positiveInteger(options, "maxConnecting", DEFAULT_MAX_CONNECTING, 65536),
    maxConnections,
    maxConnectionsPerIp: positiveInteger(options, "maxConnectionsPerIp", DEFAULT_MAX_CONNECTIONS_PER_IP, 65536),
    introBurstPerIp: positiveInteger(options, "introBurstPerIp", DEFAULT_INTRO_BURST_PER_IP, 65536),
    introsPerIpPerSecond: positiveInteger(options, "introsPerIpPerSecond", DEFAULT_INTROS_PER_IP_PER_SECOND, 65536),
    underLoadIntrosPerSecond: integerOption(options, "underLoadIntrosPerSecond", DEFAULT_UNDER_LOAD_INTROS_PER_SECOND, 0, 1 << 20),
    acceptRamp: checkAcceptRamp(options.acceptRamp, "options.acceptRamp", DEFAULT_ACCEPT_RAMP),
  };
  const retry = checkRetryOptions(options.retry, "options.retry", DEFAULT_RETRY);
  const inboundQueuePackets = positiveInteger(options, "inboundQueuePackets", DEFAULT_INBOUND_QUEUE_PACKETS, 65536);
  // By default no more than every queue could take beyond its reserve: a peer holding one connection
  // needs no 32 MiB (client processes of the scale benchmark with 1,000 transports each, 33 MiB of
  // wasm memory apiece, spent their time in V8's external-memory collections).
  const sharedQueuePackets = integerOption(options, "sharedQueuePackets", Math.min(DEFAULT_SHARED_QUEUE_PACKETS, 2 * maxConnections * (inboundQueuePackets - Math.min(inboundQueuePackets, QUEUE_RESERVE_PACKETS))), 0, 1 << 20);
  const reliability = checkReliabilityOptions(options.reliability, "options.reliability");
  if (options.gateway === true && options.reliability?.keepAliveMs === undefined) {
    reliability.keepAliveMs = Math.min(DEFAULT_GATEWAY_KEEP_ALIVE_MS, reliability.maxKeepAliveMs);
  }
  if (options.random !== undefined) validateFunction(options.random, "options.random");
  if (options.debug !== undefined) validateFunction(options.debug, "options.debug");
  validateAbortSignal(options.signal, "options.signal");
  if (options.log !== undefined && options.log !== null && typeof options.log !== "function") {
    throw invalidArgType("options.log", "of type function or null", options.log);
  }
  return {
    host,
    port,
    gateway: options.gateway === true,
    secretKey,
    introductions,
    acceptIntroductions,
    receiveBufferBytes,
    inboundQueuePackets,
    sharedQueuePackets,
    maxConnections,
    handshakeLimits,
    acceptQueueConnections: positiveInteger(options, "acceptQueueConnections", DEFAULT_ACCEPT_QUEUE_CONNECTIONS, 65536),
    relay: checkRelayOptions(options.relay, "options.relay"),
    reliability,
    retry,
    version,
    log: options.log === undefined ? (message) => console.warn(message) : options.log,
    trace: traceFor(options.debug),
    random: options.random ?? Math.random,
  };
}

/** How a transport's arena is laid out: its size, and the queue reserves rule (Arena.reserveQueues). */
export interface ArenaPlan {
  bytes: number;
  reservePackets: number;
  /** Frames kept free for every queue's reserve and control frames, as if none were open, and for the scratch. */
  guardFrames: number;
}

/** Frames outside the queues: the scratch frames (the framer's, the AEAD's, the handshake crypto's), the thread's frame cache, slack. */
const FIXED_FRAMES = 256;
const arenaBytes = (frames: number) => frames * DEFAULT_FRAME_BYTES + 64 * 1024; // + the header, bitmap and summary

/**
 * The arena of a transport: for each connection queue that may exist (accepted connections and as many
 * opened by connect()), its control frames (channel, lane, descriptor ring) and its reserve of
 * packets; and sharedQueuePackets frames that queues past their reserve take from. No stalled
 * consumer can take another queue's reserve, and what the arena costs grows with the reserve, not
 * with inboundQueuePackets (1024 packets for each of 20,000 queues would not fit in the 2 GiB the
 * core can address; with every queue's capacity reserved, a gateway stopped at 509 connections).
 */
export function arenaPlan(config: TransportConfig): ArenaPlan {
  const capacity = config.inboundQueuePackets;
  const reservePackets = Math.min(capacity, QUEUE_RESERVE_PACKETS);
  const slots = 2 ** Math.ceil(Math.log2(capacity));
  const controlFrames = 2 + Math.max(1, Math.ceil((slots * 4) / DEFAULT_FRAME_BYTES));
  const perQueue = controlFrames + reservePackets;
  const queues = 2 * config.maxConnections;
  // The fixed frames are guarded too: the shared part is sharedQueuePackets at most, whatever the scratch leaves unused.
  const guardFrames = FIXED_FRAMES + queues * perQueue;
  const bytes = arenaBytes(guardFrames + config.sharedQueuePackets);
  if (bytes > MAX_ARENA_BYTES) {
    const most = Math.floor(((MAX_ARENA_BYTES - arenaBytes(0)) / DEFAULT_FRAME_BYTES - FIXED_FRAMES - config.sharedQueuePackets) / perQueue / 2);
    throw outOfRange("options.maxConnections", `at most ${most} with ${capacity} inboundQueuePackets and ${config.sharedQueuePackets} sharedQueuePackets (every queue's reserve within the 2 GiB of shared memory)`, config.maxConnections);
  }
  return { bytes, reservePackets, guardFrames };
}
