// Static keys as people and programs pass them around: 32-byte X25519 keys as text, in hex (64
// characters) or base64url (43, unpadded, as in a JWK), and key pairs made or completed from a secret.
import { codedError } from "../errors/errors.ts";
import { invalidArgType, invalidArgValue, validateBytes, validateOneOf } from "../errors/validate.ts";
import { importPrivateKey, rawPublicKey } from "../handshake/primitives.ts";

const KEY_BYTES = 32;
/** How encodeKey() writes a key: hex (64 characters) or base64url (43, no padding). */
export type KeyEncoding = "hex" | "base64url";

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]=?$/; // 256 bits: the last character holds 4 of them

/** `key` (32 bytes) as text: hex by default, or base64url. */
export function encodeKey(key: Uint8Array, encoding: KeyEncoding = "hex"): string {
  validateBytes(key, "key", KEY_BYTES);
  validateOneOf(encoding, "encoding", ["hex", "base64url"] as const);
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString(encoding);
}

/**
 * The 32 bytes of a key written as hex (64 characters, either case) or base64url (43 characters,
 * an "=" pad allowed); a TypeError (ERR_INVALID_ARG_VALUE) naming `name` for anything else. Spaces
 * around it are ignored (a key pasted from a terminal).
 */
export function decodeKey(text: string, name = "key"): Uint8Array {
  if (typeof text !== "string") throw invalidArgType(name, "of type string", text, decodeKey);
  const trimmed = text.trim();
  if (HEX_KEY.test(trimmed)) return new Uint8Array(Buffer.from(trimmed, "hex"));
  if (BASE64URL_KEY.test(trimmed)) return new Uint8Array(Buffer.from(trimmed.replace("=", ""), "base64url"));
  throw invalidArgValue(name, text.length > 100 ? `${text.slice(0, 100)}...` : text, "must be a 32-byte key as 64 hex characters or 43 base64url characters", decodeKey);
}

/** A key given as bytes (32, copied) or as text (hex or base64url). */
export function checkKey(key: unknown, name: string): Uint8Array {
  if (typeof key === "string") return decodeKey(key, name);
  if (!(key instanceof Uint8Array)) throw invalidArgType(name, "a Uint8Array or a string (hex or base64url)", key, checkKey);
  validateBytes(key, name, KEY_BYTES);
  return new Uint8Array(key);
}

/** A new static key pair: `secretKey` for Transport.bind({ secretKey }), `publicKey` for peers' connect(). */
export function generateKeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  // Any 32 bytes are a secret key: X25519 clamps them (RFC 7748 §5).
  const secretKey = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  return { secretKey, publicKey: rawPublicKey(importPrivateKey(secretKey)) };
}

/** The public key of a 32-byte secret key (bytes, or text in hex or base64url). */
export function publicKeyOf(secretKey: Uint8Array | string): Uint8Array {
  const secret = checkKey(secretKey, "secretKey");
  try {
    return rawPublicKey(importPrivateKey(secret));
  } catch (error) {
    throw codedError(TypeError, "ERR_INVALID_ARG_VALUE", `The argument 'secretKey' is not a usable X25519 secret key: ${(error as Error).message}`, publicKeyOf);
  }
}
