// Memory handed to the application: received messages and channel packets (a stream's pieces get
// an ArrayBuffer of their own: a byte stream's reader takes each over). Each is the caller's for
// good, and transferring or detaching its `.buffer` (postMessage with a transfer list,
// structuredClone(…, { transfer })) can never break the library nor lose data not yet delivered:
//  - small copies are carved from a slab of the owner's own (one per connection, one per channel
//    receiver), and only at delivery, so everything in a slab was already handed out by that owner:
//    a `.buffer` shows earlier deliveries of the same connection or channel, never another's bytes
//    and never bytes not yet delivered (and a transfer takes those earlier ones along: recv());
//  - a detached slab (byteLength 0) is noticed and replaced before the next carve;
//  - larger copies get an allocation of their own.
// Measured on Node 20: an exact allocation of 1100 B costs ~2 µs (an off-heap backing store per array
// over 64 bytes), a carve from a slab ~0.3 µs.

/**
 * Slab sizes: the first is small, each next one twice the last, up to the largest: an owner that
 * delivers little (a quiet connection, a channel used once) holds 4 KiB, one that delivers a flow
 * reaches 64 KiB slabs within five, where an allocation is spread over ~58 messages of 1.1 KB.
 */
const FIRST_SLAB_BYTES = 4 * 1024;
const LARGEST_SLAB_BYTES = 64 * 1024;
/** Copies larger than this get an allocation of their own (a slab is not worth it, nor the waste). */
const LARGEST_CARVE_BYTES = LARGEST_SLAB_BYTES / 8;

/**
 * Bytes handed to the application (a message, a stream's piece, a channel's packet): a Uint8Array
 * over a plain ArrayBuffer, never shared memory, so Web APIs that take a BufferSource accept it
 * (crypto.subtle.digest, Blob, Response, TextDecoderStream). Uint8Array.of's type: TypeScript 5.7 and
 * later's Uint8Array<ArrayBuffer> (their Uint8Array alone, over any ArrayBufferLike, those APIs refuse),
 * and Uint8Array before 5.7.
 */
export type ReceivedBytes = ReturnType<typeof Uint8Array.of>;

export class DeliverySlab {
  #slab: ArrayBuffer | undefined;
  #used = 0;

  /** Lets go of the slab being carved (the owner is closing): the next copy starts a small one. */
  release(): void {
    this.#slab = undefined;
  }

  /** A copy of source[offset, offset + length) that belongs to the caller. */
  copy(source: Uint8Array, offset: number, length: number): ReceivedBytes {
    const copy = this.#bytes(length);
    copy.set(offset === 0 && length === source.length ? source : source.subarray(offset, offset + length)); // no view made for a whole array
    return copy;
  }

  #bytes(length: number): ReceivedBytes {
    if (length > LARGEST_CARVE_BYTES) return new Uint8Array(length);
    let slab = this.#slab;
    // byteLength 0: the application transferred a piece's buffer, and with it the slab.
    if (slab === undefined || slab.byteLength === 0 || this.#used + length > slab.byteLength) {
      const size = slab === undefined ? FIRST_SLAB_BYTES : Math.min(LARGEST_SLAB_BYTES, 2 * (slab.byteLength || LARGEST_SLAB_BYTES / 2));
      if (length > size) return new Uint8Array(length); // while slabs are still small
      slab = this.#slab = new ArrayBuffer(size);
      this.#used = 0;
    }
    const bytes = new Uint8Array(slab, this.#used, length);
    this.#used += (length + 7) & ~7; // 8-byte aligned: V8 copies aligned runs word by word
    return bytes;
  }
}
