// The platform's cryptography for the handshake, synchronous (node:crypto, which Node and Deno both
// provide): X25519 for key agreement, HKDF-SHA256 to derive keys, AES-128-GCM to seal its messages.
// WebCrypto is not used: it is promise-based, and a datagram must be opened without an await. Data
// packets are sealed in the WebAssembly core instead (wire/packet-aead.ts): a node:crypto cipher
// costs ~6–9 µs per 1171-byte packet here, mostly its set-up (docs/benchmarks.md).
import * as nodeCrypto from "node:crypto";

export type PrivateKey = nodeCrypto.KeyObject;
export type PublicKey = nodeCrypto.KeyObject;

// Raw X25519 keys go in and out as JWK (RFC 8037): measured on Node 20, a JWK import takes 22 µs
// and an export 1 µs, against 92 µs and 68 µs through DER (SPKI). A handshake does several of each.
const base64url = (raw: Uint8Array) => Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString("base64url");

export function importPrivateKey(raw: Uint8Array): PrivateKey {
  // Node 20 and Deno 2.9 both refuse a JWK without x, and with x empty both derive the public half
  // from d (checked by hand in each; test/handshake.test.ts's restarted peer relies on it in Node).
  return nodeCrypto.createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: base64url(raw), x: "" }, format: "jwk" });
}

/** Throws if `raw` is not a valid X25519 public key encoding. */
export function importPublicKey(raw: Uint8Array): PublicKey {
  return nodeCrypto.createPublicKey({ key: { kty: "OKP", crv: "X25519", x: base64url(raw) }, format: "jwk" });
}

export function rawPublicKey(key: PublicKey | PrivateKey): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: "jwk" }).x!, "base64url"));
}

export interface KeyPair {
  privateKey: PrivateKey;
  /** 32 raw bytes. */
  publicKey: Uint8Array;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync("x25519");
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/** X25519. Throws on a low-order public key (an all-zero shared secret), which node:crypto refuses. */
export function agree(privateKey: PrivateKey, publicKey: PublicKey): Buffer {
  return nodeCrypto.diffieHellman({ privateKey, publicKey });
}

export function hkdf(ikm: Uint8Array, salt: string, info: Uint8Array, length: number): Uint8Array {
  return new Uint8Array(nodeCrypto.hkdfSync("sha256", ikm, salt, info, length));
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = nodeCrypto.createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** An AES-128-GCM key, imported once: a cipher made from a KeyObject skips the key parse. */
export type SealKey = nodeCrypto.KeyObject;

export function sealKey(raw: Uint8Array): SealKey {
  return nodeCrypto.createSecretKey(raw);
}

/**
 * Seals the concatenation of `parts` and answers their ciphertexts then the tag, as chunks for a
 * gathered send (GCM is a stream cipher: no need to join the parts first). A (key, nonce) pair must
 * never seal twice: each handshake message has a key of its own, so its nonce may be zero.
 */
export function seal(key: SealKey, nonce: Uint8Array, aad: Uint8Array, parts: readonly Uint8Array[]): Buffer[] {
  const cipher = nodeCrypto.createCipheriv("aes-128-gcm", key, nonce);
  cipher.setAAD(aad);
  const chunks = parts.map((part) => cipher.update(part));
  cipher.final();
  chunks.push(cipher.getAuthTag());
  return chunks;
}

/** The plaintext, or undefined if the tag does not verify (never throws on bad input). */
export function open(key: SealKey, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Buffer | undefined {
  const decipher = nodeCrypto.createDecipheriv("aes-128-gcm", key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return plaintext;
}
