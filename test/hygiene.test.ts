// The tree stays as built (scripts/hygiene.mjs says how each check reads it): no export without a
// user, src/'s folders layered with no import up and no cycle (nor among files), and no TypeScript `private`.
import { expect, test } from "vitest";
import { layerViolations, tsPrivateMembers, unusedExports } from "../scripts/hygiene.mjs";

test("every export of src/ is imported somewhere, or published by src/index.ts or src/internal.ts", () => {
  expect(unusedExports()).toEqual([]);
});

test("src/'s layers import only from the layers below them, with no import cycle among folders or files", () => {
  expect(layerViolations()).toEqual([]);
});

test("src/ declares private members with #, never with TypeScript's private", () => {
  expect(tsPrivateMembers()).toEqual([]);
});
