// BLAKE2s (RFC 7693), keyed or not, on bytes in the shared memory: the MACs a responder checks
// before it spends anything on a stranger (the handshake's mac1 and mac2, and the cookie that proves a
// source address, as WireGuard does). It runs in the listener for every handshake datagram, so it is
// here rather than in node:crypto (which has no keyed BLAKE2s, and whose HMAC costs an object per call).
// Pure: the state lives in the scratch the host lends; no table in static data (each round's message
// schedule is one 64-bit constant of sixteen 4-bit indices).
//
// The four rows of the 4 × 4 working matrix are four SIMD vectors, so each half-round mixes the
// four columns (then the four diagonals) at once.

import { rotl16, rotl24, rotlLanes } from "./rotate";

/** Scratch bytes the host lends each call: [0, 64) a padded block, [64, 96) the chaining value. */
export const BLAKE2S_SCRATCH_BYTES: u32 = 96;
/** Longest digest and longest key, in bytes. */
export const BLAKE2S_MAX_BYTES: u32 = 32;
const BLOCK_BYTES: u32 = 64;
const STATE_AT: usize = 64;

// The IV (the first 32 bits of the fractional parts of the square roots of the first eight primes).
const IV0: u32 = 0x6a09e667;
const IV1: u32 = 0xbb67ae85;
const IV2: u32 = 0x3c6ef372;
const IV3: u32 = 0xa54ff53a;
const IV4: u32 = 0x510e527f;
const IV5: u32 = 0x9b05688c;
const IV6: u32 = 0x1f83d9ab;
const IV7: u32 = 0x5be0cd19;

/** RFC 7693 §2.7's permutation of round `round`: index i of the message word is nibble i. */
@inline function schedule(round: i32): u64 {
  switch (round) {
    case 0: return 0xfedcba9876543210;
    case 1: return 0x357b20c16df984ae;
    case 2: return 0x491763eadf250c8b;
    case 3: return 0x8f04a562ebcd1397;
    case 4: return 0xd386cb1efa427509;
    case 5: return 0x91ef57d438b0a6c2;
    case 6: return 0xb8293670a4def15c;
    case 7: return 0xa2684f05931ce7bd;
    case 8: return 0x5a417d2c803b9ef6;
    default: return 0x0dc3e9bf5167482a;
  }
}

/** Message words s[first], s[first + 2], s[first + 4], s[first + 6] of the block at `block`. */
@inline function gather(block: usize, s: u64, first: u32): v128 {
  let x = i32x4.splat(load<u32>(block + ((<usize>(s >> (4 * first)) & 15) << 2)));
  x = i32x4.replace_lane(x, 1, load<u32>(block + ((<usize>(s >> (4 * (first + 2))) & 15) << 2)));
  x = i32x4.replace_lane(x, 2, load<u32>(block + ((<usize>(s >> (4 * (first + 4))) & 15) << 2)));
  return i32x4.replace_lane(x, 3, load<u32>(block + ((<usize>(s >> (4 * (first + 6))) & 15) << 2)));
}

/** The compression function F (RFC 7693 §3.2) on the block at `block`; the chaining value is at state. */
function compress(state: usize, block: usize, counter: u64, last: bool): void {
  const h0 = v128.load(state);
  const h1 = v128.load(state, 16);
  let a = h0;
  let b = h1;
  let c = i32x4(IV0, IV1, IV2, IV3);
  let d = i32x4.replace_lane(i32x4.splat(0), 0, <i32>counter);
  d = i32x4.replace_lane(d, 1, <i32>(counter >> 32));
  d = i32x4.replace_lane(d, 2, last ? -1 : 0);
  d = v128.xor(i32x4(IV4, IV5, IV6, IV7), d);
  for (let round = 0; round < 10; round++) {
    const s = schedule(round);
    // Columns G(v0, v4, v8, v12) … G(v3, v7, v11, v15), then the diagonals: rows b, c and d turned
    // left by one, two and three lanes make the diagonals columns; they are turned back after.
    for (let half: u32 = 0; half < 2; half++) {
      a = i32x4.add(i32x4.add(a, b), gather(block, s, 8 * half));
      d = rotl16(v128.xor(d, a));
      c = i32x4.add(c, d);
      b = rotlLanes(v128.xor(b, c), 20); // right by 12
      a = i32x4.add(i32x4.add(a, b), gather(block, s, 8 * half + 1));
      d = rotl24(v128.xor(d, a)); // right by 8
      c = i32x4.add(c, d);
      b = rotlLanes(v128.xor(b, c), 25); // right by 7
      if (half == 0) {
        b = v128.shuffle<i32>(b, b, 1, 2, 3, 0);
        c = v128.shuffle<i32>(c, c, 2, 3, 0, 1);
        d = v128.shuffle<i32>(d, d, 3, 0, 1, 2);
      } else {
        b = v128.shuffle<i32>(b, b, 3, 0, 1, 2);
        c = v128.shuffle<i32>(c, c, 2, 3, 0, 1);
        d = v128.shuffle<i32>(d, d, 1, 2, 3, 0);
      }
    }
  }
  v128.store(state, v128.xor(h0, v128.xor(a, c)));
  v128.store(state, v128.xor(h1, v128.xor(b, d)), 16);
}

/** The last, zero-padded block: the `length` bytes at `from` (0 ≤ length ≤ 64) copied into the scratch. */
function compressLast(scratch: usize, from: usize, length: u32, counter: u64): void {
  memory.fill(scratch, 0, BLOCK_BYTES);
  memory.copy(scratch, from, length);
  compress(scratch + STATE_AT, scratch, counter, true);
}

/**
 * BLAKE2s of message[0, messageLength) into out[0, outLength) (1 ≤ outLength ≤ 32), keyed with
 * key[0, keyLength) (0 ≤ keyLength ≤ 32; 0 is the unkeyed hash). The host checks the lengths.
 */
export function blake2s(out: usize, outLength: u32, key: usize, keyLength: u32, message: usize, messageLength: u32, scratch: usize): void {
  blake2sKeyState(scratch + STATE_AT, outLength, key, keyLength, messageLength == 0, scratch);
  if (keyLength > 0 && messageLength == 0) memory.copy(out, scratch + STATE_AT, outLength);
  else blake2sWithState(out, outLength, scratch + STATE_AT, keyLength > 0, message, messageLength, scratch);
}

/**
 * The chaining value (32 bytes, into `state`) of a BLAKE2s with this digest length and key, once the
 * key's block is compressed: a MAC key used for every datagram (mac1) is prepared once, and each
 * datagram then costs a block less (blake2sWithState). `last`: the message is empty, so the key's
 * block is the last one.
 */
export function blake2sKeyState(state: usize, outLength: u32, key: usize, keyLength: u32, last: bool, scratch: usize): void {
  v128.store(state, v128.xor(i32x4(IV0, IV1, IV2, IV3), i32x4.replace_lane(i32x4.splat(0), 0, <i32>(0x01010000 ^ (keyLength << 8) ^ outLength))));
  v128.store(state, i32x4(IV4, IV5, IV6, IV7), 16);
  if (keyLength == 0) return;
  // The key, zero-padded, is the first block.
  memory.fill(scratch, 0, BLOCK_BYTES);
  memory.copy(scratch, key, keyLength);
  compress(state, scratch, BLOCK_BYTES, last);
}

/**
 * BLAKE2s of message[0, messageLength) (≥ 1 byte when `keyed`) into out[0, outLength), from a
 * chaining value blake2sKeyState made (`keyed`: a key block was compressed into it). `state` is read,
 * not changed.
 */
export function blake2sWithState(out: usize, outLength: u32, state: usize, keyed: bool, message: usize, messageLength: u32, scratch: usize): void {
  const working = scratch + STATE_AT;
  if (working != state) memory.copy(working, state, 32);
  let counter: u64 = keyed ? BLOCK_BYTES : 0;
  let at = message;
  let remaining = messageLength;
  while (remaining > BLOCK_BYTES) {
    counter += BLOCK_BYTES;
    compress(working, at, counter, false);
    at += BLOCK_BYTES;
    remaining -= BLOCK_BYTES;
  }
  compressLast(scratch, at, remaining, counter + remaining);
  memory.copy(out, working, outLength);
}
