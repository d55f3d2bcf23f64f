// The frame pool: every byte a channel uses (packets, ring segments, channel and lane frames) is one
// fixed-size frame of this pool, so total shared memory is the pool's size, whatever the number of
// channels. Wait-free for any thread:
//  - claim: one atomic xchg takes a whole bitmap word (up to 32 free frames) into the thread's cache;
//  - free: one atomic or sets a frame's bit, one more sets its word's bit in the summary.
// Neither waits for, nor retries because of, another thread.
//
// Claims are first-fit from frame 0, found through the summary (one bit per bitmap word, "may have
// free frames"): at most summaryWords + 32 probes, and recycled frames stay in the low, warm, already
// resident part of the pool. (A per-thread cursor that only moved forward walked the producer through
// all 256 MiB: every frame was a cold page, trySend of 1200 bytes cost 290 ns instead of ~110 ns, and
// the process's resident memory grew to the whole arena.)
import {
  AR_BITMAP, AR_FRAME_COUNT, AR_QUEUE_RESERVE, AR_SHARED_GUARD, AR_ID, AR_MAGIC, ARENA_MAGIC_VALUE, AR_FRAME_SHIFT, AR_FREE_COUNT, AR_POOL_BASE, AR_POOL_SEQ, AR_POOL_WAITERS,
  AR_SUMMARY, CACHE_CAPACITY, CACHE_FLUSH,
} from "./layout";

// Per-instance (so per-thread) state: wasm globals are not shared between instances.
let poolBase: u32 = 0;
let frameShift: u32 = 0;
let summaryBase: u32 = 0;
let summaryWords: u32 = 0;
// log2 of descriptors (4 bytes each) per ring segment frame
export let segmentShift: u32 = 0;
let cache: u32 = 0; //       this thread's cache frame, 0 until attachThread()

export function loadArenaGlobals(): void {
  poolBase = atomic.load<u32>(AR_POOL_BASE);
  frameShift = atomic.load<u32>(AR_FRAME_SHIFT);
  summaryBase = atomic.load<u32>(AR_SUMMARY);
  summaryWords = (atomic.load<u32>(AR_FRAME_COUNT) + 1023) >> 10;
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

// Takes every free frame of the lowest bitmap word that has any: answers (word << 32) | bits, or 0.
function claimWord(): u64 {
  if (atomic.load<i32>(AR_FREE_COUNT) <= 0) return 0; // the pool is empty: O(1) refusal
  for (let s: u32 = 0; s < summaryWords; s++) {
    const summaryAddress = summaryBase + (s << 2);
    let candidates = load<u32>(summaryAddress); // plain read: a hint, the xchg below decides
    while (candidates != 0) {
      const b = ctz<u32>(candidates);
      candidates &= candidates - 1;
      const word = (s << 5) + b;
      // Clear the summary bit before emptying the word: a frame freed into this word after the
      // xchg sets the bit again after its own store, so no free frame is ever hidden.
      atomic.and<u32>(summaryAddress, ~(<u32>1 << b));
      const bits = atomic.xchg<u32>(AR_BITMAP + (word << 2), 0);
      if (bits == 0) continue; // taken by another thread meanwhile
      atomic.sub<i32>(AR_FREE_COUNT, <i32>popcnt<u32>(bits));
      return (<u64>word << 32) | <u64>bits;
    }
  }
  return 0;
}

// Moves one bitmap word's worth of free frames into the cache. Answers how many it moved.
function refill(): u32 {
  const claimed = claimWord();
  let bits = <u32>claimed;
  const word = <u32>(claimed >> 32);
  let count: u32 = 0;
  while (bits != 0) {
    store<u32>(cache + 4 + (count << 2), frameOffset((word << 5) + ctz<u32>(bits)));
    bits &= bits - 1;
    count++;
  }
  store<u32>(cache, count);
  return count;
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

// Sets free bits in one bitmap word and marks the word in the summary.
@inline function releaseBits(word: u32, bits: u32): void {
  atomic.or<u32>(AR_BITMAP + (word << 2), bits);
  atomic.or<u32>(summaryBase + ((word >> 5) << 2), <u32>1 << (word & 31));
}

// Returns cache entries [from, to) to the bitmap, one atomic pair per run of frames that share a
// bitmap word. Frames are claimed a word at a time and mostly freed in the order they were sent, so
// a flush of 32 is usually one or two runs: a consumer thread pays ~2 contended atomics per 32
// frames instead of 2 per frame.
function releaseCached(from: u32, to: u32): void {
  let runWord: u32 = U32.MAX_VALUE;
  let runBits: u32 = 0;
  for (let i = from; i < to; i++) {
    const index = frameIndex(load<u32>(cache + 4 + (i << 2)));
    const word = index >> 5;
    if (word != runWord) {
      if (runBits != 0) releaseBits(runWord, runBits);
      runWord = word;
      runBits = 0;
    }
    runBits |= <u32>1 << (index & 31);
  }
  if (runBits != 0) releaseBits(runWord, runBits);
}

function wakePoolWaiters(): void {
  if (atomic.load<u32>(AR_POOL_WAITERS) != 0) {
    atomic.add<u32>(AR_POOL_SEQ, 1);
    atomic.notify(AR_POOL_SEQ, -1);
  }
}

// Any thread may free any frame. Freed frames stay in this thread's cache (a thread that both
// consumes and produces recycles them with no atomic at all) unless a sender somewhere is parked on
// an empty pool: then they go straight back to the bitmap and the waiter is woken.
export function freeFrame(offset: u32): void {
  let count = load<u32>(cache);
  store<u32>(cache + 4 + (count << 2), offset); // the cache frame has room for CACHE_CAPACITY + 1
  count++;
  if (count <= CACHE_CAPACITY && atomic.load<u32>(AR_POOL_WAITERS) == 0) {
    store<u32>(cache, count);
    return;
  }
  // Overflow, or someone waits for frames: hand back the newest entries (this one included), so the
  // cache stays bounded and frames freed on a consumer-only thread flow back to the producers.
  const keep = count > CACHE_FLUSH ? count - CACHE_FLUSH : 0;
  releaseCached(keep, count);
  store<u32>(cache, keep);
  atomic.add<i32>(AR_FREE_COUNT, <i32>(count - keep));
  wakePoolWaiters();
}

// Returns every cached frame to the bitmap (a thread about to go away, or a test that wants an
// exact count of free frames).
export function flushCache(): void {
  const count = load<u32>(cache);
  releaseCached(0, count);
  store<u32>(cache, 0);
  atomic.add<i32>(AR_FREE_COUNT, <i32>count);
  if (count != 0) wakePoolWaiters();
}

// Called once per thread after loadArenaGlobals(): claims the thread's cache frame (the lowest free
// frame; the rest of its word goes back). Answers the frame, or 0 if the pool is empty.
export function attachThread(): u32 {
  const claimed = claimWord();
  const bits = <u32>claimed;
  if (bits == 0) return 0;
  const word = <u32>(claimed >> 32);
  cache = frameOffset((word << 5) + ctz<u32>(bits));
  store<u32>(cache, 0);
  const rest = bits & (bits - 1);
  if (rest != 0) {
    releaseBits(word, rest);
    atomic.add<i32>(AR_FREE_COUNT, <i32>popcnt<u32>(rest));
  }
  return cache;
}

// Lays out a fresh arena: every frame free. Run once, by the thread that creates the memory, before
// any other thread can see it. The host places the summary after the bitmap and the pool after both.
export function initArena(id: u32, shift: u32, frameCount: u32, base: u32, summary: u32): void {
  store<u32>(AR_ID, id);
  store<u32>(AR_FRAME_SHIFT, shift);
  store<u32>(AR_FRAME_COUNT, frameCount);
  store<u32>(AR_POOL_BASE, base);
  store<u32>(AR_SUMMARY, summary);
  const words = frameCount >> 5;
  memory.fill(AR_BITMAP, 0xff, words << 2);
  memory.fill(summary, 0xff, (words >> 5) << 2);
  if ((words & 31) != 0) store<u32>(summary + ((words >> 5) << 2), (<u32>1 << (words & 31)) - 1);
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

// Turns on the queue reserves rule (lane.ts, admit): every lane may hold `reservePackets` packets
// whatever the others hold; beyond that, it takes frames only while more than `guardFrames` less the
// control frames in use are free. Run once, before any channel exists.
export function reserveQueues(reservePackets: u32, guardFrames: u32): void {
  store<u32>(AR_SHARED_GUARD, guardFrames);
  atomic.store<u32>(AR_QUEUE_RESERVE, reservePackets);
}

export function freeFrameCount(): i32 {
  return atomic.load<i32>(AR_FREE_COUNT);
}
