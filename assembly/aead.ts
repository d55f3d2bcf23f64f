// ChaCha20-Poly1305 (RFC 8439), the AEAD of data packets, on bytes in the shared memory: queued
// datagrams are opened where they lie and packets are sealed in a scratch frame, so a packet costs no
// allocation and no call into the host's crypto (node:crypto spends ~4 µs creating a cipher context
// per packet, docs/benchmarks.md). Pure functions: the state lives in locals and in the scratch the
// host lends; the host passes every pointer (a key, a nonce, AEAD_SCRATCH_BYTES of scratch). No
// branch or memory index depends on secret data.
// ChaCha20 runs four blocks at once in SIMD lanes (block counter + lane): measured on the 2-core VM,
// a 1171-byte seal went from 3.6 µs (one block at a time) to 2.4 µs, an open to 2.2 µs.
// Poly1305 runs two blocks at once, one in each 64-bit SIMD lane (poly1305Aead). Measured on that
// packet, paired with the one-block-at-a-time form in one process: Poly1305 alone 0.95 → 0.82 µs on
// the quiet VM (1.4–1.9 → 1.0–1.1 µs while other processes shared the cores); seal and open, 9 runs,
// medians 3.59 → 3.01 µs and 3.65 → 3.07 µs, 0.12–0.13 µs faster in the quiet runs (2.34 → 2.22 µs),
// ~0.6 µs faster loaded, but 0.05–0.65 µs slower in the 2 most loaded runs (4.4–5.0 µs), where the
// vector units seem to be what is shared. Not more: Node 20's V8 makes each i64x2.extmul two unpacks
// and a pmuludq, so a block pair's 25 limb products take 75 vector instructions and the loop is bound
// by the vector ports, as the scalar form was by the one 64-bit multiplier.

import { rotl16, rotl8, rotlLanes } from "./rotate";

/** RFC 8439 §2.8: a 32-byte key, a 12-byte nonce, a 16-byte tag. */
export const AEAD_KEY_BYTES: u32 = 32;
export const AEAD_NONCE_BYTES: u32 = 12;
export const AEAD_TAG_BYTES: u32 = 16;
/**
 * Scratch bytes the host lends each call: [0, 256) four keystream blocks, [256, 288) the Poly1305
 * key, [288, 304) the expected tag, [304, 448) Poly1305's multipliers. During Poly1305, [0, 64)
 * holds the padded MAC blocks: keystream block 0 is spent by then (its first 32 bytes, the key, were
 * copied out; the text's keystream starts at block 1, and an open still needs blocks 1 to 3).
 */
export const AEAD_SCRATCH_BYTES: u32 = 448;
const POLY_KEY_AT: usize = 256;
const EXPECTED_TAG_AT: usize = 288;
const MULTIPLIERS_AT: usize = 304;

/** Writes the keystream of blocks counter .. counter + 3 (RFC 8439 §2.3), 256 bytes, to `out`. */
function chacha20Blocks4(key: usize, nonce: usize, counter: u32, out: usize): void {
  const y0 = i32x4.splat(0x61707865);
  const y1 = i32x4.splat(0x3320646e);
  const y2 = i32x4.splat(0x79622d32);
  const y3 = i32x4.splat(0x6b206574);
  const y4 = i32x4.splat(load<u32>(key, 0));
  const y5 = i32x4.splat(load<u32>(key, 4));
  const y6 = i32x4.splat(load<u32>(key, 8));
  const y7 = i32x4.splat(load<u32>(key, 12));
  const y8 = i32x4.splat(load<u32>(key, 16));
  const y9 = i32x4.splat(load<u32>(key, 20));
  const y10 = i32x4.splat(load<u32>(key, 24));
  const y11 = i32x4.splat(load<u32>(key, 28));
  const y12 = i32x4.add(i32x4.splat(counter), i32x4(0, 1, 2, 3));
  const y13 = i32x4.splat(load<u32>(nonce, 0));
  const y14 = i32x4.splat(load<u32>(nonce, 4));
  const y15 = i32x4.splat(load<u32>(nonce, 8));
  let x0 = y0;
  let x1 = y1;
  let x2 = y2;
  let x3 = y3;
  let x4 = y4;
  let x5 = y5;
  let x6 = y6;
  let x7 = y7;
  let x8 = y8;
  let x9 = y9;
  let x10 = y10;
  let x11 = y11;
  let x12 = y12;
  let x13 = y13;
  let x14 = y14;
  let x15 = y15;
  for (let round = 0; round < 10; round++) {
    x0 = i32x4.add(x0, x4); x12 = v128.xor(x12, x0); x12 = rotl16(x12);
    x8 = i32x4.add(x8, x12); x4 = v128.xor(x4, x8); x4 = rotlLanes(x4, 12);
    x0 = i32x4.add(x0, x4); x12 = v128.xor(x12, x0); x12 = rotl8(x12);
    x8 = i32x4.add(x8, x12); x4 = v128.xor(x4, x8); x4 = rotlLanes(x4, 7);
    x1 = i32x4.add(x1, x5); x13 = v128.xor(x13, x1); x13 = rotl16(x13);
    x9 = i32x4.add(x9, x13); x5 = v128.xor(x5, x9); x5 = rotlLanes(x5, 12);
    x1 = i32x4.add(x1, x5); x13 = v128.xor(x13, x1); x13 = rotl8(x13);
    x9 = i32x4.add(x9, x13); x5 = v128.xor(x5, x9); x5 = rotlLanes(x5, 7);
    x2 = i32x4.add(x2, x6); x14 = v128.xor(x14, x2); x14 = rotl16(x14);
    x10 = i32x4.add(x10, x14); x6 = v128.xor(x6, x10); x6 = rotlLanes(x6, 12);
    x2 = i32x4.add(x2, x6); x14 = v128.xor(x14, x2); x14 = rotl8(x14);
    x10 = i32x4.add(x10, x14); x6 = v128.xor(x6, x10); x6 = rotlLanes(x6, 7);
    x3 = i32x4.add(x3, x7); x15 = v128.xor(x15, x3); x15 = rotl16(x15);
    x11 = i32x4.add(x11, x15); x7 = v128.xor(x7, x11); x7 = rotlLanes(x7, 12);
    x3 = i32x4.add(x3, x7); x15 = v128.xor(x15, x3); x15 = rotl8(x15);
    x11 = i32x4.add(x11, x15); x7 = v128.xor(x7, x11); x7 = rotlLanes(x7, 7);
    x0 = i32x4.add(x0, x5); x15 = v128.xor(x15, x0); x15 = rotl16(x15);
    x10 = i32x4.add(x10, x15); x5 = v128.xor(x5, x10); x5 = rotlLanes(x5, 12);
    x0 = i32x4.add(x0, x5); x15 = v128.xor(x15, x0); x15 = rotl8(x15);
    x10 = i32x4.add(x10, x15); x5 = v128.xor(x5, x10); x5 = rotlLanes(x5, 7);
    x1 = i32x4.add(x1, x6); x12 = v128.xor(x12, x1); x12 = rotl16(x12);
    x11 = i32x4.add(x11, x12); x6 = v128.xor(x6, x11); x6 = rotlLanes(x6, 12);
    x1 = i32x4.add(x1, x6); x12 = v128.xor(x12, x1); x12 = rotl8(x12);
    x11 = i32x4.add(x11, x12); x6 = v128.xor(x6, x11); x6 = rotlLanes(x6, 7);
    x2 = i32x4.add(x2, x7); x13 = v128.xor(x13, x2); x13 = rotl16(x13);
    x8 = i32x4.add(x8, x13); x7 = v128.xor(x7, x8); x7 = rotlLanes(x7, 12);
    x2 = i32x4.add(x2, x7); x13 = v128.xor(x13, x2); x13 = rotl8(x13);
    x8 = i32x4.add(x8, x13); x7 = v128.xor(x7, x8); x7 = rotlLanes(x7, 7);
    x3 = i32x4.add(x3, x4); x14 = v128.xor(x14, x3); x14 = rotl16(x14);
    x9 = i32x4.add(x9, x14); x4 = v128.xor(x4, x9); x4 = rotlLanes(x4, 12);
    x3 = i32x4.add(x3, x4); x14 = v128.xor(x14, x3); x14 = rotl8(x14);
    x9 = i32x4.add(x9, x14); x4 = v128.xor(x4, x9); x4 = rotlLanes(x4, 7);
  }
  x0 = i32x4.add(x0, y0);
  x1 = i32x4.add(x1, y1);
  x2 = i32x4.add(x2, y2);
  x3 = i32x4.add(x3, y3);
  x4 = i32x4.add(x4, y4);
  x5 = i32x4.add(x5, y5);
  x6 = i32x4.add(x6, y6);
  x7 = i32x4.add(x7, y7);
  x8 = i32x4.add(x8, y8);
  x9 = i32x4.add(x9, y9);
  x10 = i32x4.add(x10, y10);
  x11 = i32x4.add(x11, y11);
  x12 = i32x4.add(x12, y12);
  x13 = i32x4.add(x13, y13);
  x14 = i32x4.add(x14, y14);
  x15 = i32x4.add(x15, y15);
  // Lane j of x_i is word i of block j: each group of four words is a 4 × 4 transpose.
  storeWords(x0, x1, x2, x3, out);
  storeWords(x4, x5, x6, x7, out + 16);
  storeWords(x8, x9, x10, x11, out + 32);
  storeWords(x12, x13, x14, x15, out + 48);
}

/** Four words of four blocks (a: word w of blocks 0..3, b: word w + 1...) to each block's place at `at` + 64 × block. */
@inline function storeWords(a: v128, b: v128, c: v128, d: v128, at: usize): void {
  const ab01 = v128.shuffle<i32>(a, b, 0, 4, 1, 5);
  const cd01 = v128.shuffle<i32>(c, d, 0, 4, 1, 5);
  const ab23 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const cd23 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  v128.store(at, v128.shuffle<i64>(ab01, cd01, 0, 2), 0);
  v128.store(at, v128.shuffle<i64>(ab01, cd01, 1, 3), 64);
  v128.store(at, v128.shuffle<i64>(ab23, cd23, 0, 2), 128);
  v128.store(at, v128.shuffle<i64>(ab23, cd23, 1, 3), 192);
}

/** XORs `length` bytes at `data` with `keystream`, 16 bytes at a time, then the rest. */
function xorInto(data: usize, keystream: usize, length: usize): void {
  let i: usize = 0;
  for (; i + 16 <= length; i += 16) v128.store(data + i, v128.xor(v128.load(data + i), v128.load(keystream + i)));
  for (; i < length; i++) store<u8>(data + i, load<u8>(data + i) ^ load<u8>(keystream + i));
}

/**
 * Blocks 0..3 into scratch[0, 256), and block 0's first 32 bytes, the Poly1305 key (§2.6), to
 * scratch[256, 288). Blocks 1..3 stay for cipher() to use on the first 192 bytes.
 */
function prepare(key: usize, nonce: usize, scratch: usize): usize {
  chacha20Blocks4(key, nonce, 0, scratch);
  memory.copy(scratch + POLY_KEY_AT, scratch, 32);
  return scratch + POLY_KEY_AT;
}

/** XORs text with the keystream from block 1 (§2.8); prepare() must have run, with scratch untouched since. */
function cipher(key: usize, nonce: usize, text: usize, length: usize, scratch: usize): void {
  const first = length < 192 ? length : 192;
  xorInto(text, scratch + 64, first);
  let counter: u32 = 4;
  for (let offset = first; offset < length; offset += 256, counter += 4) {
    chacha20Blocks4(key, nonce, counter, scratch);
    xorInto(text + offset, scratch, length - offset < 256 ? length - offset : 256);
  }
}

/** During Poly1305, over keystream block 0 (spent: its first 32 bytes, the Poly1305 key, were copied out). */
const PAD_AAD_AT: usize = 0;
const PAD_TEXT_AT: usize = 16;
const LENGTHS_AT: usize = 32;
const ZERO_BLOCK_AT: usize = 48;
const LIMB_MASK: u64 = 0x3ffffff;
/** 2^128 in 26-bit limbs: the bit Poly1305 appends to every 16-byte block (§2.5.1), in limb 4. */
const BLOCK_BIT: u64 = 1 << 24;

/**
 * Block `index` of the AEAD's MAC input (§2.8): the aad's full blocks, its padded tail, the
 * ciphertext's full blocks, its padded tail, the lengths. Branches on the lengths only (public).
 */
@inline function macBlock(index: usize, aad: usize, aadFull: usize, aadBlocks: usize, text: usize, textFull: usize, textBlocks: usize, scratch: usize): usize {
  if (index < aadFull) return aad + (index << 4);
  if (index < aadBlocks) return scratch + PAD_AAD_AT;
  const inText = index - aadBlocks;
  if (inText < textFull) return text + (inText << 4);
  if (inText < textBlocks) return scratch + PAD_TEXT_AT;
  return scratch + LENGTHS_AT;
}

/**
 * One limb of the product of h (two lanes) and a multiplier: h0·x0 + h1·x1 + h2·x2 + h3·x3 + h4·x4,
 * each x in both halves of its lanes. The shuffles put each pair of limbs in the 32-bit lanes extmul
 * reads ([h0a, h0b, h1a, h1b], ...); the five calls of one product share them once inlined.
 */
@inline function limbProduct(h0: v128, h1: v128, h2: v128, h3: v128, h4: v128, x0: v128, x1: v128, x2: v128, x3: v128, x4: v128): v128 {
  const h01 = v128.shuffle<i32>(h0, h1, 0, 2, 4, 6);
  const h23 = v128.shuffle<i32>(h2, h3, 0, 2, 4, 6);
  const h44 = v128.shuffle<i32>(h4, h4, 0, 2, 0, 2);
  return i64x2.add(
    i64x2.add(i64x2.extmul_low_i32x4_u(h01, x0), i64x2.extmul_high_i32x4_u(h01, x1)),
    i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h23, x2), i64x2.extmul_high_i32x4_u(h23, x3)), i64x2.extmul_low_i32x4_u(h44, x4)),
  );
}

/**
 * Nine vectors at `at`: lane a's multiplier a0..a4 and lane b's b0..b4, then 5·a1, 5·b1 .. 5·a4,
 * 5·b4 (2^130 ≡ 5 mod p), each limb in one 32-bit half of the 64-bit lane as extmul reads them
 * (lanes [a, b, a, b]). Every limb is below 2^26 + 2^8, so five of it fit in 32 bits.
 */
@inline function storeMultipliers(at: usize, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, b0: u64, b1: u64, b2: u64, b3: u64, b4: u64): void {
  v128.store(at, i64x2.splat(a0 | (b0 << 32)), 0);
  v128.store(at, i64x2.splat(a1 | (b1 << 32)), 16);
  v128.store(at, i64x2.splat(a2 | (b2 << 32)), 32);
  v128.store(at, i64x2.splat(a3 | (b3 << 32)), 48);
  v128.store(at, i64x2.splat(a4 | (b4 << 32)), 64);
  v128.store(at, i64x2.splat(a1 * 5 | (b1 * 5 << 32)), 80);
  v128.store(at, i64x2.splat(a2 * 5 | (b2 * 5 << 32)), 96);
  v128.store(at, i64x2.splat(a3 * 5 | (b3 * 5 << 32)), 112);
  v128.store(at, i64x2.splat(a4 * 5 | (b4 * 5 << 32)), 128);
}

/**
 * The Poly1305 tag (RFC 8439 §2.5, 26-bit limbs as in poly1305-donna) of the AEAD's MAC input
 * (§2.8): aad, zero padding to 16, ciphertext, zero padding, the two lengths as 64-bit little-endian.
 * Every block of that input is a full 16-byte block. `polyKey` is 32 bytes; `scratch` the AEAD's.
 *
 * Two blocks per step, one in each 64-bit lane of a SIMD vector (the two-accumulator form of
 * vectorised Poly1305, as in Goll and Gueron's AVX2 code): with h = a·r² + b·r, a block pair
 * (m, m') turns (a, b) into (a·r² + m, b·r² + m'), and the end computes a·r² + b·r once, then adds
 * the lanes. An odd count of blocks starts with a zero block in lane a, which adds nothing.
 * i64x2.extmul_low/high_i32x4_u does two of the 25 limb products per instruction. The multipliers
 * are read from scratch in the loop: kept in locals, V8 (Node 20) re-splatted all nine every step.
 */
function poly1305Aead(polyKey: usize, aad: usize, aadLength: usize, text: usize, textLength: usize, scratch: usize, tag: usize): void {
  const r0: u64 = load<u32>(polyKey, 0) & 0x3ffffff;
  const r1: u64 = (load<u32>(polyKey, 3) >> 2) & 0x3ffff03;
  const r2: u64 = (load<u32>(polyKey, 6) >> 4) & 0x3ffc0ff;
  const r3: u64 = (load<u32>(polyKey, 9) >> 6) & 0x3f03fff;
  const r4: u64 = (load<u32>(polyKey, 12) >> 8) & 0x00fffff;
  // r² mod p, partly reduced: every limb below 2^26 + 2^8, so 5 × a limb still fits in 32 bits.
  let e0 = r0 * r0 + 10 * (r1 * r4 + r2 * r3);
  let e1 = 2 * r0 * r1 + 5 * (2 * r2 * r4 + r3 * r3);
  let e2 = 2 * r0 * r2 + r1 * r1 + 10 * r3 * r4;
  let e3 = 2 * (r0 * r3 + r1 * r2) + 5 * r4 * r4;
  let e4 = 2 * (r0 * r4 + r1 * r3) + r2 * r2;
  let c = e0 >> 26; e0 &= LIMB_MASK;
  e1 += c; c = e1 >> 26; e1 &= LIMB_MASK;
  e2 += c; c = e2 >> 26; e2 &= LIMB_MASK;
  e3 += c; c = e3 >> 26; e3 &= LIMB_MASK;
  e4 += c; c = e4 >> 26; e4 &= LIMB_MASK;
  e0 += c * 5; c = e0 >> 26; e0 &= LIMB_MASK;
  e1 += c;
  const multipliers = scratch + MULTIPLIERS_AT;
  storeMultipliers(multipliers, e0, e1, e2, e3, e4, e0, e1, e2, e3, e4);
  // The MAC input's padded blocks, and a zero block to lead an odd count.
  v128.store(scratch, v128.splat<i64>(0), PAD_AAD_AT);
  v128.store(scratch, v128.splat<i64>(0), PAD_TEXT_AT);
  v128.store(scratch, v128.splat<i64>(0), ZERO_BLOCK_AT);
  memory.copy(scratch + PAD_AAD_AT, aad + (aadLength & ~15), aadLength & 15);
  memory.copy(scratch + PAD_TEXT_AT, text + (textLength & ~15), textLength & 15);
  store<u64>(scratch, <u64>aadLength, LENGTHS_AT);
  store<u64>(scratch, <u64>textLength, LENGTHS_AT + 8);
  const aadFull = aadLength >> 4;
  const aadBlocks = (aadLength + 15) >> 4;
  const textFull = textLength >> 4;
  const textBlocks = (textLength + 15) >> 4;
  const blocks = aadBlocks + textBlocks + 1;
  const limbMask = i64x2.splat(LIMB_MASK);
  let h0 = v128.splat<i64>(0);
  let h1 = h0;
  let h2 = h0;
  let h3 = h0;
  let h4 = h0;
  const odd = (blocks & 1) != 0;
  let next: usize = odd ? 1 : 2;
  let first = odd ? scratch + ZERO_BLOCK_AT : macBlock(0, aad, aadFull, aadBlocks, text, textFull, textBlocks, scratch);
  let second = macBlock(next - 1, aad, aadFull, aadBlocks, text, textFull, textBlocks, scratch);
  let blockBits = odd ? i64x2(0, BLOCK_BIT) : i64x2.splat(BLOCK_BIT);
  while (true) {
    // h += the pair's limbs (lane a: first, lane b: second).
    const a = v128.load(first);
    const b = v128.load(second);
    const low = v128.shuffle<i64>(a, b, 0, 2);
    const high = v128.shuffle<i64>(a, b, 1, 3);
    h0 = i64x2.add(h0, v128.and(low, limbMask));
    h1 = i64x2.add(h1, v128.and(i64x2.shr_u(low, 26), limbMask));
    h2 = i64x2.add(h2, v128.and(v128.or(i64x2.shr_u(low, 52), i64x2.shl(high, 12)), limbMask));
    h3 = i64x2.add(h3, v128.and(i64x2.shr_u(high, 14), limbMask));
    h4 = i64x2.add(h4, v128.or(i64x2.shr_u(high, 40), blockBits));
    // h ×= r² in both lanes (at the end, lane a × r² and lane b × r), then a partial carry in two
    // interleaved chains: every limb ends below 2^26 + 2^9.
    const last = next >= blocks;
    if (last) storeMultipliers(multipliers, e0, e1, e2, e3, e4, r0, r1, r2, r3, r4);
    const m0 = v128.load(multipliers, 0);
    const m1 = v128.load(multipliers, 16);
    const m2 = v128.load(multipliers, 32);
    const m3 = v128.load(multipliers, 48);
    const m4 = v128.load(multipliers, 64);
    const s1 = v128.load(multipliers, 80);
    const s2 = v128.load(multipliers, 96);
    const s3 = v128.load(multipliers, 112);
    const s4 = v128.load(multipliers, 128);
    let d0 = limbProduct(h0, h1, h2, h3, h4, m0, s4, s3, s2, s1);
    let d1 = limbProduct(h0, h1, h2, h3, h4, m1, m0, s4, s3, s2);
    let d2 = limbProduct(h0, h1, h2, h3, h4, m2, m1, m0, s4, s3);
    let d3 = limbProduct(h0, h1, h2, h3, h4, m3, m2, m1, m0, s4);
    let d4 = limbProduct(h0, h1, h2, h3, h4, m4, m3, m2, m1, m0);
    let k = i64x2.shr_u(d0, 26); h0 = v128.and(d0, limbMask); d1 = i64x2.add(d1, k);
    k = i64x2.shr_u(d3, 26); h3 = v128.and(d3, limbMask); d4 = i64x2.add(d4, k);
    k = i64x2.shr_u(d1, 26); h1 = v128.and(d1, limbMask); d2 = i64x2.add(d2, k);
    k = i64x2.shr_u(d4, 26); h4 = v128.and(d4, limbMask); h0 = i64x2.add(h0, i64x2.add(k, i64x2.shl(k, 2)));
    k = i64x2.shr_u(d2, 26); h2 = v128.and(d2, limbMask); h3 = i64x2.add(h3, k);
    k = i64x2.shr_u(h0, 26); h0 = v128.and(h0, limbMask); h1 = i64x2.add(h1, k);
    k = i64x2.shr_u(h3, 26); h3 = v128.and(h3, limbMask); h4 = i64x2.add(h4, k);
    if (last) break;
    const inText = next - aadBlocks;
    if (next >= aadBlocks && inText + 1 < textFull) {
      // Both in the ciphertext's full blocks, as nearly all are.
      first = text + (inText << 4);
      second = first + 16;
    } else {
      first = macBlock(next, aad, aadFull, aadBlocks, text, textFull, textBlocks, scratch);
      second = macBlock(next + 1, aad, aadFull, aadBlocks, text, textFull, textBlocks, scratch);
    }
    blockBits = i64x2.splat(BLOCK_BIT);
    next += 2;
  }
  // h = a·r² + b·r: the lanes added, each limb below 2^27 + 2^10.
  finish(laneSum(h0), laneSum(h1), laneSum(h2), laneSum(h3), laneSum(h4), polyKey, tag);
}

@inline function laneSum(limb: v128): u64 {
  return <u64>i64x2.extract_lane(limb, 0) + <u64>i64x2.extract_lane(limb, 1);
}

/** The tag from h (limbs below 2^27 + 2^10, §2.5): h mod p, then + s mod 2^128, in constant time. */
function finish(h0: u64, h1: u64, h2: u64, h3: u64, h4: u64, polyKey: usize, tag: usize): void {
  // Full carry, then h - p if h ≥ p (selected by mask, not by branch), then + s mod 2^128.
  let c = h1 >> 26; h1 &= 0x3ffffff;
  h2 += c; c = h2 >> 26; h2 &= 0x3ffffff;
  h3 += c; c = h3 >> 26; h3 &= 0x3ffffff;
  h4 += c; c = h4 >> 26; h4 &= 0x3ffffff;
  h0 += c * 5; c = h0 >> 26; h0 &= 0x3ffffff;
  h1 += c;
  let g0 = h0 + 5; c = g0 >> 26; g0 &= 0x3ffffff;
  let g1 = h1 + c; c = g1 >> 26; g1 &= 0x3ffffff;
  let g2 = h2 + c; c = g2 >> 26; g2 &= 0x3ffffff;
  let g3 = h3 + c; c = g3 >> 26; g3 &= 0x3ffffff;
  const g4 = h4 + c - (1 << 26);
  const useG: u64 = (g4 >> 63) - 1; // all ones when h + 5 reached 2^130 (h ≥ p), else zero
  h0 = (h0 & ~useG) | (g0 & useG);
  h1 = (h1 & ~useG) | (g1 & useG);
  h2 = (h2 & ~useG) | (g2 & useG);
  h3 = (h3 & ~useG) | (g3 & useG);
  h4 = (h4 & ~useG) | (g4 & useG & 0x3ffffff);
  // h + s, 32 bits at a time. The limbs are added, not or'ed, into their words: h1 may be 2^26 or
  // 2^26 + 1 here (the carry above ends in it) while h2 is not zero, as the lanes' sum allows.
  let f = h0 + (h1 << 26) + <u64>load<u32>(polyKey, 16);
  store<u32>(tag, <u32>f, 0);
  f = (f >> 32) + (h2 << 20) + <u64>load<u32>(polyKey, 20);
  store<u32>(tag, <u32>f, 4);
  f = (f >> 32) + (h3 << 14) + <u64>load<u32>(polyKey, 24);
  store<u32>(tag, <u32>f, 8);
  f = (f >> 32) + (h4 << 8) + <u64>load<u32>(polyKey, 28);
  store<u32>(tag, <u32>f, 12);
}

/**
 * Seals in place: encrypts text[0, textLength) and writes the 16-byte tag at `tag` (RFC 8439 §2.8,
 * counter 1 onwards). `aad` is authenticated, not encrypted. Every (key, nonce) must be used once.
 */
export function aeadSeal(key: usize, nonce: usize, aad: usize, aadLength: usize, text: usize, textLength: usize, tag: usize, scratch: usize): void {
  const polyKey = prepare(key, nonce, scratch);
  cipher(key, nonce, text, textLength, scratch);
  poly1305Aead(polyKey, aad, aadLength, text, textLength, scratch, tag);
}

/**
 * Opens in place: checks the tag first (in constant time) and decrypts only a packet that
 * authenticates. Answers 1 if it did, 0 if the tag is wrong (the bytes are then untouched).
 */
export function aeadOpen(key: usize, nonce: usize, aad: usize, aadLength: usize, text: usize, textLength: usize, tag: usize, scratch: usize): i32 {
  const polyKey = prepare(key, nonce, scratch);
  const expected = scratch + EXPECTED_TAG_AT;
  poly1305Aead(polyKey, aad, aadLength, text, textLength, scratch, expected);
  const difference = (load<u64>(expected, 0) ^ load<u64>(tag, 0)) | (load<u64>(expected, 8) ^ load<u64>(tag, 8));
  if (difference != 0) return 0;
  cipher(key, nonce, text, textLength, scratch);
  return 1;
}
