// One lane: a bounded single-producer single-consumer ring of 4-byte frame descriptors.
//
// Indices are free-running u32 counters (LN_TAIL, LN_HEAD); length = tail − head with wrapping
// arithmetic, so no slot is wasted and capacity is exact for any N ≥ 1: the ring has a power-of-two
// number of slots ≥ N (so `index & mask` stays right across the 2^32 wrap) and the full test is
// `length >= capacity`, not "no slot left".
//
// Committing and publishing are separate (as io_uring separates filling entries from the tail
// store): commit() writes the frame and descriptor and advances the producer-private LN_WRITTEN;
// publish() makes everything committed visible with one sequentially consistent store of LN_TAIL and
// checks whether the receiver sleeps. That store is a full fence on x86 (xchg): once per packet, it
// exposed one cross-core cache miss per packet (the frame line the consumer last read), and commit
// took 55% of the producer's time; once per batch the misses overlap. Capacity is exact either way:
// reserve() counts committed packets, published or not.
//
// Every function here is O(1) and wait-free: one or two atomic accesses, no loop over another
// thread's progress, no compare-and-swap retry. Each side keeps a cached copy of the other side's
// index on its own line and refreshes it only when the lane looks full (producer) or empty
// (consumer), so in steady state a push touches only producer-owned memory and the packet frame.
import {
  AR_CONTROL_FRAMES, AR_FREE_COUNT, AR_QUEUE_RESERVE, AR_SHARED_GUARD, CH_RECV_CLOSED, CH_SLEEPING, SLEEP_PARKED, SLEEP_WAKING, FRAME_LENGTH, LN_CACHED_HEAD, LN_CACHED_TAIL, LN_CAPACITY, LN_CHANNEL,
  LN_CLOSED_REFUSED, LN_FULL, LN_HEAD, LN_POOL_EMPTY, LN_RECEIVED, LN_SEGMENTS, LN_SENT,
  LN_SLOT_MASK, LN_SLOT_MASK_P, LN_SPACE_SEQ, LN_SPACE_WAITING, LN_TAIL, LN_WRITTEN, RESERVE_CLOSED, RESERVE_FULL,
  RESERVE_POOL_EMPTY,
} from "./layout";
import { allocFrame, freeFrame, segmentShift } from "./pool";

@inline function bump64(address: u32): void {
  store<u64>(address, load<u64>(address) + 1); // single writer: the owning side
}

// Address of the descriptor for free-running index `index`; `maskAt` is the caller's side's copy of
// the slot mask (LN_SLOT_MASK_P or LN_SLOT_MASK), so neither side reads the other's line for it.
@inline function slotAddress(lane: u32, index: u32, maskAt: u32): u32 {
  const slot = index & load<u32>(lane + maskAt);
  const segment = load<u32>(lane + LN_SEGMENTS + ((slot >> segmentShift) << 2));
  return segment + ((slot & ((1 << segmentShift) - 1)) << 2);
}

// ---------------------------------------------------------------- producer side

// Reserves room for one packet: a frame from the pool, if the lane has space and the receiver is
// open. Answers the frame's byte offset, or RESERVE_FULL / RESERVE_CLOSED / RESERVE_POOL_EMPTY.
// May see a stale LN_HEAD (then it re-reads once); never a stale CH_RECV_CLOSED for long, since the
// receiver's store is atomic.
export function reserve(lane: u32): i32 {
  const refused = admit(lane);
  if (refused != 0) return refused;
  const frame = allocFrame();
  if (frame == 0) {
    bump64(lane + LN_POOL_EMPTY);
    return RESERVE_POOL_EMPTY;
  }
  return <i32>frame;
}

// Whether the lane takes one more packet: 0, or RESERVE_CLOSED / RESERVE_FULL / RESERVE_POOL_EMPTY
// (counted): past its reserve, a lane takes a frame only from the shared part of the pool.
@inline function admit(lane: u32): i32 {
  if (atomic.load<u32>(load<u32>(lane + LN_CHANNEL) + CH_RECV_CLOSED) != 0) {
    bump64(lane + LN_CLOSED_REFUSED);
    return RESERVE_CLOSED;
  }
  const written = load<u32>(lane + LN_WRITTEN);
  const capacity = load<u32>(lane + LN_CAPACITY);
  if (written - load<u32>(lane + LN_CACHED_HEAD) >= capacity) {
    const head = atomic.load<u32>(lane + LN_HEAD);
    store<u32>(lane + LN_CACHED_HEAD, head);
    if (written - head >= capacity) {
      bump64(lane + LN_FULL);
      return RESERVE_FULL;
    }
  }
  const reserve = load<u32>(AR_QUEUE_RESERVE);
  if (reserve != 0 && written - load<u32>(lane + LN_CACHED_HEAD) >= reserve && !sharedRoom(lane, written, reserve)) {
    bump64(lane + LN_POOL_EMPTY);
    return RESERVE_POOL_EMPTY;
  }
  return 0;
}

// A lane at or past its reserve (by its cached head) may take one more frame: it has fallen back
// under the reserve (its head re-read), or the pool has frames beyond every reserve still owed. The
// count of free frames leaves out those in thread caches (at most 64 a thread), so the rule errs
// towards refusing.
function sharedRoom(lane: u32, written: u32, reserve: u32): bool {
  const head = atomic.load<u32>(lane + LN_HEAD);
  store<u32>(lane + LN_CACHED_HEAD, head);
  if (written - head < reserve) return true;
  const owed = <i32>load<u32>(AR_SHARED_GUARD) - <i32>atomic.load<u32>(AR_CONTROL_FRAMES);
  return atomic.load<i32>(AR_FREE_COUNT) > owed;
}

// reserve() and commit() for a frame the producer filled before it knew the lane (the listener
// copies a datagram in to parse it, then hands that same frame over: one copy, not two). Answers
// what commit() answers, or RESERVE_CLOSED / RESERVE_FULL, and then the frame stays the caller's.
export function handOver(lane: u32, frame: u32, length: u32): i32 {
  const refused = admit(lane);
  if (refused != 0) return refused;
  return <i32>commit(lane, frame, length);
}

// Commits a reserved frame holding `length` bytes, not yet visible to the consumer. Answers how many
// committed packets await publish(), or i32.MAX_VALUE when the receiver is parked.
export function commit(lane: u32, frame: u32, length: u32): u32 {
  store<u32>(frame + FRAME_LENGTH, length);
  const written = load<u32>(lane + LN_WRITTEN);
  store<u32>(slotAddress(lane, written, LN_SLOT_MASK_P), frame);
  store<u32>(lane + LN_WRITTEN, written + 1);
  bump64(lane + LN_SENT);
  // A parked receiver wants this packet now, not at the end of the burst: ask for a publish. (A plain
  // read, only a hint; publish() does the fenced check that decides about the wake.)
  if (atomic.load<u32>(load<u32>(lane + LN_CHANNEL) + CH_SLEEPING) == SLEEP_PARKED) return <u32>i32.MAX_VALUE;
  return written + 1 - load<u32>(lane + LN_TAIL);
}

// Makes every committed packet visible. Answers 1 when the receiver is parked and this call claimed
// the duty to wake it (the host wakes it: a local promise or an atomic notify), else 0.
export function publish(lane: u32): u32 {
  const written = load<u32>(lane + LN_WRITTEN);
  if (written == load<u32>(lane + LN_TAIL)) return 0;
  atomic.store<u32>(lane + LN_TAIL, written); // release: frames and descriptors before the index
  // Sequentially consistent load after the store above: with the receiver's store of CH_SLEEPING
  // followed by its re-read of LN_TAIL, at least one side sees the other (docs/ring.md, "wake-up").
  const sleeping = load<u32>(lane + LN_CHANNEL) + CH_SLEEPING;
  if (atomic.load<u32>(sleeping) != SLEEP_PARKED) return 0;
  // One waker per park: the first producer to see the flag turns it to SLEEP_WAKING; the others,
  // on any lane, see that and skip the notify (~µs with a waiter queued).
  return <u32>(atomic.cmpxchg<u32>(sleeping, SLEEP_PARKED, SLEEP_WAKING) == SLEEP_PARKED);
}

// Producer parking, step 1: flag the wait, then answer the sequence value to wait on. The caller
// re-checks hasSpace() before waiting.
export function prepareSpaceWait(lane: u32): u32 {
  atomic.store<u32>(lane + LN_SPACE_WAITING, 1);
  return atomic.load<u32>(lane + LN_SPACE_SEQ);
}

export function endSpaceWait(lane: u32): void {
  atomic.store<u32>(lane + LN_SPACE_WAITING, 0);
}

// 1 when a push would not meet a full lane (it may still meet an empty pool or a closed receiver).
export function hasSpace(lane: u32): u32 {
  const head = atomic.load<u32>(lane + LN_HEAD);
  store<u32>(lane + LN_CACHED_HEAD, head);
  return <u32>(load<u32>(lane + LN_WRITTEN) - head < load<u32>(lane + LN_CAPACITY));
}

// ---------------------------------------------------------------- consumer side

// Packets ready on this lane, as far as the caller needs to know: the cached copy of the producer's
// index answers when it already shows `wanted` packets (a one-packet tryRecv in a busy stream never
// touches the producer's line); otherwise LN_TAIL is re-read, once per batch for a drain.
export function available(lane: u32, wanted: u32): u32 {
  const head = load<u32>(lane + LN_HEAD);
  const cached = load<u32>(lane + LN_CACHED_TAIL) - head;
  if (cached >= wanted && cached != 0) return cached;
  const tail = atomic.load<u32>(lane + LN_TAIL); // acquire: pairs with publish()'s store
  store<u32>(lane + LN_CACHED_TAIL, tail);
  return tail - head;
}

// Byte offset of the frame `ahead` packets past the head. Valid for ahead < available().
export function peekFrame(lane: u32, ahead: u32): u32 {
  return load<u32>(slotAddress(lane, load<u32>(lane + LN_HEAD) + ahead, LN_SLOT_MASK));
}

// Consumes `count` packets: frees their frames and publishes the new head once for the whole batch.
// Answers 1 when a sender is parked waiting for space (the host wakes it), else 0.
export function release(lane: u32, count: u32): u32 {
  const head = load<u32>(lane + LN_HEAD);
  for (let i: u32 = 0; i < count; i++) freeFrame(load<u32>(slotAddress(lane, head + i, LN_SLOT_MASK)));
  atomic.store<u32>(lane + LN_HEAD, head + count); // the frames are free before the slots are
  store<u64>(lane + LN_RECEIVED, load<u64>(lane + LN_RECEIVED) + <u64>count);
  return atomic.load<u32>(lane + LN_SPACE_WAITING);
}

export function notifySpace(lane: u32): void {
  atomic.add<u32>(lane + LN_SPACE_SEQ, 1);
  atomic.notify(lane + LN_SPACE_SEQ, -1);
}
