// Copies the library keeps for itself (what send() and a stream's write() were given, sealed packets
// on their way to the socket, opened plaintexts on their way into a Session), carved from 64 KiB
// slabs shared by the thread, as Node's Buffer pool does. Measured on Node 20 for 1200 bytes:
// new Uint8Array(1200) + set costs ~3.3 µs (every array over 64 bytes gets its own off-heap backing
// store); a view into a slab + set ~0.33 µs. Nothing else ever writes a slab region once carved.
// These slabs hold every connection's plaintext, so no copy made here is ever handed to the
// application: what it receives comes from memory/delivery-slab.ts.

/** Slab size: small enough that one long-lived packet pins little, large enough to amortise. */
const COPY_SLAB_BYTES = 64 * 1024;
/** Packets larger than this get an exact allocation of their own. */
const LARGEST_SLAB_COPY = COPY_SLAB_BYTES / 8;

let slab = new ArrayBuffer(COPY_SLAB_BYTES);
let used = 0;

export function ownedCopy(source: Uint8Array, offset: number, length: number): Uint8Array {
  const copy = ownedBytes(length, (source.byteOffset + offset) & 7);
  copy.set(source.subarray(offset, offset + length));
  return copy;
}

/**
 * `length` bytes of the caller's own (contents unspecified), from a slab when small, at `alignment`
 * bytes past an 8-byte boundary: the copy's source's own alignment. V8 copies out of shared memory
 * (the arena) with relaxed atomics, word by word only between addresses aligned alike and byte by
 * byte otherwise (~5 instructions a byte); slabs are 8-byte aligned, as the arena is.
 */
function ownedBytes(length: number, alignment: number): Uint8Array {
  if (length > LARGEST_SLAB_COPY) return new Uint8Array(length);
  if (used + alignment + length > COPY_SLAB_BYTES) {
    slab = new ArrayBuffer(COPY_SLAB_BYTES);
    used = 0;
  }
  const bytes = new Uint8Array(slab, used + alignment, length);
  used += (alignment + length + 7) & ~7;
  return bytes;
}
