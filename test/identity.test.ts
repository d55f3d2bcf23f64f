// A stable identity: keys made and read back (transport.secretKey, generateKeyPair, publicKeyOf), as
// text both ways (hex and base64url), and a transport bound with a kept secret key is the same node.
import { afterEach, expect, test } from "vitest";
import { decodeKey, encodeKey, generateKeyPair, publicKeyOf, type Transport } from "sluice";
import { caught } from "./support/errors.ts";
import { closeAll, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

test("generateKeyPair() and publicKeyOf(): 32 random bytes and the public key node:crypto derives from them", () => {
  const pairs = Array.from({ length: 200 }, () => generateKeyPair()); // many: the deadlock of generateKeyPairSync + export showed in loops
  for (const { secretKey, publicKey } of pairs) {
    expect(secretKey).toHaveLength(32);
    expect(publicKeyOf(secretKey)).toEqual(publicKey);
  }
  expect(new Set(pairs.map((pair) => encodeKey(pair.secretKey))).size).toBe(200);
  // RFC 7748 §6.1: Alice's secret key and public key.
  const alice = decodeKey("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  expect(encodeKey(publicKeyOf(alice), "hex")).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
});

test("keys as text: hex and base64url both ways; anything else is a clear error", async () => {
  const { publicKey } = generateKeyPair();
  const hex = encodeKey(publicKey, "hex");
  const base64url = encodeKey(publicKey);
  expect(hex).toMatch(/^[0-9a-f]{64}$/);
  expect(base64url).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(decodeKey(hex)).toEqual(publicKey);
  expect(decodeKey(hex.toUpperCase())).toEqual(publicKey);
  expect(decodeKey(base64url)).toEqual(publicKey);
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // The 43rd character carries 4 bits of the key and 2 that must be zero: with one set, no key encodes so.
  const nonCanonical = base64url.slice(0, 42) + ALPHABET[ALPHABET.indexOf(base64url[42]!) | 1];
  for (const bad of ["", hex.slice(1), `${base64url}=`, "z".repeat(64), nonCanonical]) {
    expect(await caught(() => decodeKey(bad))).toMatchObject({ name: "TypeError", code: "ERR_INVALID_ARG_VALUE" });
  }
  expect(await caught(() => decodeKey(7 as unknown as string))).toMatchObject({ code: "ERR_INVALID_ARG_TYPE" });
  expect(await caught(() => encodeKey(publicKey, "base64" as "hex"))).toMatchObject({ code: "ERR_INVALID_ARG_VALUE" });
  expect(await caught(() => encodeKey(new Uint8Array(16)))).toMatchObject({ code: "ERR_OUT_OF_RANGE" });
});

test("transport.secretKey reads back (a copy): a transport bound with it again is the same node", async () => {
  const first = await bind();
  const secretKey = first.secretKey;
  expect(secretKey).toHaveLength(32);
  expect(publicKeyOf(secretKey)).toEqual(first.publicKey);
  secretKey.fill(0);
  first.publicKey.fill(0);
  expect(publicKeyOf(first.secretKey)).toEqual(first.publicKey); // copies: the transport's own keys are untouched
  const kept = generateKeyPair();
  const again = await bind({ secretKey: decodeKey(encodeKey(kept.secretKey)) });
  expect(again.publicKey).toEqual(kept.publicKey);
  expect(again.secretKey).toEqual(kept.secretKey);
});
