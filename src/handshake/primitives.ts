// X25519 from the platform (node:crypto, which Node and Deno both provide), synchronous so a handshake
// runs without an await. Everything symmetric (BLAKE2s, HMAC, ChaCha20-Poly1305) is the WebAssembly
// core's (core-crypto.ts). Measured here (Node 20): a key pair ~200 µs, a DH ~115 µs with the key import.
import * as nodeCrypto from "node:crypto";
import { sameBytes } from "../memory/bytes.ts";

export type PrivateKey = nodeCrypto.KeyObject;

// Raw X25519 keys go in and out as JWK (RFC 8037): measured on Node 20, a JWK import takes 22 µs
// and an export 1 µs, against 92 µs and 68 µs through DER (SPKI).
const base64url = (raw: Uint8Array) => Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString("base64url");

/** The private key of a 32-byte X25519 secret (Node and Deno derive the public half from d). */
export function importPrivateKey(raw: Uint8Array): PrivateKey {
  return nodeCrypto.createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: base64url(raw), x: "" }, format: "jwk" });
}

export function rawPublicKey(key: PrivateKey | nodeCrypto.KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: "jwk" }).x!, "base64url"));
}

/**
 * A new key pair from 32 random bytes. Not generateKeyPairSync() followed by a JWK export: on Node
 * 20.20 that pair can deadlock inside node:crypto (a collection during the export destroys the key
 * generation job while the key's mutex is held; a loop of the two hung in 3 tries of 3).
 */
export function generateKeyPair(): { privateKey: PrivateKey; publicKey: Uint8Array } {
  const privateKey = importPrivateKey(crypto.getRandomValues(new Uint8Array(32)));
  return { privateKey, publicKey: rawPublicKey(nodeCrypto.createPublicKey(privateKey)) };
}

/**
 * Ephemeral key pairs made ahead, at most this many: a handshake takes one (each is used once) rather
 * than make it on its critical path (~56 µs each, twice per handshake: the intro's and the response's).
 * The driver makes a spare one off the path (makeSpareKeyPair, after the datagram that used one went).
 */
export const SPARE_KEY_PAIRS = 4;
const spareKeyPairs: ReturnType<typeof generateKeyPair>[] = [];

/** A key pair never used before: a spare one if there is one. */
export function ephemeralKeyPair(): { privateKey: PrivateKey; publicKey: Uint8Array } {
  return spareKeyPairs.pop() ?? generateKeyPair();
}

/** Whether fewer than SPARE_KEY_PAIRS are ready. */
export function spareKeyPairWanted(): boolean {
  return spareKeyPairs.length < SPARE_KEY_PAIRS;
}

/** Makes one spare key pair, if one is wanted. */
export function makeSpareKeyPair(): void {
  if (spareKeyPairWanted()) spareKeyPairs.push(generateKeyPair());
}

/**
 * Public keys imported lately, newest first, at most this many. A handshake uses each public key in
 * two DHs (the intro's responder key in es and ss, then se; the initiator's ephemeral in es and ee,
 * its static in ss and se): the second import (~35 µs in the connect profile) finds the first.
 */
const IMPORTED_PUBLIC_KEYS = 4;
const imported: { raw: Uint8Array; key: nodeCrypto.KeyObject }[] = [];

function importedPublicKey(raw: Uint8Array): nodeCrypto.KeyObject {
  for (const entry of imported) if (sameBytes(entry.raw, raw)) return entry.key;
  const key = nodeCrypto.createPublicKey({ key: { kty: "OKP", crv: "X25519", x: base64url(raw) }, format: "jwk" });
  imported.unshift({ raw: raw.slice(), key });
  if (imported.length > IMPORTED_PUBLIC_KEYS) imported.pop();
  return key;
}

/**
 * X25519 with a raw 32-byte public key; undefined when the key is not usable: not a valid encoding,
 * or a low-order point whose shared secret is all zeros (RFC 7748 §6.1: such a result is refused).
 */
export function dh(privateKey: PrivateKey, publicKey: Uint8Array): Uint8Array | undefined {
  let shared: Buffer;
  try {
    shared = nodeCrypto.diffieHellman({ privateKey, publicKey: importedPublicKey(publicKey) });
  } catch {
    return undefined;
  }
  let any = 0;
  for (const byte of shared) any |= byte;
  return any === 0 ? undefined : new Uint8Array(shared.buffer, shared.byteOffset, shared.length);
}
