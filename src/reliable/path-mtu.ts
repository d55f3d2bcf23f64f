// Path MTU discovery by the datagram layer itself (DPLPMTUD, RFC 8899, as QUIC does it: RFC 9000
// §14.3), as a state machine with no I/O and no clock of its own. The Session owns one: it packs data
// into `current`, sends a probe of `probeSize` when one is due (PING + PADDING to that exact datagram
// size, ack-eliciting, carrying nothing that is retransmitted), and reports what became of probes and
// of data packets larger than the base.
//
// - Every path carries BASE_DATAGRAM_BYTES (QUIC's 1200): a connection starts there and never goes below.
// - The search tries the ceiling first (most paths carry a 1500-byte Ethernet MTU), then halves the
//   interval between the largest size acknowledged and the smallest that failed, until it is narrower
//   than MIN_SEARCH_STEP_BYTES. One probe is in flight at a time; a size fails after
//   MAX_PROBES_PER_SIZE probes of it are lost. The confirmed size is the largest probe acknowledged.
// - A probe's loss is no congestion signal (the window does not shrink for it: loss-recovery.ts) and
//   costs no retransmission: it carried only PING and PADDING.
// - Black holes: when packets larger than the base keep being lost while none larger is acknowledged
//   (BLACK_HOLE_LOSS_EVENTS loss events in a row, or one retransmission timeout), the path has
//   narrowed: back to the base at once (what was lost is re-sent in base-sized packets: data is kept
//   as byte ranges, not packets), and search again after BLACK_HOLE_COOLDOWN_MS.
// - A search that ended below the ceiling tries again after RAISE_INTERVAL_MS (RFC 8899's
//   PMTU_RAISE_TIMER): the path may have grown.
// - A new path (an address change, a relay) starts over from the base (the host calls restart()).

import { MAX_SEND_DATAGRAM_BYTES } from "../wire/constants.ts";

/** RFC 8899's BASE_PLPMTU: every path carries datagrams of this size (QUIC's 1200, RFC 9000 §14): the floor and the start. */
const BASE_DATAGRAM_BYTES = MAX_SEND_DATAGRAM_BYTES;
/**
 * The default ceiling: the UDP payload of a 1500-byte Ethernet MTU over IPv4 (1500 − 20 − 8). Node
 * and Deno cannot set the don't-fragment bit on a UDP socket, so a probe larger than the first hop's
 * MTU would be fragmented by the kernel and could be acknowledged; at 1472 none is on an Ethernet
 * first hop. Over IPv6, whose header is 20 bytes longer, the ceiling is 20 bytes less (1452).
 */
export const DEFAULT_MAX_DATAGRAM_BYTES = 1472;
/** How much smaller an IPv6 path's ceiling is than the configured one: its header is 40 bytes, IPv4's 20. */
export const IPV6_EXTRA_HEADER_BYTES = 20;
/** RFC 8899's MAX_PROBES: a size fails once this many probes of it are lost. */
const MAX_PROBES_PER_SIZE = 3;
/** The search stops once the sizes still unknown span less than this (quinn's minimum_change): ~1.5% of a datagram. */
const MIN_SEARCH_STEP_BYTES = 20;
/** RFC 8899's PMTU_RAISE_TIMER (quinn's interval): a search that stopped below the ceiling runs again after this. */
const RAISE_INTERVAL_MS = 600_000;
/**
 * After a black hole, the search runs again after this (quinn's black_hole_cooldown), not the raise
 * timer's 10 minutes: the fall-back may have been a spurious one (an outage that timed out any
 * packet, large or not), and a path that really narrowed costs one lost probe per size tried. It
 * bounds flapping to one fall-back (and its retransmission timeout) a minute.
 */
const BLACK_HOLE_COOLDOWN_MS = 60_000;
/** Loss events in a row, each losing a packet larger than the base with none larger acknowledged, that make a black hole. */
const BLACK_HOLE_LOSS_EVENTS = 3;

export interface PathMtuStats {
  /** The largest datagram this connection sends now (data packets are packed to it). */
  pathMtuBytes: number;
  /** Path MTU probes sent (PING + PADDING to the size tried). */
  mtuProbesSent: number;
  /** Path MTU probes declared lost: the path did not carry their size (no congestion signal, nothing re-sent). */
  mtuProbesLost: number;
  /** Falls back to 1200 bytes after packets larger than that went missing (a path that narrowed: a black hole). */
  mtuBlackHoles: number;
}

export class PathMtu {
  /** The largest size this path may try (BASE_DATAGRAM_BYTES: no discovery). */
  #ceiling: number;
  #current = BASE_DATAGRAM_BYTES;
  /** The smallest size known to fail, less one (the search's upper end). */
  #high = BASE_DATAGRAM_BYTES;
  /** The size being searched for, undefined when no search runs. */
  #candidate: number | undefined;
  /** Probes of the candidate lost so far. */
  #losses = 0;
  /** The probe in flight (its number, from 1), or 0. */
  #inFlight = 0;
  #lastProbe = 0;
  /** When the next search starts (Infinity: none planned). */
  #searchAt = Infinity;
  #lossEvents = 0;
  /** A packet larger than the base was declared lost in the loss event being reported. */
  #largeLost = false;
  readonly #stats = { mtuProbesSent: 0, mtuProbesLost: 0, mtuBlackHoles: 0 };

  /** A search starts at once when `ceiling` is above the base. */
  constructor(ceiling: number) {
    this.#ceiling = ceiling;
    this.restart(ceiling);
  }

  /** The largest datagram to send now. */
  get current(): number {
    return this.#current;
  }

  get stats(): PathMtuStats {
    const counts = this.#stats;
    return { pathMtuBytes: this.#current, mtuProbesSent: counts.mtuProbesSent, mtuProbesLost: counts.mtuProbesLost, mtuBlackHoles: counts.mtuBlackHoles };
  }

  /** A new path whose datagrams may be up to `ceiling` (BASE_DATAGRAM_BYTES: no discovery): back to the base, and search it at once. */
  restart(ceiling: number): void {
    this.#ceiling = Math.max(BASE_DATAGRAM_BYTES, ceiling);
    this.#current = BASE_DATAGRAM_BYTES;
    this.#inFlight = 0;
    this.#lossEvents = 0;
    this.#largeLost = false;
    this.#candidate = undefined;
    this.#searchAt = Infinity;
    this.#startSearch();
  }

  /** When handleTimeout() starts a search (Infinity: none planned). */
  get deadline(): number {
    return this.#searchAt;
  }

  handleTimeout(now: number): void {
    if (now >= this.#searchAt) this.#startSearch();
  }

  /** The size of the probe due now (none in flight, a search running), if one is. */
  get probeSize(): number | undefined {
    return this.#inFlight === 0 ? this.#candidate : undefined;
  }

  /** The probe of probeSize went: answers its number, for onProbeAcked/onProbeLost. */
  onProbeSent(): number {
    this.#stats.mtuProbesSent++;
    this.#inFlight = ++this.#lastProbe;
    return this.#inFlight;
  }

  /** Probe `probe` was acknowledged: its size is confirmed (a stale one, from before a restart or fall-back, is ignored). */
  onProbeAcked(probe: number, now: number): void {
    if (probe !== this.#inFlight) return;
    this.#inFlight = 0;
    this.#current = this.#candidate!;
    this.#losses = 0;
    this.#nextCandidate(now);
  }

  /** Probe `probe` was declared lost: after MAX_PROBES_PER_SIZE of its size, that size fails. */
  onProbeLost(probe: number, now: number): void {
    if (probe !== this.#inFlight) return;
    this.#inFlight = 0;
    this.#stats.mtuProbesLost++;
    if (++this.#losses < MAX_PROBES_PER_SIZE) return;
    this.#high = this.#candidate! - 1;
    this.#losses = 0;
    this.#nextCandidate(now);
  }

  /** A data packet of `bytes` was acknowledged: one larger than the base proves the path carries it. */
  onDataAcked(bytes: number): void {
    if (bytes > BASE_DATAGRAM_BYTES) this.#lossEvents = 0;
  }

  /** A data packet of `bytes` was declared lost (reported as one loss event with the others by endLossEvent()). */
  onDataLost(bytes: number): void {
    if (bytes > BASE_DATAGRAM_BYTES) this.#largeLost = true;
  }

  /**
   * The packets an ACK or a timer declared lost were reported: answers true when they make a black
   * hole (then the connection is back at the base). `timedOut`: a retransmission timeout declared them.
   */
  endLossEvent(now: number, timedOut: boolean): boolean {
    if (!this.#largeLost) return false;
    this.#largeLost = false;
    if (this.#current === BASE_DATAGRAM_BYTES) return false; // what was lost left before a fall-back
    if (!timedOut && ++this.#lossEvents < BLACK_HOLE_LOSS_EVENTS) return false;
    this.#stats.mtuBlackHoles++;
    this.#current = BASE_DATAGRAM_BYTES;
    this.#lossEvents = 0;
    this.#inFlight = 0;
    this.#candidate = undefined;
    this.#searchAt = now + BLACK_HOLE_COOLDOWN_MS;
    return true;
  }

  #startSearch(): void {
    this.#searchAt = Infinity;
    this.#high = this.#ceiling;
    this.#losses = 0;
    this.#candidate = this.#ceiling > this.#current ? this.#ceiling : undefined; // the ceiling first: most paths carry it
  }

  /** The next size to try between what is confirmed and what failed, or the end of the search. */
  #nextCandidate(now: number): void {
    if (this.#high - this.#current < MIN_SEARCH_STEP_BYTES) {
      this.#candidate = undefined;
      this.#searchAt = this.#current < this.#ceiling ? now + RAISE_INTERVAL_MS : Infinity;
      return;
    }
    this.#candidate = Math.ceil((this.#current + this.#high) / 2);
  }
}
