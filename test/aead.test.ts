// The core's ChaCha20-Poly1305 against RFC 8439's test vector and against node:crypto (OpenSSL) on
// random inputs of every length a packet can have: seal, open, and refusal of any flipped bit.
import { createCipheriv, createDecipheriv } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Arena } from "../src/memory/arena.ts";
import { PacketAead } from "../src/wire/packet-aead.ts";
import { AEAD_SCRATCH_BYTES, DATA_HEADER_BYTES } from "../src/wire/constants.ts";

const arena = Arena.create({ bytes: 1 << 20, frameBytes: 2048 });
const aead = new PacketAead(arena);

/** What OpenSSL makes of the same packet: header, ciphertext, tag. */
function reference(key: Uint8Array, header: Uint8Array, plaintext: Uint8Array): Buffer {
  const nonce = Buffer.concat([Buffer.alloc(4), header.subarray(5, 13)]);
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  cipher.setAAD(header, { plaintextLength: plaintext.length });
  return Buffer.concat([header, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

describe("ChaCha20-Poly1305 in the core", () => {
  it("matches RFC 8439 §2.8.2's tag and ciphertext (through OpenSSL for the packet form)", () => {
    // The RFC's vector, run through the core's primitive with its own nonce and AAD.
    const { bytes, core } = arena;
    const frame = core.allocFrame() + 8;
    const at = frame + AEAD_SCRATCH_BYTES; // the scratch is [frame, at)
    const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
    const nonce = Uint8Array.from([0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47]);
    const aad = Uint8Array.from([0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7]);
    const text = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    bytes.set(key, at);
    bytes.set(nonce, at + 32);
    bytes.set(aad, at + 48);
    bytes.set(text, at + 80);
    core.aeadSeal(at, at + 32, at + 48, aad.length, at + 80, text.length, at + 280, frame);
    expect(Buffer.from(bytes.subarray(at + 280, at + 296)).toString("hex")).toBe("1ae10b594f09e26a7e902ecbd0600691");
    expect(Buffer.from(bytes.subarray(at + 80, at + 96)).toString("hex")).toBe("d31a8d34648e60db7b86afbc53ef7ec2");
    expect(core.aeadOpen(at, at + 32, at + 48, aad.length, at + 80, text.length, at + 280, frame)).toBe(1);
    expect(new TextDecoder().decode(bytes.subarray(at + 80, at + 80 + text.length))).toBe(new TextDecoder().decode(text));
    core.freeFrame(frame - 8);
  });

  it("seals and opens as OpenSSL does for every text length to 300 and some long ones, under aad of 0 to 33 bytes, and refuses a flipped bit", () => {
    // The core's primitive directly: Poly1305 takes its blocks two at a time, so the parities of the
    // aad's and the text's block counts, and each padded tail, are each a case of their own.
    const { bytes, core } = arena;
    const frame = core.allocFrame() + 8;
    const at = frame + AEAD_SCRATCH_BYTES;
    const [keyAt, nonceAt, aadAt, textAt] = [at, at + 32, at + 48, at + 96];
    const lengths = [...Array.from({ length: 301 }, (_, i) => i), 511, 512, 513, 1023, 1024, 1171, 1400];
    const [random] = fc.sample(fc.uint8Array({ minLength: 32 + 12 + 33 + 1400, maxLength: 32 + 12 + 33 + 1400 }), { seed: 0x9013, numRuns: 1 });
    const key = random!.subarray(0, 32);
    const nonce = random!.subarray(32, 44);
    let checked = 0;
    for (const aadLength of [0, 1, 12, 13, 16, 17, 32, 33]) {
      const aad = random!.subarray(44, 44 + aadLength);
      for (const length of lengths) {
        const plaintext = random!.subarray(77, 77 + length);
        const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
        cipher.setAAD(aad, { plaintextLength: length });
        const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
        bytes.set(key, keyAt);
        bytes.set(nonce, nonceAt);
        bytes.set(aad, aadAt);
        bytes.set(plaintext, textAt);
        core.aeadSeal(keyAt, nonceAt, aadAt, aadLength, textAt, length, textAt + length, frame);
        const sealed = Buffer.from(bytes.subarray(textAt, textAt + length + 16));
        expect(sealed.equals(expected), `seal, aad ${aadLength} B, text ${length} B`).toBe(true);
        // OpenSSL opens ours, and ours opens it.
        const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
        decipher.setAAD(aad, { plaintextLength: length });
        decipher.setAuthTag(sealed.subarray(length));
        expect(Buffer.concat([decipher.update(sealed.subarray(0, length)), decipher.final()]).equals(plaintext)).toBe(true);
        expect(core.aeadOpen(keyAt, nonceAt, aadAt, aadLength, textAt, length, textAt + length, frame), `open, aad ${aadLength} B, text ${length} B`).toBe(1);
        expect(Buffer.from(bytes.subarray(textAt, textAt + length)).equals(plaintext)).toBe(true);
        // One bit flipped in the aad, the ciphertext or the tag: refused, and left undecrypted.
        bytes.set(sealed, textAt);
        const bit = (length * 131 + aadLength * 17) % ((aadLength + length + 16) * 8);
        const flipAt = bit < aadLength * 8 ? aadAt + (bit >> 3) : textAt + (bit >> 3) - aadLength;
        bytes[flipAt]! ^= 1 << (bit & 7);
        expect(core.aeadOpen(keyAt, nonceAt, aadAt, aadLength, textAt, length, textAt + length, frame), `tampered, aad ${aadLength} B, text ${length} B`).toBe(0);
        bytes[flipAt]! ^= 1 << (bit & 7);
        expect(Buffer.from(bytes.subarray(textAt, textAt + length + 16)).equals(sealed)).toBe(true);
        checked++;
      }
    }
    core.freeFrame(frame - 8);
    expect(checked).toBe(8 * 308);
  });

  it("seals exactly as OpenSSL does, for every plaintext length, and opens its own packets", () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.double({ min: 0, max: 2 ** 53 - 1, noNaN: true }), fc.uint8Array({ minLength: 1, maxLength: 1171 }),
      (key, phase, connection, packetNumber, plaintext) => {
        const number = Math.floor(packetNumber);
        const sealed = aead.seal(key, phase, connection, number, [plaintext.subarray(0, 7), plaintext.subarray(7)]);
        expect(Buffer.from(sealed).equals(reference(key, sealed.subarray(0, DATA_HEADER_BYTES), plaintext))).toBe(true);
        expect(Buffer.from(aead.open(key, sealed)!).equals(Buffer.from(plaintext))).toBe(true);
      },
    ), { seed: 0xc4ac4a, numRuns: 300 });
  });

  it("refuses a packet with any bit flipped, or under another key, and leaves it undecrypted", () => {
    const random = fc.sample(fc.uint8Array({ minLength: 32, maxLength: 32 }), { seed: 7, numRuns: 2 });
    const [key, otherKey] = random as [Uint8Array, Uint8Array];
    const sealed = aead.seal(key, 0, 9, 12345, [new TextEncoder().encode("a packet of ours")]);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const damaged = Buffer.from(sealed);
      damaged[bit >> 3]! ^= 1 << (bit & 7);
      expect(aead.open(key, damaged)).toBeUndefined();
    }
    expect(aead.open(otherKey, sealed)).toBeUndefined();
  });
});
