// mac1, mac2 and cookies (after WireGuard): the checks a responder makes before it spends an X25519
// on a handshake packet. docs/wire.md ("Cheap checks first") is the long form.
//
// - mac1 = MAC(H32("mac1----" ‖ S), packet up to mac1), S the receiver's static public key: anyone who
//   knows the key can make it, so it stops only random bytes and scanners, at the cost of one BLAKE2s.
// - cookie = MAC(R, the source address), R 32 random bytes replaced every COOKIE_SECRET_MS: only a
//   sender that receives at its source address learns its cookie (sent sealed in a COOKIE reply).
// - mac2 = MAC(cookie, packet up to mac2): under load, an intro without a valid mac2 gets a COOKIE reply,
//   smaller than the intro, and nothing else.
import { ADDRESS_BYTES, writeAddress, type Address } from "../wire/address.ts";
import type { PreparedMac } from "./core-crypto.ts";
import { COOKIE_BYTES, COOKIE_NONCE, COOKIE_SEALED, HANDSHAKE_CONNECTION, KIND_COOKIE, MAC_BYTES, WIRE_VERSION } from "../wire/constants.ts";

/** How long a cookie secret lives (WireGuard's two minutes); an initiator keeps a cookie as long. */
export const COOKIE_SECRET_MS = 120_000;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const encoder = new TextEncoder();
const MAC1_LABEL = encoder.encode("mac1----");
const COOKIE_LABEL = encoder.encode("cookie--");
const ZERO_MAC = new Uint8Array(MAC_BYTES);
const NO_KEY = new Uint8Array(0);

/** Keyed BLAKE2s and a small AEAD, from the WebAssembly core (core-crypto.ts), or a test's stand-in. */
export interface MacPrimitives {
  digest(key: Uint8Array, message: Uint8Array | readonly Uint8Array[], length: number): Uint8Array;
  verify(key: Uint8Array, message: Uint8Array, mac: Uint8Array): boolean;
  prepareMac(key: Uint8Array, digestLength: number): PreparedMac;
  verifyPrepared(prepared: PreparedMac, message: Uint8Array, mac: Uint8Array): boolean;
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined;
}

function labelled(primitives: MacPrimitives, label: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return primitives.digest(NO_KEY, [label, publicKey], KEY_BYTES);
}

/** The key of mac1 for packets to the holder of `publicKey`. */
export function mac1Key(primitives: MacPrimitives, publicKey: Uint8Array): Uint8Array {
  return labelled(primitives, MAC1_LABEL, publicKey);
}

/** The key that seals COOKIE replies from the holder of `publicKey`. */
function cookieKey(primitives: MacPrimitives, publicKey: Uint8Array): Uint8Array {
  return labelled(primitives, COOKIE_LABEL, publicKey);
}

/** Writes mac1 at `mac1At` and mac2 right after it (zeros without a cookie). */
export function stampMacs(primitives: MacPrimitives, packet: Uint8Array, mac1At: number, key: Uint8Array, cookie: Uint8Array | undefined): void {
  packet.set(primitives.digest(key, packet.subarray(0, mac1At), MAC_BYTES), mac1At);
  const mac2At = mac1At + MAC_BYTES;
  packet.set(cookie === undefined ? ZERO_MAC : primitives.digest(cookie, packet.subarray(0, mac2At), MAC_BYTES), mac2At);
}

/** Whether the packet's mac1 was made with the key `prepared` holds (ours: prepared once per transport). */
export function validMac1(primitives: MacPrimitives, packet: Uint8Array, mac1At: number, prepared: PreparedMac): boolean {
  return primitives.verifyPrepared(prepared, packet.subarray(0, mac1At), packet.subarray(mac1At, mac1At + MAC_BYTES));
}

/** A responder's cookies: issued per source address, checked in mac2, the secret replaced every 2 min. */
export class CookieIssuer {
  readonly #primitives: MacPrimitives;
  readonly #sealKey: Uint8Array;
  readonly #randomBytes: (length: number) => Uint8Array;
  #secret: Uint8Array;
  #secretAt: number;
  readonly #address = new Uint8Array(ADDRESS_BYTES);

  constructor(primitives: MacPrimitives, ownPublicKey: Uint8Array, randomBytes: (length: number) => Uint8Array, now: number) {
    this.#primitives = primitives;
    this.#sealKey = cookieKey(primitives, ownPublicKey);
    this.#randomBytes = randomBytes;
    this.#secret = randomBytes(KEY_BYTES);
    this.#secretAt = now;
  }

  /** The cookie of `address` now. */
  cookieFor(address: Address, now: number): Uint8Array {
    if (now - this.#secretAt >= COOKIE_SECRET_MS) {
      this.#secret = this.#randomBytes(KEY_BYTES);
      this.#secretAt = now;
    }
    writeAddress(address, this.#address, 0);
    return this.#primitives.digest(this.#secret, this.#address, MAC_BYTES);
  }

  /** Whether the packet's mac2 was made with `cookie` (the sender's, from cookieFor). */
  validMac2(packet: Uint8Array, mac2At: number, cookie: Uint8Array): boolean {
    return this.#primitives.verify(cookie, packet.subarray(0, mac2At), packet.subarray(mac2At, mac2At + MAC_BYTES));
  }

  /** The COOKIE reply carrying `cookie` (from cookieFor) to an intro whose mac1 is at `mac1At`: 50 bytes. */
  reply(intro: Uint8Array, mac1At: number, cookie: Uint8Array): Uint8Array {
    const reply = new Uint8Array(COOKIE_BYTES);
    reply[0] = KIND_COOKIE;
    reply[1] = WIRE_VERSION;
    reply.set(intro.subarray(HANDSHAKE_CONNECTION, HANDSHAKE_CONNECTION + 4), HANDSHAKE_CONNECTION);
    const nonce = this.#randomBytes(NONCE_BYTES);
    reply.set(nonce, COOKIE_NONCE);
    reply.set(this.#primitives.seal(this.#sealKey, nonce, intro.subarray(mac1At, mac1At + MAC_BYTES), cookie), COOKIE_SEALED);
    return reply;
  }
}

/** The cookie a COOKIE reply carries, if it was sealed by the holder of `responderStatic` for our intro. */
export function openCookieReply(primitives: MacPrimitives, reply: Uint8Array, responderStatic: Uint8Array, introMac1: Uint8Array): Uint8Array | undefined {
  return primitives.open(cookieKey(primitives, responderStatic), reply.subarray(COOKIE_NONCE, COOKIE_SEALED), introMac1, reply.subarray(COOKIE_SEALED, COOKIE_BYTES));
}
