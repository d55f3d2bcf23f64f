// The reassembly's bookkeeping against a plain model (one flag per byte): what is contiguous, how many
// gaps there are (the cap counts them), what reads hand out. Tiny blocks, so fragments cross many
// block and bit-word boundaries.
import fc from "fast-check";
import { expect, it } from "vitest";
import { Reassembly } from "../src/reliable/reassembly.ts";

function check(total: number, fragments: Array<[number, number]>, kind: "stream" | "message"): void {
  const reassembly = kind === "stream" ? new Reassembly(8, 64, Infinity) : new Reassembly(160, 160, total);
  const source = Uint8Array.from({ length: total }, (_, i) => (i * 7 + 3) & 255);
  const arrived = new Uint8Array(total);
  const read: number[] = [];
  for (const [at, length] of fragments) {
    const start = Math.min(at, total);
    const end = Math.min(total, start + length);
    reassembly.insert(start, source.subarray(start, end));
    arrived.fill(1, start, end);
    let contiguous = read.length;
    while (contiguous < total && arrived[contiguous]) contiguous++;
    const highest = arrived.lastIndexOf(1) + 1;
    let gaps = 0;
    for (let i = contiguous + 1; i < highest; i++) if (arrived[i] && !arrived[i - 1]) gaps++;
    expect(reassembly.contiguousEnd).toBe(contiguous);
    expect(reassembly.gaps).toBe(gaps);
    expect(reassembly.highestReceived).toBe(Math.max(highest, read.length));
    if (kind === "stream") {
      const piece = new Uint8Array(40);
      for (let length = reassembly.readInto(piece); length > 0; length = reassembly.readInto(piece)) read.push(...piece.subarray(0, length));
      expect(read.length).toBe(contiguous);
    }
  }
  expect(Uint8Array.from(read)).toEqual(source.subarray(0, read.length));
  if (kind === "message" && reassembly.contiguousEnd === total) {
    const whole = new Uint8Array(total);
    reassembly.copyTo(whole);
    expect(whole).toEqual(source);
  }
}

it("agrees with a byte-per-byte model on contiguous bytes, gaps and reads", () => {
  // Small spans make fragments meet end to start often; large ones cross many blocks and bit words.
  for (const span of [40, 700]) {
    const fragments = fc.array(fc.tuple(fc.nat(span), fc.integer({ min: 0, max: span / 4 })), { maxLength: 80 });
    fc.assert(fc.property(fc.integer({ min: 1, max: span }), fc.constantFrom("stream", "message"), fragments, (total, kind, list) => {
      check(total, list, kind as "stream" | "message");
    }), { seed: 11, numRuns: 1000 });
  }
});
