// A node's identity: its static X25519 key pair, made and read back so an application can keep the
// same identity across restarts (Transport.bind({ secretKey })), and its keys as text.
//
// Keys are made from 32 random bytes, imported as a JWK with the public half left empty (node:crypto
// derives it), and the public key read back through createPublicKey(). Not generateKeyPairSync("x25519")
// then a JWK export: on Node 20.20.2 that pair deadlocks inside node:crypto (a GC during the export
// destroys the key-generation job while the key's mutex is held; a loop of the two hung in 3 of 3 tries).
import { Buffer } from "node:buffer";
import { createPublicKey } from "node:crypto";
import { invalidArgValue, validateBytes, validateOneOf, validateString } from "../errors/validate.ts";
import { importPrivateKey, rawPublicKey } from "../handshake/primitives.ts";

/** X25519 keys, secret and public, are 32 bytes. */
const KEY_BYTES = 32;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}$/;

export interface KeyPair {
  /** 32 bytes: keep them secret (Transport.bind({ secretKey }) takes them). */
  secretKey: Uint8Array;
  /** 32 bytes: what peers pass to connect(). */
  publicKey: Uint8Array;
}

/** A new static key pair from 32 random bytes (crypto.getRandomValues). */
export function generateKeyPair(): KeyPair {
  const secretKey = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  return { secretKey, publicKey: publicKeyOf(secretKey) };
}

/** The public key (32 bytes) of the X25519 secret key `secretKey` (32 bytes; every 32 bytes are a valid secret key). */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  validateBytes(secretKey, "secretKey", KEY_BYTES);
  return rawPublicKey(createPublicKey(importPrivateKey(secretKey)));
}

/** `key` (32 bytes) as text: base64url (43 characters, the default) or hex (64). decodeKey() reads both. */
export function encodeKey(key: Uint8Array, encoding: "base64url" | "hex" = "base64url"): string {
  validateBytes(key, "key", KEY_BYTES);
  validateOneOf(encoding, "encoding", ["base64url", "hex"]);
  return encoding === "hex" ? Buffer.from(key.buffer, key.byteOffset, key.length).toString("hex") : base64url(key);
}

/** The 32-byte key `text` encodes: 64 hex digits, or 43 base64url characters (as encodeKey() writes them). */
export function decodeKey(text: string): Uint8Array {
  validateString(text, "text");
  if (HEX_KEY.test(text)) return new Uint8Array(Buffer.from(text, "hex"));
  if (BASE64URL_KEY.test(text)) {
    const key = new Uint8Array(Buffer.from(text, "base64url"));
    // 43 characters carry 258 bits: the last character's low 2 bits must be zero for one encoding per key.
    if (base64url(key) === text) return key;
  }
  throw invalidArgValue("text", text, "must be a 32-byte key as 64 hex digits or 43 base64url characters");
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64url");
}
