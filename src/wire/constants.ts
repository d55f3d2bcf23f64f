// The host's side of the wire format (assembly/wire.ts parses and builds; docs/wire.md explains).
// These mirror the module's constants; test/wire.test.ts checks that they match.

export const KIND_INTRO = 0x01;
export const KIND_DATA = 0x02;
export const KIND_RESPONSE = 0x03;
export const WIRE_VERSION = 1;

/** Largest datagram we send: QUIC's 1200, safe on any path without fragmentation. */
export const MAX_SEND_DATAGRAM_BYTES = 1200;
/** Largest datagram we accept. */
export const MAX_DATAGRAM_BYTES = 1500;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;

export const INTRO_EPHEMERAL = 2;
export const INTRO_SEALED = 34;
export const INTRO_BYTES = 90;
export const RESPONSE_EPHEMERAL = 6;
export const RESPONSE_SEALED = 38;
export const RESPONSE_BYTES = 82;
export const DATA_HEADER_BYTES = 13;
export const DATA_MIN_BYTES = 30;

/** Largest sealed plaintext in one data packet we send. */
export const MAX_DATA_PLAINTEXT_BYTES = MAX_SEND_DATAGRAM_BYTES - DATA_HEADER_BYTES - TAG_BYTES; // 1171

// wireParse's refusals (negative) by name, for the drop counters.
export const WIRE_EMPTY = -1;
export const WIRE_OVERSIZE = -2;
export const WIRE_UNKNOWN_KIND = -3;
export const WIRE_BAD_LENGTH = -4;
export const WIRE_UNKNOWN_VERSION = -5;
export const WIRE_BAD_CONNECTION = -6;
export const WIRE_BAD_PACKET_NUMBER = -7;

// The first byte of a data packet's plaintext says what follows (docs/wire.md, "Frames"): these two
// stand alone in their packet and belong to the handshake; the rest are in reliable/frames.ts.
/** Initiator → responder, right after the response: proves the initiator holds its static key. */
export const FRAME_CONFIRM = 0x02;
/** Responder → initiator: the confirm arrived (the initiator stops repeating it). */
export const FRAME_CONFIRM_ACK = 0x03;
