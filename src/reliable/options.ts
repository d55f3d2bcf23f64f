// A connection's bounds and timers: every one has a default here and a reason in docs/design.md.

import { keysOf, outOfRange, validateInteger, validateKnownKeys, validateObject } from "../errors/validate.ts";
import { MAX_DATAGRAM_BYTES, MAX_SEND_DATAGRAM_BYTES } from "../wire/constants.ts";
import { DEFAULT_MAX_DATAGRAM_BYTES } from "./path-mtu.ts";
import { DEFAULT_RTO_FLOOR_MS, MAX_RTO_MS } from "./rtt.ts";

export interface ReliabilityOptions {
  /** Largest message send() accepts and recv() will reassemble (default 64 MiB). */
  maxMessageBytes?: number;
  /** Lower bound of the retransmission timeout (default 200 ms). */
  rtoFloorMs?: number;
  /** Consecutive retransmission timeouts after which the connection fails (default 12; deadPeerTimeoutMs usually ends it first). */
  maxRetransmissions?: number;
  /**
   * The connection fails (ERR_SLUICE_PEER_UNREACHABLE) when the peer acknowledges nothing for this
   * long while a packet awaits its acknowledgement (default 10 s). A pending close() notices a dead
   * peer within it; a pending recv() on a quiet connection within keepAliveMs + this (its PING goes
   * unanswered). Retransmissions back off to at most an eighth of it, so about nine go in that time.
   * A close() also gives up (ERR_SLUICE_CLOSE_TIMEOUT) when the peer takes none of what is left to
   * deliver for this long: it acknowledges, but stopped reading.
   */
  deadPeerTimeoutMs?: number;
  /** Ping after this long without hearing from the peer (default 5 s), doubling while unanswered... */
  keepAliveMs?: number;
  /** ...up to this (default 60 s). */
  maxKeepAliveMs?: number;
  /**
   * The connection fails after this long without a packet from the peer (default 120 s). Keep it
   * above the keep-alive of both ends (this keepAliveMs and the peer's): an idle connection hears
   * nothing between them (a user's 1 s with 5 s keep-alives failed every idle connection at 1 s).
   */
  idleTimeoutMs?: number;
  /**
   * Bytes written and not yet acknowledged that can go (messages, and the bytes of streams within
   * their credit) before writers wait (default 4 MiB). Messages and streams may each always fill a
   * quarter of it, whatever the other holds.
   */
  sendBufferBytes?: number;
  /** Bytes of messages the peer may send ahead of recv() (default 4 MiB; a larger message is always let in whole). */
  messageWindowBytes?: number;
  /** Bytes per incoming stream the peer may send ahead of its reader (default 1 MiB). */
  streamWindowBytes?: number;
  /** Incoming streams open at once (default 16). */
  maxIncomingStreams?: number;
  /**
   * The largest datagram path MTU discovery may try, header and tag included (default 1472: the UDP
   * payload of a 1500-byte Ethernet MTU over IPv4; over IPv6 the ceiling is 20 bytes less, 1452).
   * Connections start at 1200 bytes, probe upward and fall back when larger datagrams go missing;
   * 1200 turns discovery off. From 1200 to 1500.
   */
  maxDatagramBytes?: number;
}

export type ReliabilityConfig = Required<ReliabilityOptions>;

export const DEFAULT_RELIABILITY: Readonly<Required<ReliabilityOptions>> = Object.freeze({
  maxMessageBytes: 64 * 2 ** 20,
  rtoFloorMs: DEFAULT_RTO_FLOOR_MS,
  maxRetransmissions: 12,
  deadPeerTimeoutMs: 10_000,
  keepAliveMs: 5_000,
  maxKeepAliveMs: 60_000,
  idleTimeoutMs: 120_000,
  sendBufferBytes: 4 * 2 ** 20,
  messageWindowBytes: 4 * 2 ** 20,
  streamWindowBytes: 2 ** 20,
  maxIncomingStreams: 16,
  maxDatagramBytes: DEFAULT_MAX_DATAGRAM_BYTES,
});

// What each side may send before it hears a credit frame (docs/wire.md): protocol constants, so a
// receiver's windows are never below them.
export const INITIAL_MESSAGE_CREDIT_BYTES = 64 * 1024;
export const INITIAL_STREAM_CREDIT_BYTES = 64 * 1024;
export const INITIAL_STREAMS_CREDIT = 4;
/** Messages the peer may send beyond the first one recv() has not taken (a protocol constant). */
export const MESSAGES_AHEAD = 1024;

const RANGES: { [K in keyof ReliabilityConfig]: [min: number, max: number] } = {
  maxMessageBytes: [1, 2 ** 32 - 1],
  rtoFloorMs: [1, MAX_RTO_MS],
  maxRetransmissions: [1, 100],
  deadPeerTimeoutMs: [1, 2 ** 31 - 1],
  keepAliveMs: [1, 2 ** 31 - 1],
  maxKeepAliveMs: [1, 2 ** 31 - 1],
  idleTimeoutMs: [1, 2 ** 31 - 1],
  sendBufferBytes: [1, 2 ** 32],
  messageWindowBytes: [INITIAL_MESSAGE_CREDIT_BYTES, 2 ** 32],
  streamWindowBytes: [INITIAL_STREAM_CREDIT_BYTES, 2 ** 32],
  maxIncomingStreams: [INITIAL_STREAMS_CREDIT, 65_536],
  maxDatagramBytes: [MAX_SEND_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES],
};

const RELIABILITY_OPTION_KEYS = keysOf<ReliabilityOptions>()(
  "maxMessageBytes", "rtoFloorMs", "maxRetransmissions", "deadPeerTimeoutMs", "keepAliveMs", "maxKeepAliveMs", "idleTimeoutMs",
  "sendBufferBytes", "messageWindowBytes", "streamWindowBytes", "maxIncomingStreams", "maxDatagramBytes",
);

/** Fills defaults and checks every given value; `name` names the options object in errors. */
export function checkReliabilityOptions(options: ReliabilityOptions | undefined, name: string): ReliabilityConfig {
  const config: ReliabilityConfig = { ...DEFAULT_RELIABILITY };
  if (options === undefined) return config;
  validateObject(options, name);
  validateKnownKeys(options, name, RELIABILITY_OPTION_KEYS);
  for (const key of Object.keys(RANGES) as Array<keyof ReliabilityConfig>) {
    const value = options[key];
    if (value === undefined) continue;
    validateInteger(value, `${name}.${key}`, ...RANGES[key]);
    config[key] = value;
  }
  if (config.maxKeepAliveMs < config.keepAliveMs) {
    throw outOfRange(`${name}.maxKeepAliveMs`, `>= keepAliveMs (${config.keepAliveMs})`, config.maxKeepAliveMs);
  }
  return config;
}
