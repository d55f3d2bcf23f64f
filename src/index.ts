// The package's public face: what `import ... from "sluice"` gives. Re-exports only; the seams that
// tests and benchmarks need are in src/internal.ts ("sluice/internal"), never here.

// Errors: every one carries a `code` from ERROR_CODES.
export {
  ERROR_CODES, SluiceError, type ErrorCode, type ErrorCodes, type IntroductionFailure, type RefusalReason, type SluiceErrorCode,
} from "./errors/errors.ts";

// Channels: bounded, wait-free packet queues in shared memory, across threads.
export { channel, DEFAULT_MAX_LANES, DEFAULT_MAX_PACKET_SIZE, type ChannelOptions } from "./channel/channel.ts";
export { Sender, type TrySendResult } from "./channel/sender.ts";
export { Receiver, type PacketVisitor } from "./channel/receiver.ts";
export type { SenderHandle, ReceiverHandle } from "./channel/handle.ts";
export type { ChannelStats } from "./channel/stats.ts";
export {
  Arena, DEFAULT_ARENA_BYTES, DEFAULT_FRAME_BYTES, MAX_FRAME_BYTES, MIN_FRAME_BYTES, type ArenaOptions, type ArenaStats,
} from "./memory/arena.ts";
export { PARK_SAFETY_MS } from "./memory/park.ts";
export type { ReceivedBytes } from "./memory/delivery-slab.ts";

// Transports: one UDP socket, encrypted handshakes, reliable connections.
export { Transport } from "./transport/transport.ts";
export {
  DEFAULT_ACCEPT_QUEUE_CONNECTIONS, DEFAULT_GATEWAY_KEEP_ALIVE_MS, DEFAULT_GATEWAY_MAX_CONNECTIONS, DEFAULT_INBOUND_QUEUE_PACKETS, DEFAULT_INTRO_BURST_PER_IP, DEFAULT_INTROS_PER_IP_PER_SECOND,
  DEFAULT_MAX_CONNECTING, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_HANDSHAKES,
  DEFAULT_MAX_HANDSHAKES_PER_IP, DEFAULT_RECEIVE_BUFFER_BYTES, DEFAULT_SHARED_QUEUE_PACKETS, DEFAULT_UNDER_LOAD_INTROS_PER_SECOND, QUEUE_RESERVE_PACKETS,
  type TransportOptions,
} from "./transport/options.ts";
export { CONFIRM_TIMEOUT_MS } from "./handshake/endpoint.ts";
export { RECENTLY_CLOSED_MS } from "./transport/table.ts";
export type { NatType } from "./transport/nat-type.ts";
export {
  DEFAULT_MAX_RELAYS, DEFAULT_RELAY_BYTES_PER_SECOND, DEFAULT_RELAY_TOTAL_BYTES_PER_SECOND, type RelayOptions,
} from "./transport/relays.ts";
export { Connection, type MessageIterator, type WaitOptions } from "./transport/connection.ts";
export type { ConnectionIterator } from "./transport/connection-iterator.ts";
export { RELAY_AFTER_MS } from "./transport/introductions.ts";
export { PROBE_INTERVAL_MS, REPUNCH_AFTER_MS } from "./wire/path.ts";
export { CLAIMED_ADDRESS_INTROS } from "./handshake/endpoint.ts";
export { decodeKey, encodeKey, generateKeyPair, publicKeyOf, type KeyPair } from "./transport/identity.ts";
export { MAX_QUEUED_ADDRESS_CHANGES, type AddressChange, type AddressChangeIterator } from "./transport/address-changes.ts";
export {
  INTRODUCTION_ANSWER_MS, INTRODUCTION_BURST, INTRODUCTIONS_PER_SECOND, MAX_PENDING_INTRODUCTIONS,
  type AcceptIntroductionsPolicy, type IntroductionPolicy, type IntroductionStats,
} from "./rendezvous/rendezvous.ts";
export { MAX_LOCAL_ADDRESSES } from "./rendezvous/frames.ts";
export { CONTROL_WINDOW, MAX_QUEUED_CONTROL_FRAMES } from "./reliable/control.ts";
export type { ConnectionStats, DropCounts, TransportStats } from "./transport/stats.ts";
export type { Address } from "./wire/address.ts";
export { DEFAULT_ACCEPT_RAMP, type AcceptRampStep } from "./handshake/admission.ts";
export { DEFAULT_RETRY, type RetryOptions } from "./handshake/retry.ts";
export { PROTOCOL_VERSION, type ProtocolVersion } from "./wire/version.ts";
export { MAX_SEND_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES } from "./wire/constants.ts";
export { DEFAULT_RELIABILITY, type ReliabilityOptions } from "./reliable/options.ts";
export type { DeliveryStats } from "./reliable/session.ts";
