// Where a connection sends, and whether that address has proven it is the peer's (RFC 9000 §8.2, §9),
// as a state machine with no I/O and no clock of its own. The listener finds a connection by its id,
// so a connection follows its peer across a NAT rebinding; this decides when it may, and bounds what
// an unproven address can make it send.
//
// - Only an authenticated packet NEWER than any authenticated before moves the path: a reordered or
//   replayed older one from the old address (or anywhere) moves nothing, and a forged one never
//   authenticates.
// - The new address is unvalidated until a PATH_RESPONSE echoes the 8 random bytes of a PATH_CHALLENGE
//   sent there; until then at most MAX_AMPLIFICATION × the bytes received from it may be sent to it
//   (a peer that moved its address to a third party and acknowledged blindly gets at most that).
// - No answer within max(3 RTOs, 1 s): back to the last validated address.
// - Probing (RFC 9000 §9.1): a connection running over a relay probes the peer's direct addresses
//   with PATH_CHALLENGEs of their own (packets that move nothing); the first that is answered is
//   proven both ways, and the connection migrates to it at once, validated.
// - A relay is a fallback, never a destination: once the path is direct and validated, a packet that
//   came through a relay moves it only after the direct address has been silent for the validation
//   bound. The peer may still be sending through the relay for a round trip or two after we moved
//   (it moves when its own probe is answered); following those packets back flapped the path between
//   relay and direct in the netns bed, and a connection could end up relayed with a direct path open.
// - Re-punching: a NAT that rebinds one peer to a new port behind an address-and-port filter (Linux's
//   own, most home routers) cuts a direct path both ways: the other NAT admits only the old port, and
//   the old port leads nowhere. A direct path the peer has acknowledged nothing on for
//   REPUNCH_AFTER_MS is due a re-punch (the host asks the introducer for the peer again: the request
//   itself shows the introducer our new port, and the introduction shows the peer). An introduction
//   naming the peer elsewhere makes the connection punch that address: a few PATH_CHALLENGEs that
//   open our NAT to it; the first answered moves the connection there, proven both ways, as a probe.

import { sameAddress, type Address } from "./address.ts";
import { sameBytes } from "../memory/bytes.ts";

/** Bytes sent to an unvalidated address per byte received from it, at most (QUIC's 3). */
export const MAX_AMPLIFICATION = 3;
const PATH_CHALLENGE_BYTES = 8;
/** Validation gives up after this many RTOs (and at least MIN_VALIDATION_MS). */
const VALIDATION_RTOS = 3;
const MIN_VALIDATION_MS = 1000;
/**
 * A relayed connection probes its peer's direct addresses this often (the punch interval): a path that
 * opens (a NAT that relaxes, a mapping that appears) is found within one interval and a round trip.
 */
export const PROBE_INTERVAL_MS = 1000;
/** ...for this long at that pace; then every PROBE_SLOW_INTERVAL_MS, for as long as the relay is used. */
const PROBE_FAST_MS = 30_000;
const PROBE_SLOW_INTERVAL_MS = 5_000;
/** Direct addresses probed at most (the peer's public one and its local ones). */
const MAX_PROBED = 8;
/** Challenges remembered per probed address: an answer slower than the interval still counts. */
const PROBES_REMEMBERED = 3;
/**
 * A direct connection the rendezvous made (connectVia, or an introduction acted on) whose peer has
 * acknowledged nothing for this long asks its introducer for the peer again (a re-punch; every
 * second while it stays silent), and punches where the introducer sees the peer now: a NAT
 * rebinding behind address-and-port filters cuts the path both ways, which following the peer's
 * packets cannot mend. A live path acknowledges within an RTO or two (a 200 ms floor), and a needless
 * re-punch costs a control frame and a few challenges. Measured in the network-namespace bed: data
 * flowed again ~1 s after a NAT rebound either side mid-transfer; an idle connection is mended once a
 * keep-alive (keepAliveMs) goes unanswered this long. It must work within deadPeerTimeoutMs (10 s).
 */
export const REPUNCH_AFTER_MS = 1000;
const REPUNCH_INTERVAL_MS = 1000;
/** A punch sends this many challenges to the address an introduction named, PUNCH_INTERVAL_MS apart (one lost is no failure). */
const PUNCH_PROBES = 5;
const PUNCH_INTERVAL_MS = 200;

/** A probe to send: PATH_CHALLENGE `data` to `address`. */
export interface Probe {
  address: Address;
  data: Uint8Array;
}

export class PathState {
  readonly #randomBytes: (length: number) => Uint8Array;
  #address: Address;
  #validated = true;
  /** The last validated address, while the current one is not. */
  #fallback: Address | undefined;
  #received = 0;
  #sent = 0;
  #largestAuthenticated = -1;
  /** When an authenticated packet last came from the current address. */
  #heardAt = -Infinity;
  #challenge: Uint8Array | undefined;
  #challengeDueAt = Infinity;
  #giveUpAt = Infinity;
  #rtoMs = 1000;
  /** Direct addresses to probe while the path is a relay, and the challenges each was sent last. */
  #probed: { address: Address; sent: Uint8Array[] }[] = [];
  #probeAt = Infinity;
  #probingSince = 0;
  /** Challenges a punch of a direct path still sends. */
  #punchesLeft = 0;
  /** Since when the peer has acknowledged nothing (the host says: noteUnanswered), and when a re-punch is due. */
  #unansweredSince = Infinity;
  #repunchAt = Infinity;

  /** `address` is where the handshake went: validated by it (or chosen by the application). */
  constructor(address: Address, randomBytes: (length: number) => Uint8Array) {
    this.#address = address;
    this.#randomBytes = randomBytes;
  }

  get address(): Address {
    return this.#address;
  }

  get validated(): boolean {
    return this.#validated;
  }

  /** The highest packet number that authenticated. */
  get largestAuthenticated(): number {
    return this.#largestAuthenticated;
  }

  /**
   * A packet of `bytes` that authenticated, numbered `packetNumber`, from `from`. Answers "moved" when
   * the connection now sends to `from` (unvalidated: a challenge is due). A probe (`probing`: only
   * path frames) moves nothing.
   */
  onAuthenticated(from: Address, packetNumber: number, bytes: number, now: number, rtoMs: number, probing = false): "moved" | undefined {
    const newest = packetNumber > this.#largestAuthenticated;
    if (newest) this.#largestAuthenticated = packetNumber;
    if (sameAddress(from, this.#address)) {
      this.#heardAt = now;
      if (!this.#validated) this.#received += bytes;
      return undefined;
    }
    if (!newest || probing || this.#relayWhileDirectAnswers(from, now, rtoMs)) return undefined;
    return this.#moveTo(from, bytes, now, rtoMs);
  }

  /**
   * The RESPONSE that completed the handshake (`bytes` long, no packet number) came from `from`, not
   * from the address the intros went to: the connection moves there, unvalidated, as after a data
   * packet (an observer can re-send a captured RESPONSE from a victim's address).
   */
  onResponseFrom(from: Address, bytes: number, now: number, rtoMs: number): "moved" | undefined {
    return sameAddress(from, this.#address) ? undefined : this.#moveTo(from, bytes, now, rtoMs);
  }

  #moveTo(from: Address, bytes: number, now: number, rtoMs: number): "moved" {
    this.#heardAt = now;
    if (this.#validated) this.#fallback = this.#address;
    this.#address = from;
    this.#validated = false;
    this.#received = bytes;
    this.#sent = 0;
    this.#rtoMs = rtoMs;
    this.#challenge = this.#randomBytes(PATH_CHALLENGE_BYTES);
    this.#challengeDueAt = now;
    this.#giveUpAt = now + validationBoundMs(rtoMs);
    return "moved";
  }

  /** Whether `from` is a relay while the direct, validated path was heard from within the validation bound. */
  #relayWhileDirectAnswers(from: Address, now: number, rtoMs: number): boolean {
    if (from.relay === undefined || this.#address.relay !== undefined || !this.#validated) return false;
    return now - this.#heardAt < validationBoundMs(rtoMs);
  }

  /** Bytes that may be sent to the current address now. */
  get allowance(): number {
    return this.#validated ? Infinity : MAX_AMPLIFICATION * this.#received - this.#sent;
  }

  onSent(bytes: number): void {
    if (!this.#validated) this.#sent += bytes;
  }

  /** The PATH_CHALLENGE data to send now (again each RTO until answered), if one is due. */
  takeChallenge(now: number): Uint8Array | undefined {
    if (this.#challenge === undefined || now < this.#challengeDueAt) return undefined;
    this.#challengeDueAt = now + this.#rtoMs;
    return this.#challenge;
  }

  /**
   * A PATH_RESPONSE arrived (authenticated, from any address): "validated" if it answers our challenge
   * of the current address, "migrated" if it answers a probe (the connection now runs on that direct
   * address, proven both ways).
   */
  onPathResponse(data: Uint8Array, now: number): "validated" | "migrated" | undefined {
    const probed = this.#probed.find((probe) => probe.sent.some((sent) => sameBytes(sent, data)));
    if (probed !== undefined) {
      this.#address = probed.address;
      this.#heardAt = now;
      this.#stopProbing();
      this.#settle();
      return "migrated";
    }
    const challenge = this.#challenge;
    if (challenge === undefined || !sameBytes(challenge, data)) return undefined;
    this.#settle();
    return "validated";
  }

  /** The path is validated: nothing to fall back to, no challenge running. */
  #settle(): void {
    this.#validated = true;
    this.#fallback = undefined;
    this.#challenge = undefined;
    this.#challengeDueAt = Infinity;
    this.#giveUpAt = Infinity;
  }

  /** While the path is a relay, probe these direct addresses of the peer (its public and local ones). */
  probe(addresses: readonly Address[], now: number): void {
    this.#probed = addresses.filter((address) => address.relay === undefined).slice(0, MAX_PROBED).map((address) => ({ address, sent: [] }));
    this.#probingSince = now;
    this.#probeAt = this.#probed.length > 0 && this.#address.relay !== undefined ? now : Infinity;
  }

  /**
   * The peer is at `address` (an introducer says so) while our direct path to it is elsewhere: punch
   * it (PUNCH_PROBES challenges). Answers false (nothing to do) for the current address, a relay, or
   * a relayed path (its probing covers the peer's addresses already).
   */
  punch(address: Address, now: number): boolean {
    if (address.relay !== undefined || this.#address.relay !== undefined || sameAddress(address, this.#address)) return false;
    this.#probed = [{ address, sent: [] }];
    this.#punchesLeft = PUNCH_PROBES;
    this.#probeAt = now;
    return true;
  }

  /**
   * The peer has acknowledged nothing since `since` (Infinity: nothing awaits its acknowledgement).
   * A direct path silent for REPUNCH_AFTER_MS is due a re-punch (takeRepunch).
   */
  noteUnanswered(since: number): void {
    if (since === this.#unansweredSince) return;
    this.#unansweredSince = since;
    this.#repunchAt = since + REPUNCH_AFTER_MS;
  }

  /** Whether the peer has acknowledged nothing for REPUNCH_AFTER_MS: a re-punch is under way. */
  silent(now: number): boolean {
    return now - this.#unansweredSince >= REPUNCH_AFTER_MS;
  }

  /** Whether a re-punch is due now (then the next is due REPUNCH_INTERVAL_MS later, if still silent). */
  takeRepunch(now: number): boolean {
    if (now < this.#repunchAt) return false;
    this.#repunchAt = now + REPUNCH_INTERVAL_MS;
    return this.#address.relay === undefined;
  }

  /** The probes due now (a fresh challenge to each address): while the path is a relay, or a punch runs. */
  takeProbes(now: number): Probe[] {
    if (now < this.#probeAt) return [];
    const interval = now - this.#probingSince < PROBE_FAST_MS ? PROBE_INTERVAL_MS : PROBE_SLOW_INTERVAL_MS;
    if (this.#punchesLeft > 0) {
      this.#probeAt = --this.#punchesLeft > 0 ? now + PUNCH_INTERVAL_MS : Infinity; // the challenges stay remembered for a late answer
    } else if (this.#address.relay === undefined) {
      // Moved off the relay meanwhile (the peer migrated first): done once that address is validated;
      // until then it may still revert to the relay, and probing resumes.
      if (this.#validated) this.#stopProbing();
      else this.#probeAt = now + interval;
      return [];
    } else this.#probeAt = now + interval;
    return this.#probed.map((probe) => {
      const data = this.#randomBytes(PATH_CHALLENGE_BYTES);
      if (probe.sent.push(data) > PROBES_REMEMBERED) probe.sent.shift();
      return { address: probe.address, data };
    });
  }

  #stopProbing(): void {
    this.#probed = [];
    this.#probeAt = Infinity;
    this.#punchesLeft = 0;
  }

  nextDeadline(): number {
    return Math.min(this.#challengeDueAt, this.#giveUpAt, this.#probeAt, this.#repunchAt);
  }

  /** Answers "reverted" when validation gave up and the connection sends to its last validated address again. */
  handleTimeout(now: number): "reverted" | undefined {
    if (now < this.#giveUpAt) return undefined;
    this.#challenge = undefined;
    this.#challengeDueAt = Infinity;
    this.#giveUpAt = Infinity;
    if (this.#fallback === undefined) return undefined;
    this.#address = this.#fallback;
    this.#fallback = undefined;
    this.#validated = true;
    return "reverted";
  }
}

function validationBoundMs(rtoMs: number): number {
  return Math.max(VALIDATION_RTOS * rtoMs, MIN_VALIDATION_MS);
}
