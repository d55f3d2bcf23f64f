// This thread's view of one channel: the arena it lives in, its frame offset, and the same-thread
// wake-up state that lets a producer and a consumer on one thread skip the atomic notify.
import type { Arena } from "../memory/arena.ts";
import { CH_WAKE_SEQ } from "../memory/core.ts";
import { Waker, WordWaiter } from "../memory/park.ts";

export class SharedChannel {
  readonly arena: Arena;
  /** Byte offset of the channel frame. */
  readonly offset: number;
  readonly nonce: number;
  readonly capacity: number;
  readonly maxPacketSize: number;
  /**
   * True while every party is on this thread: the receiver is here and no handle was ever issued.
   * Then parks need no Atomics.waitAsync and wakes need no notify.
   */
  localOnly: boolean;
  /** True while the receiver of this channel lives on this thread. */
  receiverHere: boolean;
  readonly receiverWaker: Waker = new Waker();
  readonly receiverWord: WordWaiter;
  /** Lanes whose producer (a LaneProducer) is on this thread, by lane offset: what wakes their parked sends. */
  readonly localLanes: Map<number, { readonly spaceWaker: Waker }> = new Map();

  constructor(arena: Arena, offset: number, maxPacketSize: number, localOnly: boolean, receiverHere: boolean) {
    this.arena = arena;
    this.offset = offset;
    this.nonce = arena.core.nonceOf(offset);
    this.capacity = arena.core.capacityOf(offset);
    this.maxPacketSize = maxPacketSize;
    this.localOnly = localOnly;
    this.receiverHere = receiverHere;
    this.receiverWord = new WordWaiter(arena.words, (offset + CH_WAKE_SEQ) >> 2);
  }

  /** A producer saw the receiver's sleeping flag. */
  wakeReceiver(): void {
    if (this.receiverHere) this.receiverWaker.fire();
    else this.arena.core.notifyReceiver(this.offset);
  }

  /** The consumer saw a lane's space-waiting flag. */
  wakeProducer(lane: number): void {
    const local = this.localLanes.get(lane);
    if (local !== undefined) local.spaceWaker.fire();
    if (local === undefined || !this.localOnly) this.arena.core.notifySpace(lane);
  }

  /** A handle is about to leave this thread: from now on wakes may have to cross threads. */
  goCrossThread(): void {
    if (!this.localOnly) return;
    this.localOnly = false;
    // A receiver parked without a waitAsync re-parks with one.
    this.receiverWaker.fire();
    for (const lane of this.localLanes.values()) lane.spaceWaker.fire();
  }
}
