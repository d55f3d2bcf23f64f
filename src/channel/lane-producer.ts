// A lane's producing end on this thread, and when what it commits becomes visible to the receiver
// (docs/ring.md, "Batched publication").
import { FRAME_DATA, LN_SPACE_SEQ, RESERVE_FULL, RESERVE_POOL_EMPTY } from "../memory/core.ts";
import { park, Waker, WordWaiter } from "../memory/park.ts";
import type { SharedChannel } from "./shared-channel.ts";

/**
 * Packets a lane commits before it publishes them without waiting for the end of the burst. A
 * publish is one fenced store; measured per packet it cost half the producer's time cross-thread.
 */
const PUBLISH_EVERY = 16;

// Lanes of this thread with committed but unpublished packets. Any receiver on this thread publishes
// them before it looks, so a packet sent on this thread is visible to a receive on this thread at
// once, whichever channel object either end came from.
const unpublished = new Set<LaneProducer>();

export function publishThisThread(): void {
  if (unpublished.size === 0) return; // the common case: no iterator per drain
  for (const lane of unpublished) lane.publish();
}

/** The producing end of one lane on this thread, shared by a sender and its same-thread clones. */
export class LaneProducer {
  readonly channel: SharedChannel;
  readonly lane: number;
  openSenders = 1;
  readonly spaceWaker: Waker = new Waker();
  readonly #spaceWord: WordWaiter;
  /** Sends on this thread parked for space: the shared flag stays set until the last one leaves. */
  #parkedForSpace = 0;
  /** Committed packets await publish(). */
  #pending = false;
  /** A #publishLater microtask is queued (it may outlive #pending: then it finds nothing to do). */
  #publishQueued = false;
  #closed = false;

  constructor(channel: SharedChannel, lane: number) {
    this.channel = channel;
    this.lane = lane;
    const { arena } = channel;
    this.#spaceWord = new WordWaiter(arena.words, (lane + LN_SPACE_SEQ) >> 2);
    channel.localLanes.set(lane, this);
  }

  /**
   * The hot path: reserve a frame, copy, commit. Answers 0 when sent, else a RESERVE_* code. The
   * packet is validated by the caller. Committed packets become visible to the receiver every
   * PUBLISH_EVERY packets, at once when it is parked, and otherwise: to a receiver on this thread
   * when it next looks (it publishes this thread's lanes first), to one on another thread when this
   * thread's current task ends (a microtask). A listener's datagrams are one task each, and a
   * microtask per datagram cost 165 ns of its ~400 ns (bench/listener.mjs), hence no microtask when
   * the receiver is here.
   */
  push(packet: Uint8Array): number {
    const { core, bytes } = this.channel.arena;
    const frame = core.reserve(this.lane);
    if (frame < 0) return frame;
    bytes.set(packet, frame + FRAME_DATA);
    this.#committed(core.commit(this.lane, frame, packet.length));
    return 0;
  }

  /**
   * push() for a packet already in a frame of this arena that the caller owns (the listener parses
   * a datagram in place and then hands that frame over, so it is copied once, not twice). Answers 0
   * when the frame now belongs to the lane, else RESERVE_FULL / RESERVE_CLOSED and it stays the caller's.
   */
  pushFrame(frame: number, length: number): number {
    const outcome = this.channel.arena.core.handOver(this.lane, frame, length);
    if (outcome < 0) return outcome;
    this.#committed(outcome);
    return 0;
  }

  #committed(unpublishedCount: number): void {
    if (unpublishedCount >= PUBLISH_EVERY) this.publish();
    else if (!this.#pending) {
      this.#pending = true;
      unpublished.add(this);
      if (!this.#publishQueued && !this.channel.receiverHere) {
        this.#publishQueued = true;
        queueMicrotask(this.#publishLater);
      }
    }
  }

  /** Makes every committed packet visible to the receiver, and wakes it if it sleeps. */
  publish(): void {
    this.#pending = false;
    unpublished.delete(this);
    if (!this.#closed && this.channel.arena.core.publish(this.lane) !== 0) this.channel.wakeReceiver();
  }

  readonly #publishLater = (): void => {
    this.#publishQueued = false;
    this.publish();
  };

  /** Sleeps until the refusal `reason` (full lane or empty pool) may have cleared. */
  async waitFor(reason: number): Promise<void> {
    const { core, poolWord } = this.channel.arena;
    this.publish(); // the receiver can only make room for what it can see
    if (reason === RESERVE_FULL) {
      this.#parkedForSpace++;
      const seq = core.prepareSpaceWait(this.lane);
      try {
        if (core.hasSpace(this.lane) !== 0 || core.isReceiverClosed(this.channel.offset) !== 0) return;
        await park(this.spaceWaker, this.channel.localOnly ? undefined : this.#spaceWord, seq);
      } finally {
        if (--this.#parkedForSpace === 0) core.endSpaceWait(this.lane);
      }
    } else if (reason === RESERVE_POOL_EMPTY) {
      // Frames may be freed by any thread, so this wait always goes through the shared word.
      const seq = core.preparePoolWait();
      try {
        if (core.freeFrameCount() > 0) return;
        await park(this.spaceWaker, poolWord, seq);
      } finally {
        core.endPoolWait();
      }
    }
  }

  /** One sender on this lane closed; the last one closes the lane. */
  release(): void {
    if (--this.openSenders > 0) return;
    this.#closed = true; // closeLane() publishes; a queued publish must not touch the lane after this
    unpublished.delete(this);
    const channel = this.channel;
    channel.localLanes.delete(this.lane);
    const outcome = channel.arena.core.closeLane(this.lane);
    if (outcome === 1 && channel.receiverHere) channel.receiverWaker.fire();
  }
}
