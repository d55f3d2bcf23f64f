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

import { sameAddress, type Address } from "./address.ts";

/** Bytes sent to an unvalidated address per byte received from it, at most (QUIC's 3). */
export const MAX_AMPLIFICATION = 3;
const PATH_CHALLENGE_BYTES = 8;
/** Validation gives up after this many RTOs (and at least MIN_VALIDATION_MS). */
const VALIDATION_RTOS = 3;
const MIN_VALIDATION_MS = 1000;

export class PathState {
  readonly #randomBytes: (length: number) => Uint8Array;
  #address: Address;
  #validated = true;
  /** The last validated address, while the current one is not. */
  #fallback: Address | undefined;
  #received = 0;
  #sent = 0;
  #largestAuthenticated = -1;
  #challenge: Uint8Array | undefined;
  #challengeDueAt = Infinity;
  #giveUpAt = Infinity;
  #rtoMs = 1000;

  /** `address` is where the handshake completed: validated by it. */
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
   * the connection now sends to `from` (unvalidated: a challenge is due).
   */
  onAuthenticated(from: Address, packetNumber: number, bytes: number, now: number, rtoMs: number): "moved" | undefined {
    const newest = packetNumber > this.#largestAuthenticated;
    if (newest) this.#largestAuthenticated = packetNumber;
    if (sameAddress(from, this.#address)) {
      if (!this.#validated) this.#received += bytes;
      return undefined;
    }
    if (!newest) return undefined;
    if (this.#validated) this.#fallback = this.#address;
    this.#address = from;
    this.#validated = false;
    this.#received = bytes;
    this.#sent = 0;
    this.#rtoMs = rtoMs;
    this.#challenge = this.#randomBytes(PATH_CHALLENGE_BYTES);
    this.#challengeDueAt = now;
    this.#giveUpAt = now + Math.max(VALIDATION_RTOS * rtoMs, MIN_VALIDATION_MS);
    return "moved";
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

  /** A PATH_RESPONSE arrived (authenticated, from any address): "validated" if it answers our challenge. */
  onPathResponse(data: Uint8Array): "validated" | undefined {
    const challenge = this.#challenge;
    if (challenge === undefined || data.length !== challenge.length || !challenge.every((byte, i) => byte === data[i])) return undefined;
    this.#validated = true;
    this.#fallback = undefined;
    this.#challenge = undefined;
    this.#challengeDueAt = Infinity;
    this.#giveUpAt = Infinity;
    return "validated";
  }

  nextDeadline(): number {
    return Math.min(this.#challengeDueAt, this.#giveUpAt);
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
