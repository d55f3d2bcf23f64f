// Channel counters, summed over lanes. Each counter has one writer (a lane's producer, or the
// consumer), so a reader on another thread sees a recent snapshot, not an atomic one.
import { publishThisThread } from "./lane-producer.ts";
import type { SharedChannel } from "./shared-channel.ts";

export interface ChannelStats {
  /** Packets each lane may hold. */
  capacity: number;
  lanes: number;
  /** Packets queued now. */
  queued: number;
  sent: number;
  received: number;
  /** trySend/send attempts refused because the lane was full (each is a dropped packet for trySend). */
  full: number;
  /** Attempts refused because the arena's frame pool was empty (or, in a transport's arena, had nothing left beyond every queue's reserve). */
  poolEmpty: number;
  /** Attempts refused because the receiver had closed. */
  closedRefused: number;
}

export function channelStats(channel: SharedChannel): ChannelStats {
  const { core } = channel.arena;
  publishThisThread(); // this thread's sends count as queued at once, as a receive here would see them
  const stats: ChannelStats = {
    capacity: channel.capacity, lanes: 0, queued: 0, sent: 0, received: 0, full: 0, poolEmpty: 0, closedRefused: 0,
  };
  const lanes = core.lanesOf(channel.offset);
  for (let i = 0; i < lanes; i++) {
    const lane = core.laneOf(channel.offset, i);
    if (lane === 0) continue;
    stats.lanes++;
    stats.queued += core.laneQueued(lane);
    stats.sent += core.laneSent(lane);
    stats.received += core.laneReceived(lane);
    stats.full += core.laneFull(lane);
    stats.poolEmpty += core.lanePoolEmpty(lane);
    stats.closedRefused += core.laneClosedRefused(lane);
  }
  return stats;
}
