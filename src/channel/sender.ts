// The sending end. Semantics follow tokio's bounded mpsc, for byte packets:
//  - trySend never waits: 'sent', 'full' (the lane is at capacity or the frame pool is empty; both
//    are counted in stats) or 'closed' (the receiver closed, or this sender did).
//  - send waits, asleep, for room; it answers 'closed' if the receiver closes meanwhile.
//  - Either copies the packet before answering 'sent'; the caller's buffer is never written and may
//    be reused once trySend returns or send's promise settles. (send() copies when room appears, so
//    keep the buffer unchanged until then: tokio takes ownership of the value for the same reason.)
//  - Clones on this thread share one lane (so one order); each handle gets a lane of its own.
//  - Visibility: a receiver on this thread sees a sent packet at once. A receiver on another thread
//    sees it after at most 16 more packets, or when this thread's current task ends (a microtask),
//    whichever is first: publishing is one fenced store, paid per batch rather than per packet.
//    flush() publishes now, for a producer about to block its thread synchronously.
import { illegalConstructor, invalidState, limitReached, poolExhausted } from "../errors/errors.ts";
import { invalidArgValue, validateByteLength, validateBytes, validateInteger } from "../errors/validate.ts";
import { RESERVE_CLOSED } from "../memory/core.ts";
import { handleFields, openHandle, type SenderHandle } from "./handle.ts";
import { LaneProducer } from "./lane-producer.ts";
import { SharedChannel } from "./shared-channel.ts";
import { channelStats, type ChannelStats } from "./stats.ts";

export type TrySendResult = "sent" | "full" | "closed";

/** The token only this module holds: senders come from channel(), clone() and Sender.fromHandle(). */
const FROM_CHANNEL = Symbol("Sender");

/** A sender on `lane` (for channel()). */
export function senderFor(lane: LaneProducer): Sender {
  return new Sender(FROM_CHANNEL, lane);
}

let trySendFrameOf: (sender: Sender, frame: number, length: number) => TrySendResult;

/**
 * trySend() of a packet already in `frame`, a frame of the sender's arena that the caller owns: on
 * 'sent' the frame belongs to the channel, otherwise it stays the caller's (the listener's hand-over,
 * wire/framer.ts: a datagram is copied once, not twice).
 */
export function trySendFrame(sender: Sender, frame: number, length: number): TrySendResult {
  return trySendFrameOf(sender, frame, length);
}

// A sender garbage-collected without close() still lets go of its lane, as a dropped tokio sender
// does; until the collector gets to it, the receiver cannot see the end of the stream.
const collected = new FinalizationRegistry<LaneProducer>((lane) => lane.release());

export class Sender {
  static {
    trySendFrameOf = (sender, frame, length) => {
      validateByteLength(length, "packet", sender.#channel.maxPacketSize, "the channel's maxPacketSize");
      const lane = sender.#lane;
      if (lane === undefined) return "closed";
      const outcome = lane.pushFrame(frame, length);
      return outcome === 0 ? "sent" : outcome === RESERVE_CLOSED ? "closed" : "full";
    };
  }

  #lane: LaneProducer | undefined;
  /** The counters when this sender closed (what stats() answers from then on). */
  #finalStats: ChannelStats | undefined;
  readonly #channel: SharedChannel;

  /** Not for applications: senders come from channel(), clone() and Sender.fromHandle(). @internal */
  constructor(token: typeof FROM_CHANNEL, lane: LaneProducer) {
    if (token !== FROM_CHANNEL) throw illegalConstructor("senders come from channel(), clone() and Sender.fromHandle()", Sender);
    this.#lane = lane;
    this.#channel = lane.channel;
    collected.register(this, lane, this);
  }

  /** Packets each lane (this sender and its same-thread clones) may hold. */
  get capacity(): number {
    return this.#channel.capacity;
  }

  get maxPacketSize(): number {
    return this.#channel.maxPacketSize;
  }

  #check(packet: unknown): asserts packet is Uint8Array {
    validateBytes(packet, "packet");
    validateByteLength(packet.length, "packet", this.#channel.maxPacketSize, "the channel's maxPacketSize");
  }

  trySend(packet: Uint8Array): TrySendResult {
    this.#check(packet);
    const lane = this.#lane;
    if (lane === undefined) return "closed";
    const outcome = lane.push(packet);
    return outcome === 0 ? "sent" : outcome === RESERVE_CLOSED ? "closed" : "full";
  }

  async send(packet: Uint8Array): Promise<"sent" | "closed"> {
    this.#check(packet);
    for (;;) {
      const lane = this.#lane;
      if (lane === undefined) return "closed";
      const outcome = lane.push(packet);
      if (outcome === 0) return "sent";
      if (outcome === RESERVE_CLOSED) return "closed";
      await lane.waitFor(outcome); // asleep until space may exist; then try again
    }
  }

  /** Makes every packet this lane has sent visible to the receiver now (see "Visibility" above). */
  flush(): void {
    this.#lane?.publish();
  }

  /** Another sender on the same lane (same thread, same order). */
  clone(): Sender {
    const lane = this.#lane;
    if (lane === undefined) throw invalidState("cannot clone a closed Sender", this.clone);
    lane.openSenders++;
    return new Sender(FROM_CHANNEL, lane);
  }

  /** This sender is done. When every sender of every lane is closed, the receiver sees the end after draining. */
  close(): void {
    const lane = this.#lane;
    if (lane === undefined) return;
    this.#finalStats = channelStats(lane.channel);
    this.#lane = undefined;
    collected.unregister(this);
    lane.release();
  }

  /** True once the receiver has closed (or this sender has: it can no longer send). */
  isClosed(): boolean {
    const lane = this.#lane;
    return lane === undefined || lane.channel.arena.core.isReceiverClosed(lane.channel.offset) !== 0;
  }

  /** The channel's counters; after close(), those it had when this sender closed. */
  stats(): ChannelStats {
    const lane = this.#lane;
    if (lane === undefined) return { ...this.#finalStats! };
    return channelStats(lane.channel);
  }

  /**
   * A handle for ONE other thread: post it there and call Sender.fromHandle(). It owns a new lane of
   * its own (counted as an open sender until the sender made from it closes). This sender stays usable.
   * A thread that ends without closing that sender (a crash, process.exit(), terminate()) leaves the
   * stream open: close the receiver on the worker's 'exit' event (queued packets are still received);
   * a Deno Web Worker has none: close it in the worker's 'error' handler and after terminate().
   */
  toHandle(): SenderHandle {
    const lane = this.#lane;
    if (lane === undefined) throw invalidState("cannot make a handle from a closed Sender", this.toHandle);
    const channel = lane.channel;
    const { core } = channel.arena;
    const added = core.addLane(channel.offset);
    if (added === 0) throw poolExhausted("another lane", this.toHandle);
    if (added === 1) throw limitReached("this channel already has its maximum of lanes (options.maxLanes); close the channel or raise maxLanes", this.toHandle);
    channel.goCrossThread();
    return { sluice: "sender", ...handleFields(channel.arena, channel.offset, channel.nonce, channel.maxPacketSize), lane: added };
  }

  /** The sender a handle carries, on this thread. Each handle works once. */
  static fromHandle(handle: SenderHandle): Sender {
    const { arena, fields } = openHandle(handle, "sender");
    const lane = (handle as { lane?: unknown }).lane;
    validateInteger(lane, "handle.lane", 1, 2 ** 32 - 1);
    if (arena.core.hasLane(fields.channel, lane) === 0) throw invalidArgValue("handle.lane", lane, "names no lane of its channel");
    if (arena.core.claimLane(lane) === 0) throw invalidArgValue("handle.lane", lane, "was already claimed: each handle works once");
    const channel = new SharedChannel(arena, fields.channel, fields.maxPacketSize, false, false);
    return new Sender(FROM_CHANNEL, new LaneProducer(channel, lane));
  }
}
