// The handshake's symmetric cryptography, computed by the WebAssembly core on one scratch frame of the
// transport's arena: BLAKE2s (assembly/blake2s.ts), HMAC-BLAKE2s over it, and ChaCha20-Poly1305
// (assembly/aead.ts). The MACs run for every handshake datagram a stranger sends, before anything else
// is spent on it. Measured here (Node 20): a keyed MAC over an intro ~1 µs, where node:crypto's HMAC
// costs ~10 µs, its HKDF ~60 µs and an AES-GCM seal ~9 µs, each mostly object set-up.
// One per transport (one thread), like the Framer. Frame layout after the frame's header:
//   [0, 96) BLAKE2s scratch   [96, 544) AEAD scratch   [544, 576) key   [576, 608) digest
//   [608, 620) nonce   [640, 640 + AAD_ROOM) associated data   [MESSAGE_AT, + MESSAGE_ROOM) message
import { internalAssertion, poolExhausted } from "../errors/errors.ts";
import type { Arena } from "../memory/arena.ts";
import { FRAME_DATA } from "../memory/core.ts";
import { AEAD_SCRATCH_BYTES } from "../wire/constants.ts";

const AEAD_SCRATCH_AT = 96;
const KEY_AT = AEAD_SCRATCH_AT + AEAD_SCRATCH_BYTES;
const DIGEST_AT = KEY_AT + 32;
const NONCE_AT = DIGEST_AT + 32;
const AAD_AT = NONCE_AT + 32;
/** Associated data: a Noise transcript hash (32 bytes) or a mac1 (16). */
const AAD_ROOM = 32;
const MESSAGE_AT = AAD_AT + 64;
/** The longest message the frame holds (handshake packets are at most 146 bytes; HMAC adds a 64-byte block). */
const MESSAGE_ROOM = 1024;
const BLAKE2S_MAX_BYTES = 32;
const HMAC_BLOCK_BYTES = 64;
const TAG_BYTES = 16;
const NO_KEY = new Uint8Array(0);

/** A MAC key with its block already compressed (prepareMac): each message then costs a block less. */
export interface PreparedMac {
  /** The BLAKE2s chaining value after the key's block. */
  readonly state: Uint8Array;
  readonly digestLength: number;
}

export class CoreCrypto {
  readonly #arena: Arena;
  readonly #frame: number;
  readonly #base: number;

  constructor(arena: Arena) {
    const frame = arena.core.allocFrame();
    if (frame === 0) throw poolExhausted("the scratch frame of handshake cryptography", CoreCrypto);
    this.#arena = arena;
    this.#frame = frame;
    this.#base = frame + FRAME_DATA;
  }

  /** Keyed BLAKE2s of the concatenation of `parts`, `length` bytes of digest (unkeyed when `key` is empty). */
  digest(key: Uint8Array, message: Uint8Array | readonly Uint8Array[], length: number): Uint8Array {
    return this.#copyOut(this.#digestInPlace(key, message, length), length);
  }

  /** Whether `mac` equals the keyed BLAKE2s of `message`, compared in constant time (in place: no copy). */
  verify(key: Uint8Array, message: Uint8Array, mac: Uint8Array): boolean {
    const at = this.#digestInPlace(key, message, mac.length);
    const { bytes } = this.#arena;
    let difference = 0;
    for (let i = 0; i < mac.length; i++) difference |= bytes[at + i]! ^ mac[i]!;
    return difference === 0;
  }

  /** `key` (1 to 32 bytes) made ready for many MACs of `digestLength` bytes (mac1: one key per transport). */
  prepareMac(key: Uint8Array, digestLength: number): PreparedMac {
    const { bytes, core } = this.#arena;
    const base = this.#base;
    if (key.length < 1 || key.length > BLAKE2S_MAX_BYTES) throw internalAssertion("a prepared MAC takes a key of 1 to 32 bytes");
    bytes.set(key, base + KEY_AT);
    core.blake2sKeyState(base + DIGEST_AT, digestLength, base + KEY_AT, key.length, false, base);
    return { state: this.#copyOut(base + DIGEST_AT, BLAKE2S_MAX_BYTES), digestLength };
  }

  /**
   * Whether `mac` is the prepared MAC of `message`, compared in constant time. A message that lies in
   * the arena already (the listener's landing frame) is read where it is: no copy.
   */
  verifyPrepared(prepared: PreparedMac, message: Uint8Array, mac: Uint8Array): boolean {
    const { bytes, core } = this.#arena;
    const base = this.#base;
    let at = message.byteOffset;
    if (message.buffer !== bytes.buffer) {
      if (message.length > MESSAGE_ROOM) return false;
      bytes.set(message, base + MESSAGE_AT);
      at = base + MESSAGE_AT;
    }
    bytes.set(prepared.state, base + KEY_AT);
    core.blake2sWithState(base + DIGEST_AT, prepared.digestLength, base + KEY_AT, true, at, message.length, base);
    let difference = mac.length ^ prepared.digestLength;
    for (let i = 0; i < mac.length; i++) difference |= bytes[base + DIGEST_AT + i]! ^ mac[i]!;
    return difference === 0;
  }

  /** HASH of Noise_*_BLAKE2s: unkeyed BLAKE2s-256 of the concatenation of `parts`. */
  hash(parts: readonly Uint8Array[]): Uint8Array {
    return this.digest(NO_KEY, parts, BLAKE2S_MAX_BYTES);
  }

  /** HMAC-BLAKE2s (RFC 2104, 64-byte block) of the concatenation of `parts`: Noise's HMAC. */
  hmac(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
    const padded = new Uint8Array(HMAC_BLOCK_BYTES);
    padded.set(key.length > HMAC_BLOCK_BYTES ? this.hash([key]) : key);
    const inner = padded.map((byte) => byte ^ 0x36);
    const outer = padded.map((byte) => byte ^ 0x5c);
    return this.hash([outer, this.hash([inner, ...parts])]);
  }

  /** ChaCha20-Poly1305 of `plaintext` under (key, nonce) with `aad`: ciphertext ‖ tag. */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const { bytes, core } = this.#arena;
    const base = this.#base;
    this.#load(key, nonce, aad);
    bytes.set(plaintext, base + MESSAGE_AT);
    const tag = base + MESSAGE_AT + plaintext.length;
    core.aeadSeal(base + KEY_AT, base + NONCE_AT, base + AAD_AT, aad.length, base + MESSAGE_AT, plaintext.length, tag, base + AEAD_SCRATCH_AT);
    return this.#copyOut(base + MESSAGE_AT, plaintext.length + TAG_BYTES);
  }

  /** The plaintext of ciphertext ‖ tag, or undefined if it does not authenticate. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    const { bytes, core } = this.#arena;
    const base = this.#base;
    if (sealed.length < TAG_BYTES) return undefined;
    this.#load(key, nonce, aad);
    bytes.set(sealed, base + MESSAGE_AT);
    const length = sealed.length - TAG_BYTES;
    const opened = core.aeadOpen(base + KEY_AT, base + NONCE_AT, base + AAD_AT, aad.length, base + MESSAGE_AT, length, base + MESSAGE_AT + length, base + AEAD_SCRATCH_AT);
    return opened === 0 ? undefined : this.#copyOut(base + MESSAGE_AT, length);
  }

  dispose(): void {
    this.#arena.core.freeFrame(this.#frame);
  }

  #load(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array): void {
    const { bytes } = this.#arena;
    if (key.length !== 32 || nonce.length !== 12 || aad.length > AAD_ROOM) throw internalAssertion(`a seal takes a 32-byte key, a 12-byte nonce and at most ${AAD_ROOM} bytes of associated data`);
    bytes.set(key, this.#base + KEY_AT);
    bytes.set(nonce, this.#base + NONCE_AT);
    bytes.set(aad, this.#base + AAD_AT);
  }

  /** BLAKE2s into the digest slot; answers where the digest is. */
  #digestInPlace(key: Uint8Array, message: Uint8Array | readonly Uint8Array[], length: number): number {
    const { bytes, core } = this.#arena;
    const base = this.#base;
    let messageLength = 0;
    for (const part of message instanceof Uint8Array ? [message] : message) {
      if (messageLength + part.length > MESSAGE_ROOM) throw internalAssertion(`BLAKE2s here takes at most ${MESSAGE_ROOM} bytes`);
      bytes.set(part, base + MESSAGE_AT + messageLength);
      messageLength += part.length;
    }
    if (key.length > BLAKE2S_MAX_BYTES || length < 1 || length > BLAKE2S_MAX_BYTES) throw internalAssertion("BLAKE2s takes a key of at most 32 bytes and a digest of 1 to 32 bytes");
    bytes.set(key, base + KEY_AT);
    core.blake2s(base + DIGEST_AT, length, base + KEY_AT, key.length, base + MESSAGE_AT, messageLength, base);
    return base + DIGEST_AT;
  }

  /** A copy out of the shared memory (slice() of a SharedArrayBuffer copies byte by byte: ~3 µs). */
  #copyOut(at: number, length: number): Uint8Array {
    const copy = new Uint8Array(length);
    copy.set(this.#arena.bytes.subarray(at, at + length));
    return copy;
  }
}
