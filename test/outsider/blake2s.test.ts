// BLAKE2s against vectors from Python's hashlib.blake2s (CPython's reference implementation).
import { expect, test } from "vitest";
import { blake2s } from "./blake2s.ts";

const range = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// python3 -c "import hashlib; print(hashlib.blake2s(msg, key=key, digest_size=n).hexdigest())"
const vectors: [Uint8Array, Uint8Array, number, string][] = [
  [ascii(""), ascii(""), 32, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9"],
  [ascii("abc"), ascii(""), 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"],
  [ascii("abc"), ascii("k".repeat(32)), 16, "da5b50d8f2073c6d2bc49dc3f556bde3"],
  [range(200), range(32), 16, "42a6f8ff590af21b512e9e088257aa34"],
  [range(64), range(16), 16, "dd55c51c98f8ab96ed272882941f0b6a"],
  [range(65), ascii("key"), 32, "3e403b03055a04256f04180371148a2dc75ee916e0b629667c00357ae2b6b3d9"],
  [ascii("x".repeat(146)), new Uint8Array(32).fill(1), 16, "2523b2e75125f596ed27fb6ed7f2aba3"],
];

test.each(vectors.map((v, i) => [i, ...v] as const))("vector %i matches hashlib", (_, message, key, n, expected) => {
  expect(hex(blake2s(message, key, n))).toBe(expected);
});

test("unkeyed 32-byte BLAKE2s equals node:crypto's blake2s256", async () => {
  const { createHash } = await import("node:crypto");
  for (const length of [0, 1, 63, 64, 65, 128, 129, 1000]) {
    const message = range(length);
    expect(hex(blake2s(message))).toBe(createHash("blake2s256").update(message).digest("hex"));
  }
});
