// A transport's options: what each means, its default and its bound, checked once by bind(); and the
// size of the transport's arena, which has room for every queue at capacity at once.
import {
  invalidArgType, outOfRange, validateAbortSignal, validateBoolean, validateBytes, validateFunction, validateInteger, validateObject, validateString,
} from "../errors/validate.ts";
import { DEFAULT_FRAME_BYTES, MAX_ARENA_BYTES } from "../memory/arena.ts";
import { normalizeVersion, type ProtocolVersion } from "../wire/version.ts";
import { checkAcceptRamp, DEFAULT_ACCEPT_RAMP, type AcceptRampStep } from "../handshake/admission.ts";
import { checkRetryOptions, DEFAULT_RETRY, type RetryOptions } from "../handshake/retry.ts";
import { checkReliabilityOptions, type ReliabilityConfig, type ReliabilityOptions } from "../reliable/options.ts";
import { traceFor, type Trace } from "./log.ts";
import type { SocketFactory } from "./udp-socket.ts";

// Frozen like DEFAULT_RELIABILITY, so no program can change another's defaults. (Here, not where they
// are defined: src/handshake/ is being replaced; the replacement should freeze them where it defines them.)
Object.freeze(DEFAULT_RETRY);
for (const step of DEFAULT_ACCEPT_RAMP) Object.freeze(step);
Object.freeze(DEFAULT_ACCEPT_RAMP);

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

export interface TransportOptions {
  /** Address to bind, or a host name resolved once (dns.lookup, IPv4 first). Default "0.0.0.0" (use "::" for IPv6). */
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
}

/** The options, checked, with every default filled in. */
export interface TransportConfig {
  host: string;
  port: number;
  gateway: boolean;
  secretKey: Uint8Array | undefined;
  receiveBufferBytes: number;
  inboundQueuePackets: number;
  handshakeQueuePackets: number;
  maxConnections: number;
  maxHandshakes: number;
  acceptQueueConnections: number;
  acceptRamp: readonly AcceptRampStep[];
  reliability: ReliabilityConfig;
  retry: Required<RetryOptions>;
  version: Required<ProtocolVersion>;
  log: ((message: string) => void) | null;
  /** The debug trace, or undefined when off. */
  trace: Trace | undefined;
  random: () => number;
}

function positiveInteger(options: TransportOptions, name: keyof TransportOptions, fallback: number, max: number): number {
  const value = options[name] ?? fallback;
  validateInteger(value, `options.${name}`, 1, max);
  return value;
}

/** `options` checked (TypeError or RangeError, with a code, naming the first bad one) and completed. */
export function checkTransportOptions(options: TransportOptions): TransportConfig {
  validateObject(options, "options");
  const host = options.host ?? "0.0.0.0";
  validateString(host, "options.host");
  const port = options.port ?? 0;
  validateInteger(port, "options.port", 0, 65535);
  if (options.secretKey !== undefined) validateBytes(options.secretKey, "options.secretKey", 32);
  const receiveBufferBytes = positiveInteger(options, "receiveBufferBytes", DEFAULT_RECEIVE_BUFFER_BYTES, 1 << 30);
  if (options.gateway !== undefined) validateBoolean(options.gateway, "options.gateway");
  const version = normalizeVersion(options.version, "options.version");
  const retry = checkRetryOptions(options.retry, "options.retry", DEFAULT_RETRY);
  const reliability = checkReliabilityOptions(options.reliability, "options.reliability");
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
    secretKey: options.secretKey,
    receiveBufferBytes,
    inboundQueuePackets: positiveInteger(options, "inboundQueuePackets", DEFAULT_INBOUND_QUEUE_PACKETS, 65536),
    handshakeQueuePackets: positiveInteger(options, "handshakeQueuePackets", DEFAULT_HANDSHAKE_QUEUE_PACKETS, 4096),
    maxConnections: positiveInteger(options, "maxConnections", DEFAULT_MAX_CONNECTIONS, 65536),
    maxHandshakes: positiveInteger(options, "maxHandshakes", DEFAULT_MAX_HANDSHAKES, 65536),
    acceptQueueConnections: positiveInteger(options, "acceptQueueConnections", DEFAULT_ACCEPT_QUEUE_CONNECTIONS, 65536),
    acceptRamp: checkAcceptRamp(options.acceptRamp, "options.acceptRamp", DEFAULT_ACCEPT_RAMP),
    reliability,
    retry,
    version,
    log: options.log === undefined ? (message) => console.warn(message) : options.log,
    trace: traceFor(options.debug),
    random: options.random ?? Math.random,
  };
}

/** Frames for every queue at capacity at once, so a stalled consumer can never empty the pool for others. */
export function arenaBytesFor(config: TransportConfig): number {
  // Per channel: its packets, its control frames (channel, lane) and its descriptor ring.
  const perChannel = (capacity: number) => capacity + 2 + Math.ceil((capacity * 4) / DEFAULT_FRAME_BYTES) + 1;
  // The scratch frames (the framer's two, the AEAD's), the thread's frame cache, bitmap overheads.
  const fixedFrames = 256 + config.maxHandshakes * perChannel(config.handshakeQueuePackets);
  const bytesFor = (frames: number) => frames * DEFAULT_FRAME_BYTES + 64 * 1024;
  const bytes = bytesFor(fixedFrames + config.maxConnections * perChannel(config.inboundQueuePackets));
  if (bytes > MAX_ARENA_BYTES) {
    const most = Math.floor(((MAX_ARENA_BYTES - bytesFor(0)) / DEFAULT_FRAME_BYTES - fixedFrames) / perChannel(config.inboundQueuePackets));
    throw outOfRange("options.maxConnections", `at most ${most} with ${config.inboundQueuePackets} inboundQueuePackets (every queue's frames within the 2 GiB of shared memory)`, config.maxConnections);
  }
  return bytes;
}
