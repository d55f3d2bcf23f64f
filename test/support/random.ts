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

/**
 * Checks one pattern packet [id u32 LE, seq u32 LE, patternByte()...] at bytes[offset, offset + length):
 * its producer's next sequence number (then advances it) and every byte. Throws on the first mismatch.
 */
export function checkPatternPacket(bytes: Uint8Array, offset: number, length: number, nextSeq: number[]): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length);
  const id = view.getUint32(0, true);
  const seq = view.getUint32(4, true);
  if (seq !== nextSeq[id]) throw new Error(`producer ${id}: expected packet ${nextSeq[id]}, got ${seq}`);
  nextSeq[id]!++;
  for (let i = 8; i < length; i++) {
    if (bytes[offset + i] !== patternByte(id, seq, i)) throw new Error(`producer ${id} packet ${seq}: byte ${i} is wrong`);
  }
}
