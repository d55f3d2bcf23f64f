export { channel, DEFAULT_MAX_LANES, DEFAULT_MAX_PACKET_SIZE, type ChannelOptions } from "./channel.ts";
export { Sender, type TrySendResult } from "./sender.ts";
export { Receiver, type PacketVisitor } from "./receiver.ts";
export type { SenderHandle, ReceiverHandle } from "./handle.ts";
export type { ChannelStats } from "./stats.ts";
export {
  Arena, DEFAULT_ARENA_BYTES, DEFAULT_FRAME_BYTES, MAX_FRAME_BYTES, MIN_FRAME_BYTES, type ArenaOptions, type ArenaStats,
} from "./arena.ts";
export { PARK_SAFETY_MS } from "./park.ts";
