// Data packets' AEAD: ChaCha20-Poly1305 in the WebAssembly core (assembly/aead.ts), on bytes in the
// transport's shared memory. A queued datagram is opened where it lies and its plaintext read there
// (no copy in or out: every frame's consumer copies what it keeps); a packet is sealed in a scratch frame and copied out once (to a slab) for the socket. One per
// transport (one thread), like the Framer; it owns one frame of the arena.
//
// Nonce: 4 zero bytes, then the header's 8-byte little-endian packet number (never reused). AAD: the
// 13-byte data header. Layout of the scratch frame, after the frame's own header:
//   [0, 448) the core's AEAD scratch   [448, 480) key   [480, 492) nonce   [496, 496 + 7 + 1500) packet
// (the packet starts 0 to 7 bytes in, so that its largest part lies aligned as in its own buffer: see #packetFor).
import { poolExhausted } from "../errors/errors.ts";
import { validateBytes, validateInteger } from "../errors/validate.ts";
import type { Arena } from "../memory/arena.ts";
import { FRAME_DATA } from "../memory/core.ts";
import { ownedCopy } from "../memory/owned-copy.ts";
import {
  AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_SCRATCH_BYTES, DATA_HEADER_BYTES, DATA_PACKET_NUMBER, MAX_DATAGRAM_BYTES, TAG_BYTES,
} from "./constants.ts";

const KEY_AT = AEAD_SCRATCH_BYTES;
const NONCE_AT = KEY_AT + AEAD_KEY_BYTES;
const PACKET_AT = Math.ceil((NONCE_AT + AEAD_NONCE_BYTES) / 8) * 8;
/** A data packet's number: 8 bytes, little-endian, at DATA_PACKET_NUMBER of its header. */
const PACKET_NUMBER_BYTES = 8;
/** Where the packet number goes in the nonce: after the zero bytes that fill the rest. */
const NONCE_PACKET_NUMBER_AT = AEAD_NONCE_BYTES - PACKET_NUMBER_BYTES;

export class PacketAead {
  readonly #arena: Arena;
  readonly #frame: number;
  readonly #scratch: number;
  readonly #key: number;
  readonly #nonce: number;
  readonly #packet: number;

  constructor(arena: Arena) {
    validateInteger(arena.frameBytes, "arena.frameBytes", FRAME_DATA + PACKET_AT + 7 + MAX_DATAGRAM_BYTES);
    const frame = arena.core.allocFrame();
    if (frame === 0) throw poolExhausted("the scratch frame of packet encryption", PacketAead);
    this.#arena = arena;
    this.#frame = frame;
    this.#scratch = frame + FRAME_DATA;
    this.#key = this.#scratch + KEY_AT;
    this.#nonce = this.#scratch + NONCE_AT;
    this.#packet = this.#scratch + PACKET_AT;
    arena.bytes.fill(0, this.#nonce, this.#nonce + NONCE_PACKET_NUMBER_AT);
  }

  /**
   * The datagram: a data header for (key phase bit, connection, packet number), the plaintext `parts`
   * sealed under `key` (32 bytes), the tag. `parts` total at most MAX_DATAGRAM_BYTES − 29 (the path MTU's share).
   */
  seal(key: Uint8Array, keyPhase: number, connection: number, packetNumber: number, parts: readonly Uint8Array[]): Uint8Array {
    const { bytes, core } = this.#arena;
    const packet = this.#packetFor(parts);
    core.wireWriteDataHeader(packet, keyPhase, connection, packetNumber % 2 ** 32, Math.floor(packetNumber / 2 ** 32));
    let end = packet + DATA_HEADER_BYTES;
    for (const part of parts) {
      bytes.set(part, end);
      end += part.length;
    }
    this.#prepare(key, packet);
    const textLength = end - packet - DATA_HEADER_BYTES;
    core.aeadSeal(this.#key, this.#nonce, packet, DATA_HEADER_BYTES, packet + DATA_HEADER_BYTES, textLength, end, this.#scratch);
    // A slab copy (nothing writes it again, so the socket may send it later): 180 ns, where
    // Buffer.allocUnsafe and a copy cost 280 ns for 1200 bytes.
    return ownedCopy(bytes, packet, end + TAG_BYTES - packet);
  }

  /**
   * Where the packet starts in the scratch: 0 to 7 bytes in, so that its largest part (a message's or
   * a stream's data) lands at the same address mod 8 as it lies in its own buffer (slabs and the
   * arena are 8-byte aligned). V8 copies into and out of shared memory with relaxed atomics, word by
   * word only between addresses aligned alike and byte by byte otherwise: after the 13-byte header and
   * a 15-byte frame header, a 1 KiB payload went in byte by byte (~5 instructions a byte). The copy
   * out (ownedCopy) keeps the packet's alignment, so it goes word by word too.
   */
  #packetFor(parts: readonly Uint8Array[]): number {
    let at = DATA_HEADER_BYTES;
    let largest = 0;
    let shift = 0;
    for (const part of parts) {
      if (part.length > largest) {
        largest = part.length;
        shift = (part.byteOffset - at) & 7;
      }
      at += part.length;
    }
    return this.#packet + shift;
  }

  /**
   * Opens the data packet bytes[at, at + length) of the arena in place (a frame the caller owns, already
   * classified by the core). The plaintext, as a view of the arena valid only while the caller holds
   * the frame (Session.handlePacket copies what it keeps: reassembly blocks, control bodies, path
   * data); undefined if it does not authenticate. No copy out: it cost a slab carve and ~1.2 KB of
   * garbage per packet (see docs/benchmarks.md, "The delivery path, third pass").
   */
  openInPlace(key: Uint8Array, at: number, length: number): Uint8Array | undefined {
    const { bytes, core } = this.#arena;
    this.#prepare(key, at);
    const textLength = length - DATA_HEADER_BYTES - TAG_BYTES;
    const text = at + DATA_HEADER_BYTES;
    if (core.aeadOpen(this.#key, this.#nonce, at, DATA_HEADER_BYTES, text, textLength, text + textLength, this.#scratch) === 0) return undefined;
    return bytes.subarray(text, text + textLength);
  }

  /**
   * Opens a data packet held outside the arena (the handshake's): copied into the scratch first, and
   * its plaintext copied out (a slab copy: slice() of shared memory costs ~3 µs), as the handshake
   * keeps it until the connection exists and the next seal reuses the scratch.
   */
  open(key: Uint8Array, datagram: Uint8Array): Uint8Array | undefined {
    this.#arena.bytes.set(datagram, this.#packet);
    const plaintext = this.openInPlace(key, this.#packet, datagram.length);
    return plaintext && ownedCopy(plaintext, 0, plaintext.length);
  }

  dispose(): void {
    this.#arena.core.freeFrame(this.#frame);
  }

  /** Key into the scratch; the nonce's packet number from the header at `header`. */
  #prepare(key: Uint8Array, header: number): void {
    validateBytes(key, "key", AEAD_KEY_BYTES);
    const { bytes } = this.#arena;
    bytes.set(key, this.#key);
    const packetNumber = header + DATA_PACKET_NUMBER;
    bytes.copyWithin(this.#nonce + NONCE_PACKET_NUMBER_AT, packetNumber, packetNumber + PACKET_NUMBER_BYTES);
  }
}
