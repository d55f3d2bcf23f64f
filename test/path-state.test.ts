// Path validation in virtual time (RFC 9000 §8.2, §9): what moves a connection's address, and what an
// unvalidated address can make it send.
import { expect, test } from "vitest";
import { MAX_AMPLIFICATION, PathState, PROBE_INTERVAL_MS, REPUNCH_AFTER_MS } from "../src/wire/path.ts";

const home = { host: "198.18.0.1", port: 4000 };
const moved = { host: "198.18.0.1", port: 4001 };
const elsewhere = { host: "198.18.9.9", port: 9 };
const random = (length: number) => Uint8Array.from({ length }, (_, i) => i + 1);

test("a newer authenticated packet from a new address moves the path, unvalidated, with a challenge due", () => {
  const path = new PathState(home, random);
  expect(path.onAuthenticated(home, 5, 100, 0, 200)).toBeUndefined();
  expect(path.onAuthenticated(moved, 6, 40, 10, 200)).toBe("moved");
  expect(path.address).toEqual(moved);
  expect(path.validated).toBe(false);
  expect(path.allowance).toBe(MAX_AMPLIFICATION * 40);
  expect(path.takeChallenge(10)).toEqual(random(8));
  expect(path.takeChallenge(10)).toBeUndefined(); // again after an RTO
  expect(path.takeChallenge(210)).toEqual(random(8));
});

test("an address and its IPv4-mapped form (how a dual-stack socket hears an IPv4 peer) are one path; another port or host is not", () => {
  const path = new PathState(home, random);
  expect(path.onAuthenticated({ host: `::ffff:${home.host}`, port: home.port }, 5, 100, 0, 200)).toBeUndefined();
  expect(path.address).toEqual(home);
  expect(path.onAuthenticated({ host: `::ffff:${home.host}`, port: moved.port }, 6, 100, 1, 200)).toBe("moved");
  expect(path.onAuthenticated({ host: "::ffff:198.18.0.2", port: moved.port }, 7, 100, 2, 200)).toBe("moved");
  expect(path.onAuthenticated({ host: "64:ff9b::c612:1", port: moved.port }, 8, 100, 3, 200)).toBe("moved"); // NAT64's prefix is not a mapping
});

test("an older packet from another address moves nothing (a reordered or replayed one)", () => {
  const path = new PathState(home, random);
  path.onAuthenticated(home, 10, 100, 0, 200);
  expect(path.onAuthenticated(moved, 9, 100, 1, 200)).toBeUndefined();
  expect(path.address).toEqual(home);
  expect(path.validated).toBe(true);
});

test("until validated, at most 3× the bytes received go to the new address; the right PATH_RESPONSE validates it", () => {
  const path = new PathState(home, random);
  path.onAuthenticated(elsewhere, 1, 100, 0, 200);
  path.onSent(250);
  expect(path.allowance).toBe(50);
  path.onAuthenticated(elsewhere, 2, 10, 1, 200); // more bytes from it raise the allowance
  expect(path.allowance).toBe(80);
  expect(path.onPathResponse(new Uint8Array(8), 2)).toBeUndefined(); // wrong data
  expect(path.onPathResponse(random(8), 2)).toBe("validated");
  expect(path.allowance).toBe(Infinity);
});

test("no answer within 3 RTOs (at least 1 s): back to the last validated address", () => {
  const path = new PathState(home, random);
  path.onAuthenticated(elsewhere, 1, 100, 0, 100);
  expect(path.nextDeadline()).toBe(0);
  expect(path.handleTimeout(999)).toBeUndefined();
  expect(path.handleTimeout(1000)).toBe("reverted");
  expect(path.address).toEqual(home);
  expect(path.validated).toBe(true);
});

const relayed = { host: "198.18.0.2", port: 7000, relay: 12 };
const direct = { host: "198.18.0.4", port: 5000 };
const local = { host: "198.19.2.2", port: 5000 };
/** Distinct challenges: each call a new 8 bytes. */
function counting() {
  let n = 0;
  return (length: number) => new Uint8Array(length).fill(++n);
}

test("a relayed path probes the peer's direct addresses each interval; the first answered becomes the path, validated", () => {
  const path = new PathState(relayed, counting());
  path.probe([direct, local, relayed], 0); // a relay address among the candidates is not probed
  expect(path.nextDeadline()).toBe(0);
  const first = path.takeProbes(0);
  expect(first.map((probe) => probe.address)).toEqual([direct, local]);
  expect(path.takeProbes(500)).toEqual([]);
  expect(path.nextDeadline()).toBe(PROBE_INTERVAL_MS);
  const second = path.takeProbes(PROBE_INTERVAL_MS);
  expect(second[0]!.data).not.toEqual(first[0]!.data); // a fresh challenge each time
  // A probe packet from the direct address moves nothing; the answer to an earlier probe still counts.
  expect(path.onAuthenticated(direct, 9, 40, 1100, 200, true)).toBeUndefined();
  expect(path.address).toEqual(relayed);
  expect(path.onPathResponse(first[1]!.data, 1150)).toBe("migrated");
  expect(path.address).toEqual(local);
  expect(path.validated).toBe(true);
  expect(path.allowance).toBe(Infinity);
  expect(path.nextDeadline()).toBe(Infinity); // probing stopped
  expect(path.onPathResponse(second[0]!.data, 1160)).toBeUndefined(); // a later answer moves nothing more
});

test("probing slows after 30 s and stops once the path is not a relay (the peer moved us first)", () => {
  const path = new PathState(relayed, counting());
  path.probe([direct], 0);
  for (let now = 0; now < 30_000; now += PROBE_INTERVAL_MS) expect(path.takeProbes(now)).toHaveLength(1);
  expect(path.takeProbes(30_000)).toHaveLength(1);
  expect(path.nextDeadline()).toBe(35_000);
  // A data packet from the direct address (the peer migrated first) moves the path as any move does.
  expect(path.onAuthenticated(direct, 50, 100, 31_000, 200)).toBe("moved");
  expect(path.takeProbes(35_000)).toEqual([]); // unvalidated yet: probing waits
  expect(path.onPathResponse(path.takeChallenge(35_000)!, 35_010)).toBe("validated");
  expect(path.takeProbes(40_000)).toEqual([]);
  expect(path.nextDeadline()).toBe(Infinity); // validated off the relay: probing stopped
  // A direct path is never probed from.
  const plain = new PathState(direct, counting());
  plain.probe([local], 0);
  expect(plain.takeProbes(0)).toEqual([]);
});

test("once direct, the relay is a fallback: the peer's packets still coming through it move nothing until the direct path falls silent", () => {
  const path = new PathState(relayed, counting());
  path.probe([direct], 0);
  const [probe] = path.takeProbes(0);
  expect(path.onPathResponse(probe!.data, 10)).toBe("migrated");
  // The peer has not moved yet: its newer packets keep arriving through the relay.
  expect(path.onAuthenticated(relayed, 20, 1200, 12, 200)).toBeUndefined();
  expect(path.onAuthenticated(direct, 21, 1200, 500, 200)).toBeUndefined();
  expect(path.onAuthenticated(relayed, 22, 1200, 1499, 200)).toBeUndefined(); // direct heard 999 ms ago
  expect(path.address).toEqual(direct);
  // The direct path silent for the validation bound (max(3 RTOs, 1 s)): the relay takes over again.
  expect(path.onAuthenticated(relayed, 23, 1200, 1500, 200)).toBe("moved");
  expect(path.address).toEqual(relayed);
});

test("a direct path silent for REPUNCH_AFTER_MS is due a re-punch, again every second while silent, and no more once acknowledged", () => {
  const path = new PathState(home, random);
  path.noteUnanswered(Infinity);
  expect(path.nextDeadline()).toBe(Infinity);
  path.noteUnanswered(100);
  expect(path.silent(100 + REPUNCH_AFTER_MS - 1)).toBe(false);
  expect(path.takeRepunch(100 + REPUNCH_AFTER_MS - 1)).toBe(false);
  expect(path.nextDeadline()).toBe(100 + REPUNCH_AFTER_MS);
  expect(path.silent(100 + REPUNCH_AFTER_MS)).toBe(true);
  expect(path.takeRepunch(100 + REPUNCH_AFTER_MS)).toBe(true);
  expect(path.takeRepunch(100 + REPUNCH_AFTER_MS + 1)).toBe(false);
  expect(path.takeRepunch(100 + 2 * REPUNCH_AFTER_MS)).toBe(true);
  path.noteUnanswered(Infinity); // acknowledged
  expect(path.nextDeadline()).toBe(Infinity);
  expect(path.silent(100_000)).toBe(false);
});

test("a punch challenges the address an introducer named a few times; its answer moves the path there, validated", () => {
  const path = new PathState(home, random);
  expect(path.punch(home, 0)).toBe(false); // where it is already: nothing to punch
  expect(path.punch({ ...moved, relay: 7 }, 0)).toBe(false); // a relay is no address of the peer's
  expect(path.punch(moved, 0)).toBe(true);
  const sent = [0, 200, 400, 600, 800].map((now) => path.takeProbes(now));
  expect(sent.map((probes) => probes.map((probe) => probe.address))).toEqual(Array(5).fill([moved]));
  expect(path.takeProbes(10_000)).toEqual([]); // five, then no more
  expect(path.address).toEqual(home);
  expect(path.onPathResponse(sent[4]![0]!.data, 900)).toBe("migrated");
  expect(path.address).toEqual(moved);
  expect(path.validated).toBe(true);
});

test("a relayed path is not punched (its probing covers the peer's addresses)", () => {
  const path = new PathState({ ...elsewhere, relay: 3 }, random);
  expect(path.punch(moved, 0)).toBe(false);
});
