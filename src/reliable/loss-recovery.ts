// Which packets are in flight, which were acknowledged, which are lost, and when to probe or time out:
// RFC 9002 §6.1 thresholds, a tail-loss probe, RFC 6298's retransmission timer, and the congestion
// controller and RTT estimator they feed. It knows nothing of what a packet carried: the session
// learns through the `acked` and `lost` callbacks and decides what that means for its frames.
//
// Packets declared lost are remembered a while (RFC 9002 §6.1 allows for it; quinn and msquic keep
// them too): reordering makes a packet look lost when its ACK is only late, and that ACK must still
// count what the packet carried as delivered. Forgotten at once, the data stayed unacknowledged until
// its retransmission was acknowledged, and a peer that closed first (it had everything) left the
// writer's flush() failing with ERR_SLUICE_PEER_CLOSED: on a 2 ms ± 1 ms link in virtual time, 159
// of 6,000 runs (6 network seeds, the Sessions' randomness varied) and 153 of the first 1,000 seeds.

import { NewReno } from "./congestion.ts";
import { RttEstimator } from "./rtt.ts";

/** RFC 9002 §6.1.1: a packet this many behind an acknowledged one is lost. */
const PACKET_THRESHOLD = 3;
/** RFC 9002 §6.1.2: ...or sent this many RTTs before one that was acknowledged. */
const TIME_THRESHOLD = 9 / 8;
/** The tail-loss probe waits at least this long (freenet: max(2·SRTT, 10 ms)). */
const MIN_PROBE_TIMEOUT_MS = 10;
/**
 * Packets declared lost that are remembered for a late ACK, at most (the oldest go first); each for
 * one RTO after it was declared lost (at least the 200 ms floor, past any reordering a late ACK comes
 * from). Reordering declares a few at once (1 to 5 on the 2 ms ± 1 ms link); a retransmission timeout
 * declares a whole window, of which the newest this many are kept. A record holds frame descriptions,
 * not bytes (those stay in the send buffer until acknowledged): a few hundred bytes each.
 */
export const MAX_REMEMBERED_LOST = 256;

/** Whether the ACK frame's `ranges` ([start, end), from the highest down) acknowledge `packetNumber`. */
export function acknowledges(ranges: ReadonlyArray<readonly [number, number]>, packetNumber: number): boolean {
  for (const [start, end] of ranges) {
    if (packetNumber >= end) return false; // below every range before it and above the rest: a gap
    if (packetNumber >= start) return true;
  }
  return false;
}

/** What recovery needs of a packet: when it left, how many bytes the window counts for it, whether it is a path MTU probe. */
export interface InFlight {
  time: number;
  bytes: number;
  /**
   * Non-zero for a path MTU probe (path-mtu.ts): its loss says the path is too narrow for its size,
   * not that it is congested, so it cuts no window (RFC 9000 §14.4).
   */
  mtuProbe?: number;
}

/**
 * What the timer did: nothing (nothing was due yet), a tail-loss probe, a retransmission timeout, or gave up: "failed" after too many
 * consecutive timeouts, "silent" when the peer acknowledged nothing for the dead-peer timeout.
 */
export type LossTimerOutcome = "none" | "probe" | "timeout" | "failed" | "silent";

/** Limits of a LossRecovery: RTO floor, consecutive timeouts, the peer's ACK delay, the dead-peer timeout. */
export interface RecoveryLimits {
  rtoFloorMs: number;
  maxTimeouts: number;
  peerAckDelayMs: number;
  deadPeerTimeoutMs: number;
}

/**
 * Retransmissions back off to at most this fraction of the dead-peer timeout, so that about nine
 * probes go before it (at the 200 ms floor and 10 s: 0.2, 0.6, 1.4, 2.65, then every 1.25 s). With a
 * quarter (five probes), 6 of 30 seeded networks at 30% loss each way were declared dead while
 * alive; with an eighth none were, down to a 3 s timeout.
 */
const PROBES_PER_DEAD_PEER_TIMEOUT = 8;

export class LossRecovery<P extends InFlight> {
  readonly rtt: RttEstimator;
  readonly congestion = new NewReno();
  /** The peer's longest ACK delay: the probe timer waits it out. */
  readonly #peerAckDelayMs: number;
  readonly #maxTimeouts: number;
  readonly #deadPeerTimeoutMs: number;
  /** In-flight ack-eliciting packets by number, oldest first (a Map keeps insertion order). */
  readonly #sent = new Map<number, P>();
  /**
   * Packets declared lost, by number, oldest declaration first, each with when it is forgotten: at most
   * MAX_REMEMBERED_LOST, an expired one dropped at the next ACK.
   */
  readonly #lost = new Map<number, { packet: P; until: number }>();
  #largestAcked = -1;
  #lastSentTime = 0;
  /** When the retransmission timer was (re)started: at the first packet in flight, or the last new ACK. */
  #timerStart = 0;
  #probeSent = false;
  #probesDue = 0;
  #consecutiveTimeouts = 0;
  /**
   * Since when the peer owes an acknowledgement: when the first packet went out after the last new
   * acknowledgement (or that acknowledgement's time, if packets were still in flight). Infinity when
   * nothing awaits one. Retransmission timeouts do not move it: what was lost is still owed.
   */
  #unansweredSince = Infinity;
  readonly stats = { packetsLost: 0, spuriousLosses: 0, tailLossProbes: 0, retransmissionTimeouts: 0 };

  constructor(limits: RecoveryLimits) {
    this.rtt = new RttEstimator(limits.rtoFloorMs, limits.deadPeerTimeoutMs / PROBES_PER_DEAD_PEER_TIMEOUT);
    this.#maxTimeouts = limits.maxTimeouts;
    this.#peerAckDelayMs = limits.peerAckDelayMs;
    this.#deadPeerTimeoutMs = limits.deadPeerTimeoutMs;
  }

  /** The largest packet number the peer acknowledged (-1: none yet). */
  get largestAcked(): number {
    return this.#largestAcked;
  }

  /** Since when the peer owes an acknowledgement (Infinity: nothing awaits one). */
  get unansweredSince(): number {
    return this.#unansweredSince;
  }

  /** A probe is due: the next packet goes whatever the window says. */
  get probeDue(): boolean {
    return this.#probesDue > 0;
  }

  onSent(packetNumber: number, packet: P, probe: boolean): void {
    if (probe) this.#probesDue--;
    if (this.#sent.size === 0) this.#timerStart = packet.time;
    if (this.#unansweredSince === Infinity) this.#unansweredSince = packet.time;
    this.#sent.set(packetNumber, packet);
    this.#lastSentTime = packet.time;
    this.congestion.onSent(packet.bytes);
  }

  /**
   * An ACK frame: `ranges` [start, end) from the highest down, `delayMs` the peer's delay for the
   * highest. Calls `acked` for each newly acknowledged packet, then `lost` for each one now declared
   * lost. Answers whether anything was newly acknowledged.
   *
   * A packet declared lost and remembered (MAX_REMEMBERED_LOST) goes to `acked` too, once: it arrived,
   * so its frames did, though they may have been sent again already (`acked` must allow for that). It
   * counts as a spurious loss, and for nothing else: the window let go of its bytes when it was declared
   * lost, and the delay of its ACK, reordered, is no RTT sample.
   */
  onAck(ranges: ReadonlyArray<readonly [number, number]>, delayMs: number, now: number, acked: (packet: P) => void, lost: (packet: P) => void): boolean {
    const largest = ranges[0]![1] - 1;
    const lateAcked = this.#ackRemembered(ranges, now, acked);
    let sample: P | undefined;
    let sampleNumber = -1;
    // Walk our in-flight packets from the lowest up against the ranges from the lowest up.
    let r = ranges.length - 1;
    for (const [packetNumber, packet] of this.#sent) {
      while (r >= 0 && ranges[r]![1] <= packetNumber) r--;
      if (r < 0) break;
      if (packetNumber < ranges[r]![0]) continue;
      this.#sent.delete(packetNumber);
      this.congestion.onAcked(packet.bytes, packet.time);
      acked(packet);
      sample = packet; // ascending: ends as the newest newly acknowledged
      sampleNumber = packetNumber;
    }
    if (sample === undefined) return lateAcked;
    // The reported delay is the frame's largest packet's: it is taken off only a sample from that packet.
    // Another (the largest was one of the peer's pure ACKs) gives a sample with the delay in: an overestimate.
    this.rtt.addSample(now - sample.time, sampleNumber === largest ? delayMs : 0, this.#peerAckDelayMs);
    this.#largestAcked = Math.max(this.#largestAcked, largest);
    this.#consecutiveTimeouts = 0;
    this.#probeSent = false;
    this.#timerStart = now;
    this.#detectLoss(now, lost);
    this.#unansweredSince = this.#sent.size > 0 ? now : Infinity;
    return true;
  }

  /** When onTimeout() is due (Infinity with nothing awaiting an acknowledgement). */
  deadline(): number {
    const silent = this.#unansweredSince + this.#deadPeerTimeoutMs;
    if (this.#sent.size === 0) return silent;
    const timeout = Math.min(silent, this.#timerStart + this.rtt.rto);
    if (this.#probeSent) return timeout;
    return Math.min(timeout, this.#lastSentTime + Math.max(2 * this.rtt.smoothed, MIN_PROBE_TIMEOUT_MS) + this.#peerAckDelayMs);
  }

  /**
   * The timer fired: first a tail-loss probe (one packet to draw an ACK that reveals the loss), then
   * the retransmission timeout (everything in flight is lost, the window restarts, the timeout
   * doubles), "failed" once the consecutive timeouts pass the limit.
   */
  onTimeout(now: number, lost: (packet: P) => void): LossTimerOutcome {
    if (now >= this.#unansweredSince + this.#deadPeerTimeoutMs) {
      this.clear();
      return "silent";
    }
    if (this.#sent.size === 0) return "none"; // only the dead-peer deadline counts now, and it is not due
    if (!this.#probeSent && now < this.#timerStart + this.rtt.rto) {
      this.#probeSent = true;
      this.#probesDue = 1;
      this.stats.tailLossProbes++;
      return "probe";
    }
    this.stats.retransmissionTimeouts++;
    if (++this.#consecutiveTimeouts > this.#maxTimeouts) {
      this.clear();
      return "failed";
    }
    let congested = false; // a lost path MTU probe alone is no congestion
    for (const [packetNumber, packet] of this.#sent) {
      this.#sent.delete(packetNumber);
      this.#declareLost(packetNumber, packet, now, lost);
      if (!packet.mtuProbe) congested = true;
    }
    if (congested) this.congestion.onRetransmissionTimeout(now);
    this.rtt.backOff();
    this.#timerStart = now;
    this.#probeSent = true;
    this.#probesDue = 1;
    return "timeout";
  }

  /**
   * The connection moved to a validated new address: everything in flight is declared lost (without
   * a congestion event: the old path ate it, the new one has not been tried) so it goes again at once,
   * and the timers start over, as after an acknowledgement.
   */
  onPathValidated(now: number, lost: (packet: P) => void): void {
    for (const [packetNumber, packet] of this.#sent) {
      this.#sent.delete(packetNumber);
      this.#declareLost(packetNumber, packet, now, lost);
    }
    this.#consecutiveTimeouts = 0;
    this.#probeSent = false;
    this.#probesDue = 0;
    this.#timerStart = now;
    this.#unansweredSince = Infinity; // the peer answered on the new path: what is sent again waits anew
    this.rtt.clearBackoff();
  }

  /** Forgets everything in flight or declared lost, and any probe due (the connection is over, or draining). */
  clear(): void {
    this.#sent.clear();
    this.#lost.clear();
    this.#probesDue = 0;
    this.#unansweredSince = Infinity;
  }

  #detectLoss(now: number, lost: (packet: P) => void): void {
    const lossDelay = Math.max(1, TIME_THRESHOLD * Math.max(this.rtt.latest, this.rtt.smoothed));
    let newestLost: P | undefined;
    for (const [packetNumber, packet] of this.#sent) {
      if (packetNumber >= this.#largestAcked) break;
      if (this.#largestAcked - packetNumber < PACKET_THRESHOLD && packet.time > now - lossDelay) continue;
      this.#sent.delete(packetNumber);
      this.#declareLost(packetNumber, packet, now, lost);
      if (!packet.mtuProbe) newestLost = packet;
    }
    if (newestLost !== undefined) this.congestion.onCongestion(newestLost.time, now);
  }

  #declareLost(packetNumber: number, packet: P, now: number, lost: (packet: P) => void): void {
    this.stats.packetsLost++;
    this.congestion.onRemoved(packet.bytes);
    this.#lost.set(packetNumber, { packet, until: now + this.rtt.rto });
    if (this.#lost.size > MAX_REMEMBERED_LOST) this.#lost.delete(this.#lost.keys().next().value!);
    lost(packet);
  }

  /** Hands the remembered lost packets `ranges` acknowledges to `acked` (forgetting those past their time first); answers whether there was one. */
  #ackRemembered(ranges: ReadonlyArray<readonly [number, number]>, now: number, acked: (packet: P) => void): boolean {
    let any = false;
    for (const [packetNumber, { packet, until }] of this.#lost) {
      if (until <= now) {
        this.#lost.delete(packetNumber);
        continue;
      }
      if (!acknowledges(ranges, packetNumber)) continue;
      this.#lost.delete(packetNumber);
      this.stats.spuriousLosses++;
      acked(packet);
      any = true;
    }
    return any;
  }
}
