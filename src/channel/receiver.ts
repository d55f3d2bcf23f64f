// The receiving end. Semantics follow tokio's bounded mpsc, for byte packets:
//  - recv() resolves with the next packet, or undefined once every sender has closed (or the
//    receiver has, see close()) and the queue is drained. Its bytes belong to the caller. It holds
//    up to HOLD_AT_ONCE ready packets per look and hands them out one per call (see below).
//  - tryRecv() never waits: a packet, 'empty', or 'closed' (the same end as recv's undefined).
//  - close() refuses new packets at once; packets already queued can still be received.
//  - drain() is the hot-loop path: it hands each ready packet to a callback as (bytes, offset,
//    length) over the arena itself, with no copy and no allocation. Those bytes are valid only
//    during the call: the frame goes back to the pool when drain() returns.
// Lanes are visited round-robin, so one busy sending thread cannot starve another.
import { illegalConstructor, invalidState } from "../errors/errors.ts";
import { invalidArgValue, validateFunction, validateInteger } from "../errors/validate.ts";
import { FRAME_DATA, STATE_EMPTY, STATE_ENDED } from "../memory/core.ts";
import { DeliverySlab, type ReceivedBytes } from "../memory/delivery-slab.ts";
import { parkThen } from "../memory/park.ts";
import { handleFields, openHandle, type ReceiverHandle } from "./handle.ts";
import { publishThisThread } from "./lane-producer.ts";
import { SharedChannel } from "./shared-channel.ts";
import { channelStats, type ChannelStats } from "./stats.ts";

/** (bytes, offset, length): the packet is bytes[offset, offset + length), valid only during the call. */
export type PacketVisitor = (bytes: Uint8Array, offset: number, length: number) => void;

/** The token only this module holds: receivers come from channel() and Receiver.fromHandle(). */
const FROM_CHANNEL = Symbol("Receiver");

/** The receiver of `channel` (for channel()). */
export function receiverFor(channel: SharedChannel): Receiver {
  return new Receiver(FROM_CHANNEL, channel);
}

/**
 * Packets recv() and `for await` hold in one look: their frames stay in the lane (still queued, not
 * yet received) and are handed out one per call, each copied out as it is handed out; the lane's
 * room comes back in one release when the last of them is. Taking one per call touched shared
 * state per packet (a release, and a notify while the sender was parked for space), and a sender
 * parked on a full lane woke to a handful of free slots at a time: it now wakes once per hold. 256
 * rather than 64 cut the sending thread's cost per packet by a fifth (docs/benchmarks.md). Copying
 * ahead into memory of the library's own and again at hand-out cost half the receiving thread.
 */
const HOLD_AT_ONCE = 256;

// A receiver garbage-collected before the end of its stream closes and leaves its channel, as a
// dropped tokio receiver does: senders see 'closed', and the channel's frames come back.
const collected = new FinalizationRegistry<SharedChannel>((channel) => {
  refuseNewPackets(channel);
  channel.arena.core.leaveReceiver(channel.offset);
});

/** Senders answer 'closed' from now on; those parked for space on any thread wake to see it. */
function refuseNewPackets(channel: SharedChannel): void {
  publishThisThread(); // what this thread sent before the close stays receivable
  channel.arena.core.closeReceiver(channel.offset); // wakes other threads' parked senders
  for (const lane of channel.localLanes.values()) lane.spaceWaker.fire();
}

function checkBatch(visit: unknown, limit: unknown): void {
  validateFunction(visit, "visit");
  if (limit !== Infinity) validateInteger(limit, "limit", 1);
}

const enum End {
  Open,
  /** The stream ended and this receiver left the channel: its memory may be reused. */
  Ended,
  /** toHandle() moved the receiving end to another thread. */
  Moved,
}

/** The next packet an earlier look holds, if any: the iterator's fast path. */
let heldPacketOf: (receiver: Receiver) => ReceivedBytes | undefined;

export class Receiver {
  static {
    heldPacketOf = (receiver) => (receiver.#heldCount > receiver.#handedOut ? receiver.#handOut() : undefined);
  }

  readonly #channel: SharedChannel;
  #end = End.Open;
  /** The counters at the end of the stream (what stats() answers from then on). */
  #finalStats: ChannelStats | undefined;
  #lanes: number[] = [];
  #lanesComplete = false;
  #cursor = 0;
  /** recv() calls parked on this thread; the shared sleeping flag stays set until the last leaves. */
  #parked = 0;
  /** Where handed-out packets are copied: memory of this receiver's own (memory/delivery-slab.ts). */
  readonly #delivered = new DeliverySlab();
  /**
   * The frames a look of recv() holds in #heldLane, in order: #held[#handedOut, #heldCount) are not
   * handed out yet. They stay in the lane until the last is handed out; a receiver moved to
   * another thread meanwhile finds them there, still queued.
   */
  readonly #held = new Int32Array(HOLD_AT_ONCE);
  #heldCount = 0;
  #handedOut = 0;
  #heldLane = 0;

  /** Not for applications: receivers come from channel() and Receiver.fromHandle(). @internal */
  constructor(token: typeof FROM_CHANNEL, channel: SharedChannel) {
    if (token !== FROM_CHANNEL) throw illegalConstructor("receivers come from channel() and Receiver.fromHandle()", Receiver);
    this.#channel = channel;
    collected.register(this, channel, this);
  }

  get capacity(): number {
    return this.#channel.capacity;
  }

  #usable(): boolean {
    if (this.#end === End.Moved) throw invalidState("this Receiver was moved to another thread with toHandle() and can no longer be used here", this.#usable);
    return this.#end === End.Open;
  }

  #refreshLanes(): number[] {
    const { core } = this.#channel.arena;
    const count = core.lanesOf(this.#channel.offset);
    if (count !== this.#lanes.length || !this.#lanesComplete) {
      this.#lanes = [];
      this.#lanesComplete = true;
      for (let i = 0; i < count; i++) {
        const lane = core.laneOf(this.#channel.offset, i);
        if (lane === 0) this.#lanesComplete = false; // still being published by its creator
        this.#lanes.push(lane);
      }
    }
    return this.#lanes;
  }

  /** The end of the stream: leave the channel (the last party frees it), keeping its last counters for stats(). */
  #finish(): void {
    collected.unregister(this);
    this.#finalStats = channelStats(this.#channel);
    this.#end = End.Ended;
    this.#channel.receiverHere = false;
    this.#channel.arena.core.leaveReceiver(this.#channel.offset);
    this.#channel.receiverWaker.fire(); // other recv() calls parked here see the end too
  }

  /** The next held packet, handed to the application: a copy of its own (see #delivered). */
  #handOut(): ReceivedBytes {
    const frame = this.#held[this.#handedOut]!;
    const { bytes, words } = this.#channel.arena;
    const packet = this.#delivered.copy(bytes, frame + FRAME_DATA, words[frame >> 2]!);
    if (++this.#handedOut === this.#heldCount) this.#releaseHeld();
    return packet;
  }

  /** Every held packet was handed out: their room goes back to the lane's senders at once. */
  #releaseHeld(): void {
    const count = this.#heldCount;
    this.#heldCount = 0;
    this.#handedOut = 0;
    if (this.#channel.arena.core.release(this.#heldLane, count) !== 0) this.#channel.wakeProducer(this.#heldLane);
  }

  /**
   * Holds up to `limit` ready packets of the next lane with any (round-robin) without taking them
   * out of it; answers how many.
   */
  #hold(limit: number): number {
    const channel = this.#channel;
    const { core } = channel.arena;
    publishThisThread(); // same-thread sends are visible at once
    const lanes = this.#refreshLanes();
    for (let step = 0; step < lanes.length; step++) {
      const lane = lanes[(this.#cursor + step) % lanes.length]!;
      if (lane === 0) continue;
      const ready = Math.min(core.available(lane, limit), limit); // available() may answer more than asked
      if (ready === 0) continue;
      for (let i = 0; i < ready; i++) this.#held[i] = core.peekFrame(lane, i);
      this.#heldLane = lane;
      this.#heldCount = ready;
      this.#cursor = (this.#cursor + step + 1) % lanes.length;
      return ready;
    }
    return 0;
  }

  /**
   * Hands up to `limit` ready packets to `visit`, without copying; answers how many. Never waits.
   * Packets a look of recv() holds come first.
   */
  drain(visit: PacketVisitor, limit = Infinity): number {
    checkBatch(visit, limit);
    const channel = this.#channel;
    const { core, bytes, words } = channel.arena;
    let total = 0;
    if (this.#heldCount > 0) {
      try {
        while (total < limit && this.#handedOut < this.#heldCount) {
          const frame = this.#held[this.#handedOut++]!; // handed out even if the visitor throws, as below
          total++;
          visit(bytes, frame + FRAME_DATA, words[frame >> 2]!);
        }
      } finally {
        if (this.#handedOut === this.#heldCount) this.#releaseHeld();
      }
    }
    if (total === limit || !this.#usable()) return total;
    publishThisThread(); // same-thread sends are visible at once
    const lanes = this.#refreshLanes();
    for (let step = 0; step < lanes.length && total < limit; step++) {
      const lane = lanes[(this.#cursor + step) % lanes.length]!;
      if (lane === 0) continue;
      const ready = core.available(lane, Math.min(limit - total, 0x7fffffff));
      if (ready === 0) continue;
      const take = Math.min(ready, limit - total);
      let taken = 0;
      try {
        while (taken < take) {
          const frame = core.peekFrame(lane, taken);
          taken++; // a packet handed to a visitor that throws is still consumed
          visit(bytes, frame + FRAME_DATA, words[frame >> 2]!);
        }
      } finally {
        total += taken;
        if (core.release(lane, taken) !== 0) channel.wakeProducer(lane);
      }
    }
    this.#cursor = (this.#cursor + 1) % Math.max(1, lanes.length);
    return total;
  }

  /**
   * Holds up to `limit` packets and hands out the first (a copy: not bytes.slice(), which on a
   * SharedArrayBuffer copies element by element, 3.1 µs for 1200 bytes on Node 20); or answers
   * whether the stream ended.
   */
  #take(limit: number): ReceivedBytes | "empty" | "closed" {
    if (this.#heldCount === 0 && (!this.#usable() || this.#hold(limit) === 0)) {
      if (!this.#usable() || this.#channel.arena.core.channelState(this.#channel.offset) !== STATE_ENDED) {
        return this.#end === End.Open ? "empty" : "closed";
      }
      this.#finish();
      return "closed";
    }
    return this.#handOut();
  }

  /** One packet, never more: the lane's room shows exactly what was received (tokio's try_recv). */
  tryRecv(): ReceivedBytes | "empty" | "closed" {
    return this.#take(1);
  }

  recv(): Promise<ReceivedBytes | undefined> {
    // The common case in a busy stream: a packet held by an earlier look, no shared state touched.
    if (this.#heldCount > 0) return Promise.resolve(this.#handOut());
    return this.#wait(this.#lookForPacket);
  }

  readonly #lookForPacket = (): ReceivedBytes | undefined | "empty" => {
    const next = this.#take(HOLD_AT_ONCE);
    return next === "closed" ? undefined : next;
  };

  /**
   * The first answer of `look` other than "empty". It looks at once; after an empty look, once more
   * after one event-loop turn: a producer on another thread usually publishes more in that time, so
   * the receiver takes a batch instead of parking per packet, and it writes the shared sleeping flag
   * (which every producer reads on every packet) only when really idle (measured: cross-thread
   * batches 2 → 4, throughput ×2, docs/benchmarks.md). After a second empty look it sleeps until
   * woken, then looks again. One look per empty observation, never a loop. Driven by callbacks, not
   * an async loop, so that a wake-up runs the next look straight from the wake, with no async
   * function resumptions in between (they were a third of the wake-up latency's JavaScript part).
   */
  #wait<T>(look: () => T | "empty"): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = (lingered: boolean): void => {
        let answer: T | "empty";
        try {
          answer = look();
        } catch (error) {
          reject(error);
          return;
        }
        if (answer !== "empty") resolve(answer);
        else if (!lingered) setImmediate(attempt, true);
        else this.#sleep(() => attempt(false));
      };
      attempt(false);
    });
  }

  /**
   * Waits (asleep) until at least one packet is ready or the stream ended, then drains up to `limit`
   * packets into `visit`. Answers how many; 0 means the stream ended.
   */
  recvBatch(visit: PacketVisitor, limit = Infinity): Promise<number> {
    try {
      checkBatch(visit, limit);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#wait(() => {
      if (!this.#usable()) return 0;
      const count = this.drain(visit, limit);
      if (count > 0) return count;
      if (this.#channel.arena.core.channelState(this.#channel.offset) !== STATE_ENDED) return "empty";
      this.#finish();
      return 0;
    });
  }

  /** Asleep until a producer (or the end of the stream, or a close) may have changed the answer; then `then`. */
  #sleep(then: () => void): void {
    const channel = this.#channel;
    const { core } = channel.arena;
    this.#parked++;
    const seq = core.prepareSleep(channel.offset);
    const woken = (): void => {
      if (--this.#parked === 0 && this.#end === End.Open) core.endSleep(channel.offset);
      then();
    };
    // Re-check after raising the flag: a packet published before the flag was visible is seen here.
    if (core.channelState(channel.offset) !== STATE_EMPTY) queueMicrotask(woken);
    else parkThen(channel.receiverWaker, channel.localOnly ? undefined : channel.receiverWord, seq, woken);
  }

  /** Refuses new packets (senders see 'closed'); those already queued can still be received. */
  close(): void {
    if (!this.#usable()) return;
    refuseNewPackets(this.#channel);
    if (this.#heldCount === 0 && this.#channel.arena.core.channelState(this.#channel.offset) === STATE_ENDED) this.#finish();
  }

  /** The channel's counters; once the stream ended (every packet received), those it ended with. */
  stats(): ChannelStats {
    if (!this.#usable()) return { ...this.#finalStats! }; // ended (a moved receiver throws)
    return channelStats(this.#channel);
  }

  /** `for await (const packet of receiver)`: recv() per step, ending at the end of the stream. */
  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedBytes, undefined> {
    return new PacketIterator(this);
  }

  /**
   * Moves the receiving end to ONE other thread: post the handle there and call Receiver.fromHandle().
   * Queued packets stay queued, those a look of recv() holds and has not handed out among them.
   * This receiver throws on any later use.
   */
  toHandle(): ReceiverHandle {
    if (!this.#usable()) throw invalidState("cannot move an ended Receiver", this.toHandle);
    const channel = this.#channel;
    const token = (crypto.getRandomValues(new Uint32Array(1))[0]! | 1) >>> 0;
    channel.arena.core.offerReceiver(channel.offset, token);
    channel.goCrossThread();
    channel.receiverHere = false;
    publishThisThread(); // same-thread producers left their packets for this receiver to publish
    collected.unregister(this); // the receiving end lives on in the handle
    this.#end = End.Moved;
    // Held packets not handed out stay in the lane; those handed out leave it now.
    if (this.#heldCount > 0 && this.#handedOut > 0 && channel.arena.core.release(this.#heldLane, this.#handedOut) !== 0) channel.wakeProducer(this.#heldLane);
    this.#heldCount = 0;
    this.#handedOut = 0;
    return { sluice: "receiver", ...handleFields(channel.arena, channel.offset, channel.nonce, channel.maxPacketSize), token };
  }

  /** The receiver a handle carries, on this thread. Each handle works once. */
  static fromHandle(handle: ReceiverHandle): Receiver {
    const { arena, fields } = openHandle(handle, "receiver");
    const { token } = handle as { token?: unknown };
    validateInteger(token, "handle.token", 1, 2 ** 32 - 1);
    if (arena.core.claimReceiver(fields.channel, token | 0) === 0) {
      throw invalidArgValue("handle.token", token, "was already claimed, or is not this channel's: each handle works once");
    }
    return new Receiver(FROM_CHANNEL, new SharedChannel(arena, fields.channel, fields.maxPacketSize, false, true));
  }
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The receiver's async iterator: one recv() per step, as an async generator would do, without the
 * generator's own promise and resume per packet. Steps settle in the order they were asked for.
 */
class PacketIterator implements AsyncIterableIterator<ReceivedBytes, undefined> {
  readonly #receiver: Receiver;
  #done = false;
  /** The last step still waiting for a packet: a later step waits for it first. */
  #waiting: Promise<IteratorResult<ReceivedBytes, undefined>> | undefined;

  constructor(receiver: Receiver) {
    this.#receiver = receiver;
  }

  next(): Promise<IteratorResult<ReceivedBytes, undefined>> {
    if (this.#waiting === undefined) {
      if (this.#done) return Promise.resolve(DONE);
      const ready = heldPacketOf(this.#receiver);
      if (ready !== undefined) return Promise.resolve({ done: false, value: ready });
    }
    const before = this.#waiting;
    const step = before === undefined ? this.#step() : before.then(() => this.#step(), () => this.#step());
    this.#waiting = step;
    const settled = (): void => {
      if (this.#waiting === step) this.#waiting = undefined;
    };
    step.then(settled, settled);
    return step;
  }

  async #step(): Promise<IteratorResult<ReceivedBytes, undefined>> {
    if (this.#done) return DONE;
    const packet = await this.#receiver.recv();
    if (packet !== undefined) return { done: false, value: packet };
    this.#done = true;
    return DONE;
  }

  return(): Promise<IteratorResult<ReceivedBytes, undefined>> {
    this.#done = true; // as a generator's: the receiver stays open, a new iterator reads on
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
