// Path validation in virtual time (RFC 9000 §8.2, §9): what moves a connection's address, and what an
// unvalidated address can make it send.
import { expect, test } from "vitest";
import { MAX_AMPLIFICATION, PathState } from "../src/wire/path.ts";

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
  expect(path.onPathResponse(new Uint8Array(8))).toBeUndefined(); // wrong data
  expect(path.onPathResponse(random(8))).toBe("validated");
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
