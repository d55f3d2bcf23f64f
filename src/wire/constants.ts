// The host's side of the wire format (assembly/wire.ts parses and builds; docs/wire.md explains). The
// kinds, sizes, field offsets and parse refusals are the core's own, generated from the module by
// scripts/build.mjs; only what the host alone decides is written here.

export {
  AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_SCRATCH_BYTES, COOKIE_BYTES, COOKIE_NONCE, COOKIE_SEALED, DATA_HEADER_BYTES,
  DATA_PACKET_NUMBER, HANDSHAKE_CONNECTION, INTRO_BYTES, INTRO_EPHEMERAL, INTRO_MAC1, INTRO_MAC2, INTRO_PAYLOAD,
  INTRO_STATIC, KIND_COOKIE, KIND_DATA, KIND_INTRO, KIND_RELAY, KIND_RESPONSE, MAC_BYTES, MAX_DATAGRAM_BYTES, RELAY_HEADER_BYTES,
  RESPONSE_BYTES, RESPONSE_EPHEMERAL, RESPONSE_MAC1, RESPONSE_PAYLOAD, TAG_BYTES, WIRE_UNKNOWN_VERSION,
  WIRE_VERSION,
} from "../../build/core-constants.js";

/**
 * The datagram size every connection starts at and falls back to: QUIC's 1200, carried by any path
 * without fragmentation. Larger datagrams go only once path MTU discovery confirmed the path carries
 * them (reliability.maxDatagramBytes; reliable/path-mtu.ts).
 */
export const MAX_SEND_DATAGRAM_BYTES = 1200;

// The first byte of a data packet's plaintext says what follows (docs/wire.md, "Frames"): these two
// stand alone in their packet and belong to the handshake; the rest are in reliable/frames.ts.
/** Initiator → responder, right after the response: proves the initiator holds its static key. */
export const FRAME_CONFIRM = 0x02;
/** Responder → initiator: the confirm arrived (the initiator stops repeating it). */
export const FRAME_CONFIRM_ACK = 0x03;
