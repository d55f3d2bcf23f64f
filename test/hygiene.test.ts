// The tree stays as built (scripts/hygiene.mjs says how each check reads it): no export without a
// user, src/'s folders layered with no import up and no cycle (nor among files), no TypeScript `private`, and
// public classes that show users their public members only.
import { expect, test } from "vitest";
import { layerViolations, publicMembers, tsPrivateMembers, unusedExports } from "../scripts/hygiene.mjs";

test("every export of src/ is imported somewhere, or published by src/index.ts or src/internal.ts", () => {
  expect(unusedExports()).toEqual([]);
});

test("src/'s layers import only from the layers below them, with no import cycle among folders or files", () => {
  expect(layerViolations()).toEqual([]);
});

test("src/ declares private members with #, never with TypeScript's private", () => {
  expect(tsPrivateMembers()).toEqual([]);
});

test("Transport and Connection show users their public members only (nothing internal in autocomplete)", () => {
  expect(publicMembers("Transport")).toEqual([
    "[Symbol.asyncDispose]", "[Symbol.asyncIterator]", "accept", "address", "close", "connect", "connectVia", "externalAddress", "introduce", "natType", "publicKey",
    "secretKey", "stats",
  ]);
  expect(publicMembers("Connection")).toEqual([
    "[Symbol.asyncDispose]", "[Symbol.asyncIterator]", "abort", "acceptStream", "addressChanges", "close", "closed", "error", "flush",
    "observedAddress", "openStream", "path", "recv", "remoteAddress", "remotePublicKey", "send", "stats", "whenClosed",
  ]);
});
