// The datagram wire format, version 2 (protocol 3.0): parsing and header building on bytes in the
// arena. docs/wire.md is the long form. Every length is checked here before the host reads a field,
// so the host may read any field of a packet this accepted without checking again.
//
// Kinds (byte 0):
//   INTRO     initiator → responder. [kind][wire version][sender id u32][E 32][sealed S_I 48][sealed payload 28][mac1 16][mac2 16]
//   DATA      either way, once keys exist. [kind | key phase << 7][destination connection id u32][packet number u64][sealed ≥ 1 + tag 16]
//   RESPONSE  responder → initiator. [kind][wire version][initiator's id u32][F 32][sealed payload 44][mac1 16][mac2 16]
//   COOKIE    responder → initiator, under load. [kind][wire version][initiator's id u32][nonce 12][sealed cookie 32]
//   RELAY     peer ⇄ gateway ⇄ peer. [kind][wire version][relay id u32][a whole datagram of the two peers, opaque to the gateway]
// All integers are little-endian. A connection id is chosen by the side that receives with it and is never 0.

export const KIND_INTRO: i32 = 0x01;
export const KIND_DATA: i32 = 0x02;
export const KIND_RESPONSE: i32 = 0x03;
export const KIND_COOKIE: i32 = 0x04;
export const KIND_RELAY: i32 = 0x05;
/** The top bit of a DATA packet's first byte: its key phase (docs/wire.md, "Key update"). */
export const KEY_PHASE_BIT: i32 = 0x80;
export const WIRE_VERSION: u32 = 2;

/** Datagrams longer than this are not ours (we send ≤ 1200; 1500 is the Ethernet MTU). */
export const MAX_DATAGRAM_BYTES: u32 = 1500;
export const TAG_BYTES: u32 = 16;
export const KEY_BYTES: u32 = 32;
export const MAC_BYTES: u32 = 16;

/** Every handshake kind carries a connection id at this offset: the intro's sender, the initiator's otherwise. */
export const HANDSHAKE_CONNECTION: u32 = 2;

export const INTRO_EPHEMERAL: u32 = 6;
export const INTRO_STATIC: u32 = INTRO_EPHEMERAL + KEY_BYTES; // 38: S_I sealed
export const INTRO_PAYLOAD: u32 = INTRO_STATIC + KEY_BYTES + TAG_BYTES; // 86: timestamp 8, protocol version 4, sealed
/** The intro's sealed payload: timestamp (u64 µs) and protocol version. */
export const INTRO_PAYLOAD_BYTES: u32 = 12;
export const INTRO_MAC1: u32 = INTRO_PAYLOAD + INTRO_PAYLOAD_BYTES + TAG_BYTES; // 114
export const INTRO_MAC2: u32 = INTRO_MAC1 + MAC_BYTES; // 130
export const INTRO_BYTES: u32 = INTRO_MAC2 + MAC_BYTES; // 146

export const RESPONSE_EPHEMERAL: u32 = 6;
export const RESPONSE_PAYLOAD: u32 = RESPONSE_EPHEMERAL + KEY_BYTES; // 38
/** The response's sealed payload: status 1, protocol version 4, responder's connection id 4, observed address 19. */
export const RESPONSE_PAYLOAD_BYTES: u32 = 28;
export const RESPONSE_MAC1: u32 = RESPONSE_PAYLOAD + RESPONSE_PAYLOAD_BYTES + TAG_BYTES; // 82
export const RESPONSE_MAC2: u32 = RESPONSE_MAC1 + MAC_BYTES; // 98
export const RESPONSE_BYTES: u32 = RESPONSE_MAC2 + MAC_BYTES; // 114

export const COOKIE_NONCE: u32 = 6;
export const COOKIE_SEALED: u32 = COOKIE_NONCE + 12; // 18: cookie 16, sealed
export const COOKIE_BYTES: u32 = COOKIE_SEALED + MAC_BYTES + TAG_BYTES; // 50

/** A relayed datagram's header (kind, wire version, relay id): the datagram it carries follows. */
export const RELAY_HEADER_BYTES: u32 = 6;

export const DATA_CONNECTION: u32 = 1;
export const DATA_PACKET_NUMBER: u32 = 5;
export const DATA_HEADER_BYTES: u32 = 13;
/** A data packet seals at least one byte (its first frame's type). */
export const DATA_MIN_BYTES: u32 = DATA_HEADER_BYTES + 1 + TAG_BYTES; // 30

/** Packet numbers stay below 2^53 so the host holds them exactly in a double. */
const PACKET_NUMBER_HIGH_LIMIT: u32 = 1 << 21;

// wireParse answers the kind, or one of these (negative) reasons.
export const WIRE_EMPTY: i32 = -1;
export const WIRE_OVERSIZE: i32 = -2;
export const WIRE_UNKNOWN_KIND: i32 = -3;
export const WIRE_BAD_LENGTH: i32 = -4;
export const WIRE_UNKNOWN_VERSION: i32 = -5;
export const WIRE_BAD_CONNECTION: i32 = -6;
export const WIRE_BAD_PACKET_NUMBER: i32 = -7;

/** The exact length of a handshake kind, or 0 for another kind. */
@inline function handshakeBytes(kind: i32): u32 {
  return kind == KIND_INTRO ? INTRO_BYTES : kind == KIND_RESPONSE ? RESPONSE_BYTES : kind == KIND_COOKIE ? COOKIE_BYTES : 0;
}

/** Classifies the `length` bytes at `at`: the kind if every fixed field is present and sane (DATA of either key phase is KIND_DATA). */
export function wireParse(at: u32, length: u32): i32 {
  if (length == 0) return WIRE_EMPTY;
  if (length > MAX_DATAGRAM_BYTES) return WIRE_OVERSIZE;
  const first = <i32>load<u8>(at);
  if ((first & ~KEY_PHASE_BIT) == KIND_DATA) {
    if (length < DATA_MIN_BYTES) return WIRE_BAD_LENGTH;
    if (load<u32>(at + DATA_CONNECTION) == 0) return WIRE_BAD_CONNECTION;
    if (load<u32>(at + DATA_PACKET_NUMBER + 4) >= PACKET_NUMBER_HIGH_LIMIT) return WIRE_BAD_PACKET_NUMBER;
    return KIND_DATA;
  }
  const exact = handshakeBytes(first);
  if (exact == 0 && first != KIND_RELAY) return WIRE_UNKNOWN_KIND;
  // Handshake and relay kinds carry the wire version first, so a later format can be told from garbage.
  if (length < 2) return WIRE_BAD_LENGTH;
  if (<u32>load<u8>(at + 1) != WIRE_VERSION) return WIRE_UNKNOWN_VERSION;
  if (exact == 0 ? length <= RELAY_HEADER_BYTES : length != exact) return WIRE_BAD_LENGTH;
  if (load<u32>(at + HANDSHAKE_CONNECTION) == 0) return WIRE_BAD_CONNECTION;
  return first;
}

/** The connection id of a packet wireParse accepted: DATA's destination, a handshake packet's (see HANDSHAKE_CONNECTION), a RELAY's relay id. */
export function wireConnection(at: u32): u32 {
  return (<i32>load<u8>(at) & ~KEY_PHASE_BIT) == KIND_DATA ? load<u32>(at + DATA_CONNECTION) : load<u32>(at + HANDSHAKE_CONNECTION);
}

/** The key phase (0 or 1) of a DATA packet wireParse accepted. */
export function wireKeyPhase(at: u32): u32 {
  return <u32>load<u8>(at) >> 7;
}

export function wirePacketNumberLow(at: u32): u32 {
  return load<u32>(at + DATA_PACKET_NUMBER);
}

export function wirePacketNumberHigh(at: u32): u32 {
  return load<u32>(at + DATA_PACKET_NUMBER + 4);
}

export function wireWriteDataHeader(at: u32, keyPhase: u32, connection: u32, packetNumberLow: u32, packetNumberHigh: u32): void {
  store<u8>(at, <u8>(KIND_DATA | (keyPhase << 7)));
  store<u32>(at + DATA_CONNECTION, connection);
  store<u32>(at + DATA_PACKET_NUMBER, packetNumberLow);
  store<u32>(at + DATA_PACKET_NUMBER + 4, packetNumberHigh);
}
