// channel(capacity, options) → [Sender, Receiver]: a bounded queue of byte packets in shared memory.
import { Arena } from "../memory/arena.ts";
import { FRAME_DATA } from "../memory/core.ts";
import { randomUint32 } from "../memory/random-pool.ts";
import { poolExhausted } from "../errors/errors.ts";
import { invalidArgType, keysOf, validateInteger, validateKnownKeys, validateObject } from "../errors/validate.ts";
import { LaneProducer } from "./lane-producer.ts";
import { SharedChannel } from "./shared-channel.ts";
import { receiverFor, type Receiver } from "./receiver.ts";
import { senderFor, type Sender } from "./sender.ts";

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

/**
 * A bounded channel of byte packets. `capacity` packets fit in each lane: the lane of this thread's
 * senders, and one more lane for each sender handle sent to another thread.
 */
export function channel(capacity: number, options: ChannelOptions = {}): [Sender, Receiver] {
  validateObject(options, "options");
  validateKnownKeys(options, "options", keysOf<ChannelOptions>()("maxPacketSize", "maxLanes", "arena"));
  if (options.arena !== undefined && !(options.arena instanceof Arena)) throw invalidArgType("options.arena", "an instance of Arena", options.arena, channel);
  const arena = options.arena ?? Arena.threadDefault();
  const { core } = arena;
  validateInteger(capacity, "capacity", 1, core.maxCapacity());
  // A packet and its length word fit one frame of the arena.
  const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  validateInteger(maxPacketSize, "options.maxPacketSize", 0, arena.frameBytes - FRAME_DATA);
  const maxLanes = options.maxLanes ?? DEFAULT_MAX_LANES;
  validateInteger(maxLanes, "options.maxLanes", 1, core.maxLanes());
  const nonce = randomUint32() >>> 1 | 1; // 1..2^31−1: a positive i32
  const offset = core.createChannel(capacity, maxLanes, nonce);
  if (offset === 0) throw poolExhausted("another channel", channel);
  const shared = new SharedChannel(arena, offset, maxPacketSize, true, true);
  return [senderFor(new LaneProducer(shared, core.laneOf(offset, 0))), receiverFor(shared)];
}
