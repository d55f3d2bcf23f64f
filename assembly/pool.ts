// The frame pool: every byte a channel uses (packets, ring segments, channel and lane frames) is one
// fixed-size frame of this pool, so total shared memory is the pool's size, whatever the number of
// channels. Wait-free for any thread:
//  - claim: one atomic xchg takes a whole bitmap word (up to 32 free frames) into the thread's cache;
//  - free: one atomic or sets a frame's bit.
// Neither waits for, nor retries because of, another thread. The scan for a non-empty word is bounded
// by the bitmap's length and starts at a per-thread cursor, so it is O(1) while the pool is not
// nearly exhausted, and it is skipped entirely when AR_FREE_COUNT says the bitmap is empty.
import {
  AR_BITMAP, AR_FRAME_COUNT, AR_ID, AR_MAGIC, ARENA_MAGIC_VALUE, AR_FRAME_SHIFT, AR_FREE_COUNT, AR_POOL_BASE, AR_POOL_SEQ, AR_POOL_WAITERS,
  CACHE_CAPACITY, CACHE_FLUSH,
} from "./layout";

// Per-instance (so per-thread) state: wasm globals are not shared between instances.
let poolBase: u32 = 0;
let frameShift: u32 = 0;
let bitmapWords: u32 = 0;
// log2 of descriptors (4 bytes each) per ring segment frame
export let segmentShift: u32 = 0;
let cache: u32 = 0; //       this thread's cache frame, 0 until attachThread()
let scanCursor: u32 = 0; //  where this thread's next bitmap scan starts

export function loadArenaGlobals(): void {
  poolBase = atomic.load<u32>(AR_POOL_BASE);
  frameShift = atomic.load<u32>(AR_FRAME_SHIFT);
  bitmapWords = atomic.load<u32>(AR_FRAME_COUNT) >> 5;
  segmentShift = frameShift - 2;
}

export function frameBytes(): u32 {
  return 1 << frameShift;
}

@inline function frameOffset(index: u32): u32 {
  return poolBase + (index << frameShift);
}

@inline function frameIndex(offset: u32): u32 {
  return (offset - poolBase) >> frameShift;
}

// Moves one bitmap word's worth of free frames into the cache. Answers how many it moved.
function refill(): u32 {
  if (atomic.load<i32>(AR_FREE_COUNT) <= 0) return 0;
  for (let step: u32 = 0; step < bitmapWords; step++) {
    let word = scanCursor + step;
    if (word >= bitmapWords) word -= bitmapWords;
    const address = AR_BITMAP + (word << 2);
    if (load<u32>(address) == 0) continue; // plain read: only a hint, the xchg below decides
    let bits = atomic.xchg<u32>(address, 0);
    if (bits == 0) continue; // another thread took this word between the two reads
    scanCursor = word;
    const taken = popcnt<u32>(bits);
    atomic.sub<i32>(AR_FREE_COUNT, <i32>taken);
    let count: u32 = 0;
    while (bits != 0) {
      const bit = ctz<u32>(bits);
      bits &= bits - 1;
      store<u32>(cache + 4 + (count << 2), frameOffset((word << 5) + bit));
      count++;
    }
    store<u32>(cache, count);
    return count;
  }
  return 0;
}

// A frame's byte offset, or 0 when the pool has no free frame for this thread.
export function allocFrame(): u32 {
  let count = load<u32>(cache);
  if (count == 0) {
    count = refill();
    if (count == 0) return 0;
  }
  count--;
  store<u32>(cache, count);
  return load<u32>(cache + 4 + (count << 2));
}

function releaseToBitmap(offset: u32): void {
  const index = frameIndex(offset);
  atomic.or<u32>(AR_BITMAP + ((index >> 5) << 2), 1 << (index & 31));
}

// Any thread may free any frame. Freed frames stay in this thread's cache (a thread that both
// consumes and produces recycles them with no atomic at all) unless a sender somewhere is parked on
// an empty pool: then they go straight back to the bitmap and the waiter is woken.
export function freeFrame(offset: u32): void {
  const count = load<u32>(cache);
  if (count < CACHE_CAPACITY && atomic.load<u32>(AR_POOL_WAITERS) == 0) {
    store<u32>(cache + 4 + (count << 2), offset);
    store<u32>(cache, count + 1);
    return;
  }
  releaseToBitmap(offset);
  let released: u32 = 1;
  // Overflow: hand the older half of the cache back too, so the cache stays bounded and frames
  // freed on a consumer-only thread flow back to the producers.
  if (count >= CACHE_CAPACITY) {
    const keep = count - CACHE_FLUSH;
    for (let i: u32 = keep; i < count; i++) releaseToBitmap(load<u32>(cache + 4 + (i << 2)));
    store<u32>(cache, keep);
    released += CACHE_FLUSH;
  }
  atomic.add<i32>(AR_FREE_COUNT, <i32>released);
  if (atomic.load<u32>(AR_POOL_WAITERS) != 0) {
    atomic.add<u32>(AR_POOL_SEQ, 1);
    atomic.notify(AR_POOL_SEQ, -1);
  }
}

// Returns every cached frame to the bitmap (a thread about to go away, or a test that wants an
// exact count of free frames).
export function flushCache(): void {
  const count = load<u32>(cache);
  for (let i: u32 = 0; i < count; i++) releaseToBitmap(load<u32>(cache + 4 + (i << 2)));
  store<u32>(cache, 0);
  atomic.add<i32>(AR_FREE_COUNT, <i32>count);
  if (count != 0 && atomic.load<u32>(AR_POOL_WAITERS) != 0) {
    atomic.add<u32>(AR_POOL_SEQ, 1);
    atomic.notify(AR_POOL_SEQ, -1);
  }
}

// Called once per thread after loadArenaGlobals(): claims the thread's cache frame. The cache frame
// briefly serves as its own scratch: refill() writes into it before it is known, so it claims a word
// into a temporary area first, which is the frame it then keeps.
export function attachThread(): u32 {
  if (atomic.load<i32>(AR_FREE_COUNT) <= 0) return 0;
  for (let step: u32 = 0; step < bitmapWords; step++) {
    const address = AR_BITMAP + (step << 2);
    if (load<u32>(address) == 0) continue;
    const bits = atomic.xchg<u32>(address, 0);
    if (bits == 0) continue;
    const first = ctz<u32>(bits);
    const rest = bits & (bits - 1);
    atomic.sub<i32>(AR_FREE_COUNT, 1);
    if (rest != 0) atomic.or<u32>(address, rest); // give back the frames this call did not need
    cache = frameOffset((step << 5) + first);
    store<u32>(cache, 0);
    scanCursor = step;
    return cache;
  }
  return 0;
}

// Lays out a fresh arena. Run once, by the thread that creates the memory, before any other thread
// can see it.
export function initArena(id: u32, shift: u32, frameCount: u32, base: u32): void {
  store<u32>(AR_ID, id);
  store<u32>(AR_FRAME_SHIFT, shift);
  store<u32>(AR_FRAME_COUNT, frameCount);
  store<u32>(AR_POOL_BASE, base);
  memory.fill(AR_BITMAP, 0xff, frameCount >> 3);
  store<i32>(AR_FREE_COUNT, <i32>frameCount);
  atomic.store<u32>(AR_MAGIC, ARENA_MAGIC_VALUE);
}

// Sender parking on an empty pool, step 1: register as a waiter (so frees go to the bitmap and
// notify), then answer the sequence value to wait on. The caller re-checks freeFrameCount() first.
export function preparePoolWait(): u32 {
  atomic.add<u32>(AR_POOL_WAITERS, 1);
  return atomic.load<u32>(AR_POOL_SEQ);
}

export function endPoolWait(): void {
  atomic.sub<u32>(AR_POOL_WAITERS, 1);
}

export function freeFrameCount(): i32 {
  return atomic.load<i32>(AR_FREE_COUNT);
}
