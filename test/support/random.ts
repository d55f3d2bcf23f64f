// mulberry32: a small seeded PRNG, so every randomised test replays exactly from its seed.
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The byte at `index` of packet (`id`, `seq`): both ends compute it, so content is checked exactly. */
export function patternByte(id: number, seq: number, index: number): number {
  return (id * 131 + seq * 31 + index * 7) & 255;
}
