// X25519 from the platform (node:crypto, which Node and Deno both provide), synchronous so a handshake
// runs without an await. Everything symmetric (BLAKE2s, HMAC, ChaCha20-Poly1305) is the WebAssembly
// core's (core-crypto.ts). Measured here (Node 20): a key pair ~200 µs, a DH ~115 µs with the key import.
import * as nodeCrypto from "node:crypto";

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
 * X25519 with a raw 32-byte public key; undefined when the key is not usable: not a valid encoding,
 * or a low-order point whose shared secret is all zeros (RFC 7748 §6.1: such a result is refused).
 */
export function dh(privateKey: PrivateKey, publicKey: Uint8Array): Uint8Array | undefined {
  let shared: Buffer;
  try {
    const key = nodeCrypto.createPublicKey({ key: { kty: "OKP", crv: "X25519", x: base64url(publicKey) }, format: "jwk" });
    shared = nodeCrypto.diffieHellman({ privateKey, publicKey: key });
  } catch {
    return undefined;
  }
  let any = 0;
  for (const byte of shared) any |= byte;
  return any === 0 ? undefined : new Uint8Array(shared.buffer, shared.byteOffset, shared.length);
}
