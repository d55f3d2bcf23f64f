// Key updates in virtual time: two KeyPhases (one per side) over an in-memory exchange of phase bits.
import { afterAll, expect, test } from "vitest";
import { Arena } from "../src/memory/arena.ts";
import { CoreCrypto } from "../src/handshake/core-crypto.ts";
import { KeyPhases, packetKey, nextSecret } from "../src/wire/packet-keys.ts";

const arena = Arena.create({ bytes: 4 * 1024 * 1024 });
const crypto = new CoreCrypto(arena);
afterAll(() => {
  crypto.dispose();
  arena.forget();
});
const bytes = (fill: number) => new Uint8Array(32).fill(fill);
const RTO = 200;

function pair(updatePackets: number) {
  const limits = { updatePackets, updateMs: 3_600_000, maxFailedOpens: 1 << 20 };
  const a = new KeyPhases(crypto, { send: bytes(1), receive: bytes(2) }, 0, limits);
  const b = new KeyPhases(crypto, { send: bytes(2), receive: bytes(1) }, 0, limits);
  return { a, b };
}

/** Sends one packet from `from` to `to`; answers whether `to` opened it with the key `from` sealed with. */
function deliver(from: KeyPhases, to: KeyPhases, packetNumber: number, largest: { value: number }, now: number): boolean {
  const sealed = from.sealKey(now);
  const candidate = to.openKey(sealed.phaseBit, packetNumber, largest.value, now);
  if (candidate === undefined || !Buffer.from(candidate.key).equals(Buffer.from(sealed.key))) {
    to.failedOpen();
    return false;
  }
  to.authenticated(candidate.phase, now, RTO);
  largest.value = Math.max(largest.value, packetNumber);
  return true;
}

test("the same keys on both sides at first: the packet key of each direction's traffic secret", () => {
  const { a, b } = pair(1000);
  expect(a.sealKey(0).key).toEqual(packetKey(crypto, bytes(1)));
  expect(b.openKey(0, 0, -1, 0)!.key).toEqual(packetKey(crypto, bytes(1)));
  expect(packetKey(crypto, nextSecret(crypto, bytes(1)))).not.toEqual(packetKey(crypto, bytes(1)));
});

test("a long exchange moves through many phases; every packet opens; both sides follow each other", () => {
  const { a, b } = pair(100);
  const toB = { value: -1 };
  const toA = { value: -1 };
  for (let pn = 0; pn < 5000; pn++) {
    expect(deliver(a, b, pn, toB, pn)).toBe(true);
    if (pn % 10 === 0) expect(deliver(b, a, pn / 10, toA, pn)).toBe(true);
  }
  expect(a.phase).toBeGreaterThanOrEqual(40);
  expect(Math.abs(a.phase - b.phase)).toBeLessThanOrEqual(1);
});

test("a side moves on only once the peer has caught up: never two phases ahead", () => {
  const { a, b } = pair(10);
  const toB = { value: -1 };
  const toA = { value: -1 };
  // a sends 100 packets and has never heard from b: it stays in phase 0 (b may not hold the keys yet).
  for (let pn = 0; pn < 100; pn++) expect(deliver(a, b, pn, toB, pn)).toBe(true);
  expect(a.phase).toBe(0);
  // One packet from b: a moves on once, and no further until b has sent in phase 1.
  deliver(b, a, 0, toA, 100);
  for (let pn = 100; pn < 200; pn++) expect(deliver(a, b, pn, toB, pn)).toBe(true);
  expect(a.phase).toBe(1);
  expect(b.phase).toBe(1); // b followed when it saw phase 1
});

test("a reordered packet of the previous phase still opens, for 3 RTOs", () => {
  const { a, b } = pair(10);
  const toB = { value: -1 };
  const toA = { value: -1 };
  for (let pn = 0; pn < 10; pn++) deliver(a, b, pn, toB, 0);
  deliver(b, a, 0, toA, 0); // a learns b is in phase 0 with it: caught up
  const old = a.sealKey(0); // the 11th packet of phase 0? no: the limit moves a to phase 1 now
  expect(old.phaseBit).toBe(1);
  const late = b.openKey(0, 5, 20, 100); // an old phase-0 packet numbered below the largest
  expect(late).toBeDefined();
  expect(b.openKey(0, 5, 20, 0 + 3 * RTO + 1)).toBeDefined(); // b has not moved yet: phase 0 is current
});

test("forged packets past the limit move the connection to fresh keys", () => {
  const limits = { updatePackets: 1 << 30, updateMs: 3_600_000, maxFailedOpens: 5 };
  const a = new KeyPhases(crypto, { send: bytes(1), receive: bytes(2) }, 0, limits);
  const b = new KeyPhases(crypto, { send: bytes(2), receive: bytes(1) }, 0, limits);
  const toA = { value: -1 };
  deliver(b, a, 0, toA, 0); // a has heard from b in phase 0
  for (let i = 0; i < 5; i++) a.failedOpen();
  expect(a.sealKey(1).phaseBit).toBe(1);
});
