// channel(capacity, options) → [Sender, Receiver]: a bounded queue of byte packets in shared memory.
import { Arena } from "./arena.ts";
import { FRAME_DATA } from "./core.ts";
import { ChannelCore, LaneProducer } from "./channel-core.ts";
import { Receiver } from "./receiver.ts";
import { Sender } from "./sender.ts";

/** Largest packet a channel accepts unless told otherwise: one Ethernet-MTU datagram. */
export const DEFAULT_MAX_PACKET_SIZE = 1500;
/** Lanes (sending threads) a channel may have unless told otherwise. Lanes cost memory only once made. */
export const DEFAULT_MAX_LANES = 16;

export interface ChannelOptions {
  /** Largest packet in bytes; at most the arena's frameBytes − 8. Default 1500. */
  maxPacketSize?: number;
  /** Most lanes, i.e. sending threads (this thread's lane plus one per sender handle). Default 16. */
  maxLanes?: number;
  /** Arena to allocate in. Default: this thread's default arena. */
  arena?: Arena;
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${typeof value === "number" ? String(value) : typeof value}`);
  }
  if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  return value;
}

/**
 * A bounded channel of byte packets. `capacity` packets fit in each lane: the lane of this thread's
 * senders, and one more lane for each sender handle sent to another thread.
 */
export function channel(capacity: number, options: ChannelOptions = {}): [Sender, Receiver] {
  if (options === null || typeof options !== "object") throw new TypeError("channel options must be an object");
  const arena = options.arena ?? Arena.threadDefault();
  const { core } = arena;
  checkInteger("capacity", capacity, 1, core.maxCapacity());
  const maxPacketSize = checkInteger(
    `maxPacketSize${options.maxPacketSize === undefined ? " (default)" : ""} for an arena of ${arena.frameBytes}-byte frames`,
    options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE, 0, arena.frameBytes - FRAME_DATA,
  );
  const maxLanes = checkInteger("maxLanes", options.maxLanes ?? DEFAULT_MAX_LANES, 1, core.maxLanes());
  const nonce = crypto.getRandomValues(new Uint32Array(1))[0]! >>> 1 | 1; // 1..2^31−1: a positive i32
  const offset = core.createChannel(capacity, maxLanes, nonce);
  if (offset === 0) throw new RangeError("the arena's frame pool is exhausted: no room for another channel");
  const shared = new ChannelCore(arena, offset, maxPacketSize, true, true);
  return [new Sender(new LaneProducer(shared, core.laneOf(offset, 0))), new Receiver(shared)];
}
