// The framing parser (assembly/wire.ts) against a reference model, on random and mutated datagrams
// (fast-check), and the sizes that forbid amplification.
import fc from "fast-check";
import { expect, test } from "vitest";
import { Arena } from "../src/memory/arena.ts";
import { channel } from "../src/channel/channel.ts";
import { Framer, PARSE_NO_FRAME } from "../src/wire/framer.ts";
import * as wire from "../build/core-constants.js";
import { MAX_SEND_DATAGRAM_BYTES } from "../src/wire/constants.ts";

const arena = Arena.create({ bytes: 1 << 20 });
const framer = new Framer(arena);
const scratch = arena.core.allocFrame();

/** What wireParse must answer, written independently from the spec in docs/wire.md. */
function model(d: Uint8Array): number {
  if (d.length === 0) return wire.WIRE_EMPTY;
  if (d.length > 1500) return wire.WIRE_OVERSIZE;
  const view = new DataView(d.buffer, d.byteOffset, d.length);
  if (d[0] === 0x02 || d[0] === 0x82) {
    if (d.length < 30) return wire.WIRE_BAD_LENGTH;
    if (view.getUint32(1, true) === 0) return wire.WIRE_BAD_CONNECTION;
    if (view.getUint32(9, true) >= 2 ** 21) return wire.WIRE_BAD_PACKET_NUMBER;
    return wire.KIND_DATA;
  }
  const lengths: Record<number, number> = { 0x01: 146, 0x03: 114, 0x04: 50, 0x05: 0 };
  const exact = lengths[d[0]!];
  if (exact === undefined) return wire.WIRE_UNKNOWN_KIND;
  if (d.length < 2) return wire.WIRE_BAD_LENGTH;
  if (d[1] !== 2) return wire.WIRE_UNKNOWN_VERSION;
  if (exact === 0 ? d.length < 7 : d.length !== exact) return wire.WIRE_BAD_LENGTH; // a RELAY carries ≥ 1 byte after its 6
  if (view.getUint32(2, true) === 0) return wire.WIRE_BAD_CONNECTION;
  return d[0]!;
}

function valid(first: number, length: number, seed: number): Uint8Array {
  const d = new Uint8Array(length).fill(seed & 255);
  d[0] = first;
  const view = new DataView(d.buffer);
  if ((first & 0x7f) === wire.KIND_DATA) {
    view.setUint32(1, seed | 1, true);
    view.setUint32(9, seed & 0xfffff, true);
  } else {
    d[1] = 2;
    view.setUint32(2, seed | 1, true);
  }
  return d;
}

const arbitraryValid = fc.oneof(
  fc.tuple(fc.constant(wire.KIND_INTRO), fc.constant(146), fc.nat()),
  fc.tuple(fc.constant(wire.KIND_RESPONSE), fc.constant(114), fc.nat()),
  fc.tuple(fc.constant(wire.KIND_COOKIE), fc.constant(50), fc.nat()),
  fc.tuple(fc.constant(wire.KIND_RELAY), fc.integer({ min: 7, max: 1500 }), fc.nat()),
  fc.tuple(fc.constantFrom(0x02, 0x82), fc.integer({ min: 30, max: 1500 }), fc.nat()),
).map(([first, length, seed]) => valid(first, length, seed));

const mutation = fc.oneof(
  fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }).map(({ at, value }) => (d: Uint8Array) => {
    const copy = new Uint8Array(d);
    if (copy.length > 0) copy[at % copy.length] = value;
    return copy;
  }),
  fc.nat({ max: 1600 }).map((length) => (d: Uint8Array) => d.subarray(0, Math.min(length, d.length))),
  fc.nat({ max: 200 }).map((extra) => (d: Uint8Array) => {
    const longer = new Uint8Array(d.length + extra);
    longer.set(d);
    return longer;
  }),
);

test("random bytes: the parser never traps and agrees with the model", () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 1600 }), (d) => {
    expect(framer.parse(d)).toBe(model(d));
  }), { numRuns: 5000, seed: 0x3907 });
});

test("mutated valid packets: truncated, extended, bytes changed: the parser agrees with the model", () => {
  fc.assert(fc.property(arbitraryValid, fc.array(mutation, { maxLength: 4 }), (d, mutations) => {
    expect(framer.parse(d)).toBe(d[0]! & 0x7f);
    const mutated = mutations.reduce((bytes, mutate) => mutate(bytes), d);
    expect(framer.parse(mutated)).toBe(model(mutated));
  }), { numRuns: 5000, seed: 0x3908 });
});

test("fields: key phase, connection id and a packet number up to 2^53 − 1 round-trip through the core", () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (phase, id, packetNumber) => {
    const at = scratch + 8;
    arena.core.wireWriteDataHeader(at, phase, id, packetNumber % 2 ** 32, Math.floor(packetNumber / 2 ** 32));
    const datagram = new Uint8Array(40);
    datagram.set(arena.bytes.subarray(at, at + wire.DATA_HEADER_BYTES));
    expect(framer.parse(datagram)).toBe(wire.KIND_DATA);
    expect(datagram[0]! >> 7).toBe(phase);
    expect(framer.connection()).toBe(id);
    expect(framer.packetNumber()).toBe(packetNumber);
  }), { numRuns: 2000, seed: 0x3909 });
});

test("a parsed datagram is handed over to a queue as it lies; with the frame pool empty, parse() answers PARSE_NO_FRAME until frames come back", () => {
  const small = Arena.create({ bytes: 128 * 1024 });
  const landing = new Framer(small);
  const [tx, rx] = channel(1024, { arena: small, maxPacketSize: wire.MAX_DATAGRAM_BYTES });
  const datagram = (i: number) => {
    const d = new Uint8Array(1200).fill(i & 0xff);
    d[0] = wire.KIND_DATA;
    const view = new DataView(d.buffer);
    view.setUint32(1, i + 1, true); // connection id
    view.setBigUint64(5, BigInt(i), true); // packet number
    return d;
  };
  let handed = 0;
  for (;;) {
    const kind = landing.parse(datagram(handed));
    if (kind === PARSE_NO_FRAME) break;
    expect(kind).toBe(wire.KIND_DATA);
    expect(landing.handOver(tx)).toBe("sent");
    handed++;
  }
  expect(handed).toBeGreaterThan(8); // the pool ran out, not the queue
  expect(rx.stats().queued).toBe(handed);
  for (let i = 0; i < handed; i++) expect(rx.tryRecv()).toEqual(datagram(i));
  expect(landing.parse(datagram(0))).toBe(wire.KIND_DATA); // frames are back
  expect(landing.connection()).toBe(1);
});

test("a response or a cookie is never larger than the intro it answers; a data packet carries 1171 bytes of plaintext at 1200, 1471 at the 1500 a receiver accepts", () => {
  expect(wire.RESPONSE_BYTES).toBeLessThanOrEqual(wire.INTRO_BYTES);
  expect(wire.COOKIE_BYTES).toBeLessThanOrEqual(wire.INTRO_BYTES);
  expect(MAX_SEND_DATAGRAM_BYTES - wire.DATA_HEADER_BYTES - wire.TAG_BYTES).toBe(1171);
  expect(wire.MAX_DATAGRAM_BYTES - wire.DATA_HEADER_BYTES - wire.TAG_BYTES).toBe(1471);
});
