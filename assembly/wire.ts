// The datagram wire format, version 1: parsing and header building on bytes in the arena.
// docs/wire.md is the long form. Every length is checked here before the host reads a field, so the
// host may read any field of a packet this accepted without checking again.
//
// Kinds (byte 0):
//   INTRO     initiator → responder. [kind][wire version][ephemeral key 32][sealed 40 + tag 16]
//   DATA      either way, once keys exist. [kind][destination connection id u32][packet number u64][sealed ≥ 1 + tag 16]
//   RESPONSE  responder → initiator. [kind][wire version][destination connection id u32][ephemeral key 32][sealed 28 + tag 16]
// All integers are little-endian. A connection id is chosen by the side that receives with it and is never 0.

export const KIND_INTRO: i32 = 0x01;
export const KIND_DATA: i32 = 0x02;
export const KIND_RESPONSE: i32 = 0x03;
export const WIRE_VERSION: u32 = 1;

/** Datagrams longer than this are not ours (we send ≤ 1200; 1500 is the Ethernet MTU). */
export const MAX_DATAGRAM_BYTES: u32 = 1500;
export const TAG_BYTES: u32 = 16;
export const KEY_BYTES: u32 = 32;

export const INTRO_EPHEMERAL: u32 = 2;
export const INTRO_SEALED: u32 = 34;
/** Sealed intro body: static key 32, protocol version 4, initiator's connection id 4. */
export const INTRO_BODY_BYTES: u32 = 40;
export const INTRO_BYTES: u32 = INTRO_SEALED + INTRO_BODY_BYTES + TAG_BYTES; // 90

export const RESPONSE_CONNECTION: u32 = 2;
export const RESPONSE_EPHEMERAL: u32 = 6;
export const RESPONSE_SEALED: u32 = 38;
/** Sealed response body: status 1, protocol version 4, responder's connection id 4, observed address 19. */
export const RESPONSE_BODY_BYTES: u32 = 28;
export const RESPONSE_BYTES: u32 = RESPONSE_SEALED + RESPONSE_BODY_BYTES + TAG_BYTES; // 82

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

/** Classifies the `length` bytes at `at`: the kind if every fixed field is present and sane. */
export function wireParse(at: u32, length: u32): i32 {
  if (length == 0) return WIRE_EMPTY;
  if (length > MAX_DATAGRAM_BYTES) return WIRE_OVERSIZE;
  const kind = <i32>load<u8>(at);
  if (kind == KIND_DATA) {
    if (length < DATA_MIN_BYTES) return WIRE_BAD_LENGTH;
    if (load<u32>(at + DATA_CONNECTION) == 0) return WIRE_BAD_CONNECTION;
    if (load<u32>(at + DATA_PACKET_NUMBER + 4) >= PACKET_NUMBER_HIGH_LIMIT) return WIRE_BAD_PACKET_NUMBER;
    return kind;
  }
  if (kind != KIND_INTRO && kind != KIND_RESPONSE) return WIRE_UNKNOWN_KIND;
  // Handshake kinds carry the wire version first, so a later format can be told from garbage.
  if (length < 2) return WIRE_BAD_LENGTH;
  if (<u32>load<u8>(at + 1) != WIRE_VERSION) return WIRE_UNKNOWN_VERSION;
  if (length != (kind == KIND_INTRO ? INTRO_BYTES : RESPONSE_BYTES)) return WIRE_BAD_LENGTH;
  if (kind == KIND_RESPONSE && load<u32>(at + RESPONSE_CONNECTION) == 0) return WIRE_BAD_CONNECTION;
  return kind;
}

/** The destination connection id of a DATA or RESPONSE packet that wireParse accepted. */
export function wireConnection(at: u32): u32 {
  return load<u8>(at) == <u8>KIND_DATA ? load<u32>(at + DATA_CONNECTION) : load<u32>(at + RESPONSE_CONNECTION);
}

export function wirePacketNumberLow(at: u32): u32 {
  return load<u32>(at + DATA_PACKET_NUMBER);
}

export function wirePacketNumberHigh(at: u32): u32 {
  return load<u32>(at + DATA_PACKET_NUMBER + 4);
}

export function wireWriteIntroHeader(at: u32): void {
  store<u8>(at, <u8>KIND_INTRO);
  store<u8>(at + 1, <u8>WIRE_VERSION);
}

export function wireWriteResponseHeader(at: u32, connection: u32): void {
  store<u8>(at, <u8>KIND_RESPONSE);
  store<u8>(at + 1, <u8>WIRE_VERSION);
  store<u32>(at + RESPONSE_CONNECTION, connection);
}

export function wireWriteDataHeader(at: u32, connection: u32, packetNumberLow: u32, packetNumberHigh: u32): void {
  store<u8>(at, <u8>KIND_DATA);
  store<u32>(at + DATA_CONNECTION, connection);
  store<u32>(at + DATA_PACKET_NUMBER, packetNumberLow);
  store<u32>(at + DATA_PACKET_NUMBER + 4, packetNumberHigh);
}
