// A channel: one receiver, up to CH_MAX_LANES lanes (one per sending thread), all in pool frames.
// Creation, lane addition, closing and freeing are not on the per-packet path, but they are still
// wait-free: each is a fixed sequence of atomic steps plus loops bounded by the channel's own size.
import {
  AR_CONTROL_FRAMES, AR_DISCARDED, CH_CAPACITY, CH_LANE_COUNT, CH_LANES, CH_MAX_LANES, CH_NONCE, CH_PARTIES, CH_RECV_CLOSED,
  CH_RECV_TOKEN, CH_SLEEPING, CH_WAKE_SEQ, LN_CAPACITY, LN_CHANNEL, LN_CLAIMED, LN_CLOSED_REFUSED,
  LN_FULL, LN_HEAD, LN_POOL_EMPTY, LN_RECEIVED, LN_SEGMENTS, LN_SENDER_CLOSED, LN_SENT,
  LN_SLOT_MASK, LN_SLOT_MASK_P, LN_SPACE_WAITING, LN_TAIL, LN_WRITTEN, SLEEP_AWAKE, SLEEP_PARKED, STATE_EMPTY, STATE_ENDED, STATE_READY,
} from "./layout";
import { available, notifySpace, release } from "./lane";
import { allocFrame, frameBytes, freeFrame, segmentShift } from "./pool";

@inline function laneAt(channel: u32, index: u32): u32 {
  return atomic.load<u32>(channel + CH_LANES + (index << 2));
}

@inline function laneCount(channel: u32): u32 {
  return min<u32>(atomic.load<u32>(channel + CH_LANE_COUNT), load<u32>(channel + CH_MAX_LANES));
}

@inline function segmentsFor(capacity: u32): u32 {
  const slots: u32 = capacity <= 1 ? 1 : <u32>1 << (32 - clz<u32>(capacity - 1));
  return max<u32>(1, slots >> segmentShift);
}

function freeLane(lane: u32): void {
  const segments = segmentsFor(load<u32>(lane + LN_CAPACITY));
  for (let i: u32 = 0; i < segments; i++) freeFrame(load<u32>(lane + LN_SEGMENTS + (i << 2)));
  freeFrame(lane);
  atomic.sub<u32>(AR_CONTROL_FRAMES, segments + 1);
}

// A new lane frame with its ring segments, not yet attached to a channel; 0 if the pool is short.
function buildLane(channel: u32, claimed: u32): u32 {
  const capacity = load<u32>(channel + CH_CAPACITY);
  const lane = allocFrame();
  if (lane == 0) return 0;
  memory.fill(lane, 0, frameBytes());
  const segments = segmentsFor(capacity);
  for (let i: u32 = 0; i < segments; i++) {
    const segment = allocFrame();
    if (segment == 0) {
      for (let j: u32 = 0; j < i; j++) freeFrame(load<u32>(lane + LN_SEGMENTS + (j << 2)));
      freeFrame(lane);
      return 0;
    }
    store<u32>(lane + LN_SEGMENTS + (i << 2), segment);
  }
  store<u32>(lane + LN_CHANNEL, channel);
  store<u32>(lane + LN_CAPACITY, capacity);
  store<u32>(lane + LN_SLOT_MASK, (segments << segmentShift) - 1);
  store<u32>(lane + LN_SLOT_MASK_P, (segments << segmentShift) - 1);
  store<u32>(lane + LN_CLAIMED, claimed);
  atomic.add<u32>(AR_CONTROL_FRAMES, segments + 1); // what the queue reserves rule owes no longer (lane.ts)
  return lane;
}

// Largest capacity whose segment table fits in one lane frame.
export function maxCapacity(): u32 {
  return ((frameBytes() - LN_SEGMENTS) >> 2) << segmentShift;
}

// Largest lane count whose table fits in one channel frame.
export function maxLanes(): u32 {
  return (frameBytes() - CH_LANES) >> 2;
}

// A new channel with its first lane; answers the channel frame's offset, or 0 if the pool is short.
// The host has validated capacity (1..maxCapacity()) and lanes (1..maxLanes()).
export function createChannel(capacity: u32, lanes: u32, nonce: u32): u32 {
  const channel = allocFrame();
  if (channel == 0) return 0;
  memory.fill(channel, 0, frameBytes());
  store<u32>(channel + CH_CAPACITY, capacity);
  store<u32>(channel + CH_MAX_LANES, lanes);
  const lane = buildLane(channel, 1);
  if (lane == 0) {
    freeFrame(channel);
    return 0;
  }
  store<u32>(channel + CH_LANES, lane);
  atomic.add<u32>(AR_CONTROL_FRAMES, 1);
  store<u32>(channel + CH_LANE_COUNT, 1);
  store<u32>(channel + CH_PARTIES, 2); // lane 0 and the receiver
  atomic.store<u32>(channel + CH_NONCE, nonce);
  return channel;
}

// Adds an unclaimed lane for a sender handle. The caller holds an open lane of this channel, so the
// channel cannot be freed meanwhile. Answers the lane offset, 0 if the pool is short, or 1 if the
// channel already has its maximum number of lanes.
export function addLane(channel: u32): u32 {
  const lane = buildLane(channel, 0);
  if (lane == 0) return 0;
  const index = atomic.add<u32>(channel + CH_LANE_COUNT, 1);
  if (index >= load<u32>(channel + CH_MAX_LANES)) {
    atomic.sub<u32>(channel + CH_LANE_COUNT, 1);
    freeLane(lane);
    return 1;
  }
  atomic.add<u32>(channel + CH_PARTIES, 1);
  atomic.store<u32>(channel + CH_LANES + (index << 2), lane); // publish last: the receiver skips 0
  return lane;
}

// One attempt (never a retry loop) to claim an unclaimed lane; 1 on success.
export function claimLane(lane: u32): u32 {
  return <u32>(atomic.cmpxchg<u32>(lane + LN_CLAIMED, 0, 1) == 0);
}

// 1 if `lane` is one of `channel`'s published lanes (validates a handle).
export function hasLane(channel: u32, lane: u32): u32 {
  const count = laneCount(channel);
  for (let i: u32 = 0; i < count; i++) if (laneAt(channel, i) == lane) return 1;
  return 0;
}

export function laneOf(channel: u32, index: u32): u32 {
  return index < laneCount(channel) ? laneAt(channel, index) : 0;
}

export function lanesOf(channel: u32): u32 {
  return laneCount(channel);
}

export function nonceOf(channel: u32): u32 {
  return atomic.load<u32>(channel + CH_NONCE);
}

export function capacityOf(channel: u32): u32 {
  return load<u32>(channel + CH_CAPACITY);
}

// Frees everything the channel owns, queued packets included. Run by whichever party leaves last.
function freeChannel(channel: u32): void {
  const count = laneCount(channel);
  for (let i: u32 = 0; i < count; i++) {
    const lane = laneAt(channel, i);
    if (lane == 0) continue;
    const unread = available(lane, U32.MAX_VALUE);
    if (unread != 0) atomic.add<u32>(AR_DISCARDED, unread); // counted, never silent
    release(lane, unread);
    freeLane(lane);
  }
  atomic.store<u32>(channel + CH_NONCE, 0);
  freeFrame(channel);
  atomic.sub<u32>(AR_CONTROL_FRAMES, 1);
}

// A party (a lane or the receiver) leaves; the last one frees the channel. Answers 1 if it did.
function leave(channel: u32): u32 {
  if (atomic.sub<u32>(channel + CH_PARTIES, 1) != 1) return 0;
  freeChannel(channel);
  return 1;
}

// Every sender on the lane is closed. Wakes a parked receiver (before leaving: once this lane has
// left, the channel may be freed by another thread at any moment). Answers 2 if this freed the
// channel, 1 if the receiver was parked (the host also resolves a same-thread waiter), else 0.
export function closeLane(lane: u32): u32 {
  const channel = load<u32>(lane + LN_CHANNEL);
  atomic.store<u32>(lane + LN_TAIL, load<u32>(lane + LN_WRITTEN)); // publish what is committed
  atomic.store<u32>(lane + LN_SENDER_CLOSED, 1);
  const sleeping: u32 = atomic.load<u32>(channel + CH_SLEEPING) != SLEEP_AWAKE ? 1 : 0;
  if (sleeping) notifyReceiver(channel);
  return leave(channel) ? 2 : sleeping;
}

// receiver.close(): no more packets are accepted; queued ones stay receivable. Wakes every sender
// parked for space so that its send() answers 'closed'.
export function closeReceiver(channel: u32): void {
  atomic.store<u32>(channel + CH_RECV_CLOSED, 1);
  const count = laneCount(channel);
  for (let i: u32 = 0; i < count; i++) {
    const lane = laneAt(channel, i);
    if (lane != 0 && atomic.load<u32>(lane + LN_SPACE_WAITING) != 0) notifySpace(lane);
  }
}

// The receiver is done with the channel (drained to the end, or discarded). Answers 1 if this freed it.
export function leaveReceiver(channel: u32): u32 {
  return leave(channel);
}

export function discardedCount(): u32 {
  return atomic.load<u32>(AR_DISCARDED);
}

export function isReceiverClosed(channel: u32): u32 {
  return atomic.load<u32>(channel + CH_RECV_CLOSED);
}

// STATE_READY, STATE_EMPTY or STATE_ENDED. Reads each lane's closed flag before its tail, so a
// lane seen closed and empty really is finished. A lane claimed but not yet published counts as
// open. Bounded by the number of lanes.
export function channelState(channel: u32): i32 {
  const receiverClosed = atomic.load<u32>(channel + CH_RECV_CLOSED) != 0;
  const count = laneCount(channel);
  let anyOpen = false;
  for (let i: u32 = 0; i < count; i++) {
    const lane = laneAt(channel, i);
    if (lane == 0) {
      anyOpen = true;
      continue;
    }
    const closed = atomic.load<u32>(lane + LN_SENDER_CLOSED) != 0;
    if (available(lane, 1) != 0) return STATE_READY;
    if (closed) continue;
    // A closed receiver still waits for packets committed but not yet published (the producer
    // publishes at the end of its current task at the latest), as tokio waits for outstanding permits.
    if (!receiverClosed || atomic.load<u32>(lane + LN_WRITTEN) != atomic.load<u32>(lane + LN_TAIL)) anyOpen = true;
  }
  return anyOpen ? STATE_EMPTY : STATE_ENDED;
}

// Receiver parking, step 1: flag the sleep and answer the sequence value to wait on. The caller then
// re-checks channelState() and waits only if it is still STATE_EMPTY.
export function prepareSleep(channel: u32): u32 {
  atomic.store<u32>(channel + CH_SLEEPING, SLEEP_PARKED);
  return atomic.load<u32>(channel + CH_WAKE_SEQ);
}

export function endSleep(channel: u32): void {
  atomic.store<u32>(channel + CH_SLEEPING, SLEEP_AWAKE);
}

export function notifyReceiver(channel: u32): void {
  atomic.add<u32>(channel + CH_WAKE_SEQ, 1);
  atomic.notify(channel + CH_WAKE_SEQ, -1);
}

// Receiver handles: a random non-zero token marks one in transit; claiming it is one cmpxchg.
export function offerReceiver(channel: u32, token: u32): void {
  atomic.store<u32>(channel + CH_RECV_TOKEN, token);
}

export function claimReceiver(channel: u32, token: u32): u32 {
  return <u32>(token != 0 && atomic.cmpxchg<u32>(channel + CH_RECV_TOKEN, token, 0) == token);
}

// Counters, as f64 so they cross to JS without BigInt. Single-writer words read from another
// thread: a snapshot, possibly a packet or a batch behind.
export function laneSent(lane: u32): f64 { return <f64>load<u64>(lane + LN_SENT); }
export function laneFull(lane: u32): f64 { return <f64>load<u64>(lane + LN_FULL); }
export function lanePoolEmpty(lane: u32): f64 { return <f64>load<u64>(lane + LN_POOL_EMPTY); }
export function laneClosedRefused(lane: u32): f64 { return <f64>load<u64>(lane + LN_CLOSED_REFUSED); }
export function laneReceived(lane: u32): f64 { return <f64>load<u64>(lane + LN_RECEIVED); }
export function laneQueued(lane: u32): u32 {
  return atomic.load<u32>(lane + LN_TAIL) - atomic.load<u32>(lane + LN_HEAD);
}
