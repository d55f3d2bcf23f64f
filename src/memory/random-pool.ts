// Random bytes carved from a pool refilled 4 KiB at a time (crypto.getRandomValues, the platform's
// CSPRNG, so a pooled byte is as good as a fresh one). One getRandomValues call costs ~8-20 µs on the
// 2-vCPU machines we measure on, whatever its length; a connection's setup drew four (its id, its
// channel's nonce, its handshake's cookie nonce) and a COOKIE reply under a flood of intros one: from
// the pool each costs ~0.1 µs. Module state: one pool per thread.

const RANDOM_POOL_BYTES = 4096;
const pool = new Uint8Array(RANDOM_POOL_BYTES);
let used = RANDOM_POOL_BYTES;
const word = new DataView(pool.buffer);

function take(length: number): number {
  if (used + length > RANDOM_POOL_BYTES) {
    crypto.getRandomValues(pool);
    used = 0;
  }
  const at = used;
  used += length;
  return at;
}

/** `length` random bytes, a copy of the caller's own. */
export function randomBytes(length: number): Uint8Array {
  if (length > RANDOM_POOL_BYTES) return crypto.getRandomValues(new Uint8Array(length));
  const at = take(length);
  return pool.slice(at, at + length);
}

/** A random 32-bit unsigned integer. */
export function randomUint32(): number {
  return word.getUint32(take(4), true);
}
