// The packet and frame layouts of protocol 3.0 (wire version 2), written from the wire spec alone.
// Everything here is plain bytes: no crypto (noise.ts) and no sockets (evil-peer.ts).

const WIRE_VERSION = 2;
export const KIND = { intro: 0x01, data: 0x02, response: 0x03, cookie: 0x04, relay: 0x05 } as const;
export const KEY_PHASE_BIT = 0x80;

export const INTRO_BYTES = 146;
export const RESPONSE_BYTES = 114;
export const COOKIE_BYTES = 50;
export const DATA_HEADER_BYTES = 13;
export const TAG_BYTES = 16;
const MAX_SEND_DATAGRAM_BYTES = 1200;
export const MAX_PLAINTEXT_BYTES = MAX_SEND_DATAGRAM_BYTES - DATA_HEADER_BYTES - TAG_BYTES;
export const OBSERVED_ADDRESS_BYTES = 19;
export const MAX_ACCEPTED_DATAGRAM_BYTES = 1500;
/** RELAY: kind | wire version | relay id (u32, ≠ 0) | a whole datagram of the two relayed peers. */
export const RELAY_HEADER_BYTES = 6;

/** Offsets inside an INTRO. */
export const INTRO = { senderId: 2, ephemeral: 6, sealedStatic: 38, sealedPayload: 86, mac1: 114, mac2: 130 } as const;
/** Offsets inside a RESPONSE. */
export const RESPONSE = { initiatorId: 2, ephemeral: 6, sealedPayload: 38, mac1: 82, mac2: 98 } as const;
/** The RESPONSE status's code bits (0 ok, 1 version mismatch); bit 4 says the responder is a gateway. */
export const RESPONSE_STATUS_CODE_MASK = 0x0f;

/** Offsets inside a COOKIE. */
export const COOKIE = { initiatorId: 2, nonce: 6, sealedCookie: 18 } as const;

export interface Address {
  host: string;
  port: number;
}

export interface ProtocolVersion {
  major: number;
  minor: number;
  minimumMajor: number;
  minimumMinor: number;
}

export const PROTOCOL_3_0: ProtocolVersion = { major: 3, minor: 0, minimumMajor: 3, minimumMinor: 0 };

export const encodeVersion = (v: ProtocolVersion) => Uint8Array.of(v.major, v.minor, v.minimumMajor, v.minimumMinor);
export const decodeVersion = (b: Uint8Array): ProtocolVersion => ({
  major: b[0],
  minor: b[1],
  minimumMajor: b[2],
  minimumMinor: b[3],
});

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

export const readU32 = (b: Uint8Array, offset: number) => view(b).getUint32(offset, true);
export function writeU32(b: Uint8Array, offset: number, value: number): void {
  view(b).setUint32(offset, value, true);
}
export const readU64 = (b: Uint8Array, offset: number) => Number(view(b).getBigUint64(offset, true));
export function writeU64(b: Uint8Array, offset: number, value: number): void {
  view(b).setBigUint64(offset, BigInt(value), true);
}

/** `value` as 4 bytes, little-endian. */
export function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  writeU32(out, 0, value);
  return out;
}

export const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

/** The 19-byte observed address: family (4 or 6) | port (u16) | 16 address bytes, IPv4 in the first 4. */
export function encodeAddress(address: Address): Uint8Array {
  const out = new Uint8Array(OBSERVED_ADDRESS_BYTES);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address.host);
  const v4 = mapped ? mapped[1] : /^\d+\.\d+\.\d+\.\d+$/.test(address.host) ? address.host : undefined;
  view(out).setUint16(1, address.port, true);
  if (v4 !== undefined) {
    out[0] = 4;
    out.set(v4.split(".").map(Number), 3);
    return out;
  }
  out[0] = 6;
  const [head, tail = ""] = address.host.replace(/%.*$/, "").split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = groups(tail);
  const all = address.host.includes("::") ? [...left, ...new Array(8 - left.length - right.length).fill(0), ...right] : left;
  all.forEach((g, i) => view(out).setUint16(3 + 2 * i, g, false));
  return out;
}

export function decodeAddress(b: Uint8Array): Address {
  const port = view(b).getUint16(1, true);
  if (b[0] === 4) return { host: Array.from(b.subarray(3, 7)).join("."), port };
  const groups = Array.from({ length: 8 }, (_, i) => view(b).getUint16(3 + 2 * i, false).toString(16));
  return { host: groups.join(":"), port };
}

/** Kind, wire version and connection id in the clear: the first 6 bytes of every handshake packet. */
export function handshakeHeader(kind: number, connectionId: number): Uint8Array {
  const out = new Uint8Array(6);
  out[0] = kind;
  out[1] = WIRE_VERSION;
  writeU32(out, 2, connectionId);
  return out;
}

/** Which packet this is, by its first byte and length, as the spec's `wireParse` decides (undefined: malformed). */
export function packetKind(packet: Uint8Array): "intro" | "response" | "cookie" | "data" | undefined {
  if (packet.length < 1 || packet.length > 1500) return undefined;
  const kind = packet[0];
  if ((kind & ~KEY_PHASE_BIT) === KIND.data) {
    if (packet.length < DATA_HEADER_BYTES + 1 + TAG_BYTES || readU32(packet, 1) === 0) return undefined;
    return readU64(packet, 5) < 2 ** 53 ? "data" : undefined;
  }
  const sizes: Record<number, ["intro" | "response" | "cookie", number]> = {
    [KIND.intro]: ["intro", INTRO_BYTES],
    [KIND.response]: ["response", RESPONSE_BYTES],
    [KIND.cookie]: ["cookie", COOKIE_BYTES],
  };
  const known = sizes[kind];
  if (known === undefined || packet.length !== known[1] || packet[1] !== WIRE_VERSION) return undefined;
  return readU32(packet, 2) === 0 ? undefined : known[0];
}

/** The 13-byte DATA header: kind with the key phase bit | destination connection id | packet number. */
export function dataHeader(phase: number, connectionId: number, packetNumber: number): Uint8Array {
  const out = new Uint8Array(DATA_HEADER_BYTES);
  out[0] = KIND.data | ((phase & 1) << 7);
  writeU32(out, 1, connectionId);
  writeU64(out, 5, packetNumber);
  return out;
}

// ---- Frames ----

const FRAME = {
  padding: 0x00,
  confirm: 0x02,
  confirmAck: 0x03,
  ack: 0x10,
  ping: 0x11,
  close: 0x12,
  messageData: 0x13,
  streamData: 0x14,
  messageCredit: 0x15,
  streamCredit: 0x16,
  streamsCredit: 0x17,
  streamReset: 0x18,
  pathChallenge: 0x19,
  pathResponse: 0x1a,
  stopSending: 0x1b,
  messageRefused: 0x1c,
} as const;

/** Control frame types (0x20–0x2f share one layout: type | control sequence (u32) | body length (u16) | body). */
export const CONTROL = {
  observedAddress: 0x20,
  localAddresses: 0x21,
  introduceRequest: 0x22,
  introduction: 0x23,
  introduceRefused: 0x24,
  relayOffer: 0x25,
} as const;
const CONTROL_HEADER_BYTES = 1 + 4 + 2;

/** An inclusive range of packet numbers, `high` ≥ `low`. */
export interface PacketRange {
  high: number;
  low: number;
}

export type Frame =
  | { type: "padding"; length: number }
  | { type: "confirm" }
  | { type: "confirmAck" }
  | { type: "ack"; delayUs: number; ranges: PacketRange[] } // from the top down
  | { type: "ping" }
  | { type: "close"; code: number }
  | { type: "messageData"; sequence: number; total: number; offset: number; bytes: Uint8Array }
  | { type: "streamData"; fin: boolean; stream: number; offset: number; bytes: Uint8Array }
  | { type: "messageCredit"; byteLimit: number; sequenceLimit: number }
  | { type: "streamCredit"; stream: number; byteLimit: number }
  | { type: "streamsCredit"; limit: number }
  | { type: "streamReset"; stream: number; code: number }
  | { type: "pathChallenge"; data: Uint8Array }
  | { type: "pathResponse"; data: Uint8Array }
  | { type: "stopSending"; stream: number; code: number }
  | { type: "messageRefused"; sequence: number; declared: number; largest: number }
  | { type: "control"; controlType: number; sequence: number; body: Uint8Array }
  /** Bytes as they are, to say what no honest frame says (a length that lies, a frame cut short). */
  | { type: "raw"; bytes: Uint8Array };

/** Bytes `frame` takes on the wire. */
function frameBytes(frame: Frame): number {
  switch (frame.type) {
    case "padding":
      return frame.length;
    case "confirm":
    case "confirmAck":
    case "ping":
      return 1;
    case "ack":
      return 1 + 8 + 4 + 1 + 4 + 8 * (frame.ranges.length - 1);
    case "close":
      return 2;
    case "messageData":
      return 1 + 4 + 4 + 4 + 2 + frame.bytes.length;
    case "streamData":
      return 1 + 1 + 4 + 8 + 2 + frame.bytes.length;
    case "messageCredit":
      return 1 + 8 + 4;
    case "streamCredit":
      return 1 + 4 + 8;
    case "streamsCredit":
      return 1 + 4;
    case "streamReset":
      return 1 + 4 + 1;
    case "pathChallenge":
    case "pathResponse":
      return 1 + 8;
    case "stopSending":
      return 1 + 4 + 1;
    case "messageRefused":
      return 1 + 4 + 4 + 4;
    case "control":
      return CONTROL_HEADER_BYTES + frame.body.length;
    case "raw":
      return frame.bytes.length;
  }
}

/** Frames back to back. ACK range lengths count packet numbers, gaps count missing numbers (both ≥ 1). */
export function encodeFrames(frames: Frame[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + frameBytes(f), 0));
  const dv = view(out);
  let at = 0;
  for (const f of frames) {
    if (f.type === "padding") {
      at += f.length; // already zero
      continue;
    }
    if (f.type === "raw") {
      out.set(f.bytes, at);
      at += f.bytes.length;
      continue;
    }
    if (f.type === "control") {
      out[at] = f.controlType;
      dv.setUint32(at + 1, f.sequence, true);
      dv.setUint16(at + 5, f.body.length, true);
      out.set(f.body, at + CONTROL_HEADER_BYTES);
      at += CONTROL_HEADER_BYTES + f.body.length;
      continue;
    }
    out[at++] = FRAME[f.type];
    switch (f.type) {
      case "ack": {
        const [first, ...rest] = f.ranges;
        writeU64(out, at, first.high);
        dv.setUint32(at + 8, f.delayUs, true);
        out[at + 12] = f.ranges.length;
        dv.setUint32(at + 13, first.high - first.low + 1, true);
        at += 17;
        let below = first.low;
        for (const r of rest) {
          dv.setUint32(at, below - r.high - 1, true);
          dv.setUint32(at + 4, r.high - r.low + 1, true);
          at += 8;
          below = r.low;
        }
        break;
      }
      case "close":
        out[at++] = f.code;
        break;
      case "messageData":
        dv.setUint32(at, f.sequence, true);
        dv.setUint32(at + 4, f.total, true);
        dv.setUint32(at + 8, f.offset, true);
        dv.setUint16(at + 12, f.bytes.length, true);
        out.set(f.bytes, at + 14);
        at += 14 + f.bytes.length;
        break;
      case "streamData":
        out[at] = f.fin ? 1 : 0;
        dv.setUint32(at + 1, f.stream, true);
        writeU64(out, at + 5, f.offset);
        dv.setUint16(at + 13, f.bytes.length, true);
        out.set(f.bytes, at + 15);
        at += 15 + f.bytes.length;
        break;
      case "messageCredit":
        writeU64(out, at, f.byteLimit);
        dv.setUint32(at + 8, f.sequenceLimit, true);
        at += 12;
        break;
      case "streamCredit":
        dv.setUint32(at, f.stream, true);
        writeU64(out, at + 4, f.byteLimit);
        at += 12;
        break;
      case "streamsCredit":
        dv.setUint32(at, f.limit, true);
        at += 4;
        break;
      case "streamReset":
      case "stopSending": // the same layout: stream id | code
        dv.setUint32(at, f.stream, true);
        out[at + 4] = f.code;
        at += 5;
        break;
      case "pathChallenge":
      case "pathResponse":
        out.set(f.data, at);
        at += 8;
        break;
      case "messageRefused":
        dv.setUint32(at, f.sequence, true);
        dv.setUint32(at + 4, f.declared, true);
        dv.setUint32(at + 8, f.largest, true);
        at += 12;
        break;
    }
  }
  return out;
}

class MalformedFrames extends Error {}

/** Parses a whole plaintext; throws MalformedFrames when any frame does not parse (the packet is dropped whole). */
export function decodeFrames(plaintext: Uint8Array): Frame[] {
  const dv = view(plaintext);
  const frames: Frame[] = [];
  let at = 0;
  const need = (n: number) => {
    if (at + n > plaintext.length) throw new MalformedFrames(`frame past the end at ${at}`);
  };
  while (at < plaintext.length) {
    const type = plaintext[at++];
    switch (type) {
      case FRAME.padding:
        frames.push({ type: "padding", length: plaintext.length - at + 1 });
        at = plaintext.length;
        break;
      case FRAME.confirm:
        frames.push({ type: "confirm" });
        break;
      case FRAME.confirmAck:
        frames.push({ type: "confirmAck" });
        break;
      case FRAME.ping:
        frames.push({ type: "ping" });
        break;
      case FRAME.ack: {
        need(17);
        const largest = readU64(plaintext, at);
        const delayUs = dv.getUint32(at + 8, true);
        const count = plaintext[at + 12];
        const firstLength = dv.getUint32(at + 13, true);
        at += 17;
        const ranges: PacketRange[] = [{ high: largest, low: largest - firstLength + 1 }];
        need(8 * (count - 1));
        for (let i = 1; i < count; i++) {
          const high = ranges[i - 1].low - dv.getUint32(at, true) - 1;
          ranges.push({ high, low: high - dv.getUint32(at + 4, true) + 1 });
          at += 8;
        }
        frames.push({ type: "ack", delayUs, ranges });
        break;
      }
      case FRAME.close:
        need(1);
        frames.push({ type: "close", code: plaintext[at++] });
        break;
      case FRAME.messageData: {
        need(14);
        const length = dv.getUint16(at + 12, true);
        need(14 + length);
        frames.push({
          type: "messageData",
          sequence: dv.getUint32(at, true),
          total: dv.getUint32(at + 4, true),
          offset: dv.getUint32(at + 8, true),
          bytes: plaintext.slice(at + 14, at + 14 + length),
        });
        at += 14 + length;
        break;
      }
      case FRAME.streamData: {
        need(15);
        const length = dv.getUint16(at + 13, true);
        need(15 + length);
        frames.push({
          type: "streamData",
          fin: (plaintext[at] & 1) === 1,
          stream: dv.getUint32(at + 1, true),
          offset: readU64(plaintext, at + 5),
          bytes: plaintext.slice(at + 15, at + 15 + length),
        });
        at += 15 + length;
        break;
      }
      case FRAME.messageCredit:
        need(12);
        frames.push({ type: "messageCredit", byteLimit: readU64(plaintext, at), sequenceLimit: dv.getUint32(at + 8, true) });
        at += 12;
        break;
      case FRAME.streamCredit:
        need(12);
        frames.push({ type: "streamCredit", stream: dv.getUint32(at, true), byteLimit: readU64(plaintext, at + 4) });
        at += 12;
        break;
      case FRAME.streamsCredit:
        need(4);
        frames.push({ type: "streamsCredit", limit: dv.getUint32(at, true) });
        at += 4;
        break;
      case FRAME.streamReset:
      case FRAME.stopSending:
        need(5);
        frames.push({ type: type === FRAME.streamReset ? "streamReset" : "stopSending", stream: dv.getUint32(at, true), code: plaintext[at + 4] });
        at += 5;
        break;
      case FRAME.pathChallenge:
      case FRAME.pathResponse:
        need(8);
        frames.push({ type: type === FRAME.pathChallenge ? "pathChallenge" : "pathResponse", data: plaintext.slice(at, at + 8) });
        at += 8;
        break;
      case FRAME.messageRefused:
        need(12);
        frames.push({
          type: "messageRefused",
          sequence: dv.getUint32(at, true),
          declared: dv.getUint32(at + 4, true),
          largest: dv.getUint32(at + 8, true),
        });
        at += 12;
        break;
      default: {
        if (type < 0x20 || type > 0x2f) throw new MalformedFrames(`unknown frame type 0x${type.toString(16)} at ${at - 1}`);
        need(CONTROL_HEADER_BYTES - 1);
        const length = dv.getUint16(at + 4, true);
        need(CONTROL_HEADER_BYTES - 1 + length);
        const sequence = dv.getUint32(at, true);
        at += CONTROL_HEADER_BYTES - 1;
        frames.push({ type: "control", controlType: type, sequence, body: plaintext.slice(at, at + length) });
        at += length;
      }
    }
  }
  return frames;
}

/** Ack-eliciting: anything but ACK and PADDING (the handshake frames are answered by their own kind). */
export const elicitsAck = (frames: Frame[]) => frames.some((f) => f.type !== "ack" && f.type !== "padding");

/** A RELAY packet: `inner` (a whole datagram) to be forwarded by relay `relayId`. */
export function relayPacket(relayId: number, inner: Uint8Array): Uint8Array {
  const out = new Uint8Array(RELAY_HEADER_BYTES + inner.length);
  out[0] = KIND.relay;
  out[1] = WIRE_VERSION;
  writeU32(out, 2, relayId);
  out.set(inner, RELAY_HEADER_BYTES);
  return out;
}

/** A RELAY's id and its inner datagram, or undefined when `packet` is not a RELAY. */
export function readRelay(packet: Uint8Array): { relayId: number; inner: Uint8Array } | undefined {
  if (packet.length < RELAY_HEADER_BYTES + 1 || packet[0] !== KIND.relay || packet[1] !== WIRE_VERSION) return undefined;
  return { relayId: readU32(packet, 2), inner: packet.subarray(RELAY_HEADER_BYTES) };
}

/** RELAY_OFFER's body: peer static key (32) | relay id (u32, ≠ 0). */
export function relayOfferBody(peerKey: Uint8Array, relayId: number): Uint8Array {
  const out = new Uint8Array(36);
  out.set(peerKey);
  writeU32(out, 32, relayId);
  return out;
}

/** INTRODUCE_REQUEST's body: request id (u32, ≠ 0) | peer static key (32). */
export function introduceRequestBody(requestId: number, peerKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(36);
  writeU32(out, 0, requestId);
  out.set(peerKey, 4);
  return out;
}

/** INTRODUCTION's body: request id (0: not asked for) | peer key (32) | address (19) | n (u8, 0..4) | n × address. */
export function introductionBody(requestId: number, peerKey: Uint8Array, seenAt: Address, locals: Address[] = []): Uint8Array {
  const out = new Uint8Array(4 + 32 + OBSERVED_ADDRESS_BYTES + 1 + locals.length * OBSERVED_ADDRESS_BYTES);
  writeU32(out, 0, requestId);
  out.set(peerKey, 4);
  out.set(encodeAddress(seenAt), 36);
  out[55] = locals.length;
  locals.forEach((a, i) => out.set(encodeAddress(a), 56 + i * OBSERVED_ADDRESS_BYTES));
  return out;
}

/** INTRODUCTION's fields, read back. */
export function readIntroduction(body: Uint8Array): { requestId: number; peerKey: Uint8Array; seenAt: Address; locals: Address[] } {
  const count = body[55];
  return {
    requestId: readU32(body, 0),
    peerKey: body.slice(4, 36),
    seenAt: decodeAddress(body.subarray(36, 55)),
    locals: Array.from({ length: count }, (_, i) => decodeAddress(body.subarray(56 + i * OBSERVED_ADDRESS_BYTES))),
  };
}
