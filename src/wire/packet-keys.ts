// Data-packet keys and their updates (as QUIC's key update, RFC 9001 §6), as a state machine with no
// I/O and no clock of its own: the connection asks it which key seals the next packet and which key
// may open a received one, and tells it what authenticated.
//
// For each direction, secret_0 is the handshake's traffic secret, secret_{n+1} = HMAC(secret_n,
// "sluice key update" ‖ 0x01), and the key of phase n is HMAC(secret_n, "sluice packet key" ‖ 0x01)
// (HKDF-Expand with HMAC-BLAKE2s, one block). A packet carries n mod 2 in the top bit of byte 0.
// Old keys cannot be computed from new ones; each key is erased once it is no longer needed.
//
// Why keys move on (docs/security.md): no key seals more than KEY_UPDATE_PACKETS packets or serves
// longer than KEY_UPDATE_MS, far inside ChaCha20-Poly1305's limits (RFC 9001 §6.6: integrity 2^36
// forged packets), and no receive key takes more than MAX_FAILED_OPENS forgeries: past that the
// connection moves to fresh keys.

/** HMAC-BLAKE2s (the WebAssembly core's, through the handshake's crypto object). */
export interface Hmac {
  hmac(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
}

const PACKET_KEY_LABEL = new TextEncoder().encode("sluice packet key\x01");
const KEY_UPDATE_LABEL = new TextEncoder().encode("sluice key update\x01");

/** Packets sealed under one key before the sender moves to the next. */
const KEY_UPDATE_PACKETS = 2 ** 30;
/** The longest one key is used before the sender moves to the next (an hour). */
const KEY_UPDATE_MS = 60 * 60 * 1000;
/** Failed decryptions one receive key takes before this side moves to fresh keys. */
const MAX_FAILED_OPENS = 2 ** 20;
/** The previous receive key opens reordered packets for this many RTOs after an update, then it is erased. */
const PREVIOUS_KEY_RTOS = 3;

/** The 32-byte ChaCha20-Poly1305 key of a traffic secret. */
export function packetKey(crypto: Hmac, secret: Uint8Array): Uint8Array {
  return crypto.hmac(secret, [PACKET_KEY_LABEL]);
}

/** The secret of the next key phase. */
export function nextSecret(crypto: Hmac, secret: Uint8Array): Uint8Array {
  return crypto.hmac(secret, [KEY_UPDATE_LABEL]);
}

export interface KeyPhaseLimits {
  updatePackets: number;
  updateMs: number;
  maxFailedOpens: number;
}

export const DEFAULT_KEY_PHASE_LIMITS: Readonly<KeyPhaseLimits> = Object.freeze({
  updatePackets: KEY_UPDATE_PACKETS, updateMs: KEY_UPDATE_MS, maxFailedOpens: MAX_FAILED_OPENS,
});

/** Which key opens a received packet: the current one, the next (the peer moved on) or the previous. */
export type OpenKey = { key: Uint8Array; phase: number };

export class KeyPhases {
  readonly #crypto: Hmac;
  readonly #limits: KeyPhaseLimits;
  // Sending: our phase, its secret and key, how much it was used.
  #sendPhase = 0;
  #sendSecret: Uint8Array;
  #sendKey: Uint8Array;
  #sealed = 0;
  #sendSince: number;
  // Receiving: the peer's current phase, and the keys of the phases around it.
  #receivePhase = 0;
  #receiveSecret: Uint8Array;
  #receiveKey: Uint8Array;
  #nextReceiveKey: Uint8Array | undefined;
  #previousReceiveKey: Uint8Array | undefined;
  #previousUntil = -Infinity;
  #failedOpens = 0;
  /** The peer has sent in our current send phase: it holds our keys, so we may move on again. */
  #peerCaughtUp = false;

  constructor(crypto: Hmac, secrets: { send: Uint8Array; receive: Uint8Array }, now: number, limits: KeyPhaseLimits = DEFAULT_KEY_PHASE_LIMITS) {
    this.#crypto = crypto;
    this.#limits = limits;
    this.#sendSecret = secrets.send;
    this.#sendKey = packetKey(crypto, secrets.send);
    this.#sendSince = now;
    this.#receiveSecret = secrets.receive;
    this.#receiveKey = packetKey(crypto, secrets.receive);
  }

  /** Our send phase: how many key updates this side made or followed. */
  get phase(): number {
    return this.#sendPhase;
  }

  /** The key and phase bit for the next packet sent (moving on first if this key has served its time). */
  sealKey(now: number): { key: Uint8Array; phaseBit: number } {
    const limits = this.#limits;
    const due = this.#sealed >= limits.updatePackets || now - this.#sendSince >= limits.updateMs || this.#failedOpens >= limits.maxFailedOpens;
    if (due && this.#peerCaughtUp) this.#updateSend(now);
    this.#sealed++;
    return { key: this.#sendKey, phaseBit: this.#sendPhase & 1 };
  }

  /**
   * The key to try on a packet with `phaseBit` and `packetNumber`, given the highest packet number
   * authenticated so far: the current key when the bit matches; the next one when it differs on a
   * newer packet (the peer moved on); the previous one (while kept) when it differs on an older one.
   */
  openKey(phaseBit: number, packetNumber: number, largestAuthenticated: number, now: number): OpenKey | undefined {
    if (now >= this.#previousUntil) this.#previousReceiveKey = undefined;
    if (phaseBit === (this.#receivePhase & 1)) return { key: this.#receiveKey, phase: this.#receivePhase };
    if (packetNumber > largestAuthenticated) {
      this.#nextReceiveKey ??= packetKey(this.#crypto, nextSecret(this.#crypto, this.#receiveSecret));
      return { key: this.#nextReceiveKey, phase: this.#receivePhase + 1 };
    }
    return this.#previousReceiveKey === undefined ? undefined : { key: this.#previousReceiveKey, phase: this.#receivePhase - 1 };
  }

  /** A packet opened under `phase` (from openKey): follow the peer to a new phase, with our sending too. */
  authenticated(phase: number, now: number, rtoMs: number): void {
    if (phase === this.#receivePhase + 1) {
      this.#previousReceiveKey = this.#receiveKey;
      this.#previousUntil = now + PREVIOUS_KEY_RTOS * rtoMs;
      this.#receiveSecret = nextSecret(this.#crypto, this.#receiveSecret);
      this.#receiveKey = this.#nextReceiveKey!;
      this.#nextReceiveKey = undefined;
      this.#receivePhase = phase;
      this.#failedOpens = 0;
      if (this.#sendPhase < phase) this.#updateSend(now);
    }
    if (phase === this.#sendPhase) this.#peerCaughtUp = true;
  }

  /** A packet failed to open: counted against the current receive key. */
  failedOpen(): void {
    this.#failedOpens++;
  }

  #updateSend(now: number): void {
    this.#sendSecret = nextSecret(this.#crypto, this.#sendSecret);
    this.#sendKey = packetKey(this.#crypto, this.#sendSecret);
    this.#sendPhase++;
    this.#sealed = 0;
    this.#sendSince = now;
    this.#peerCaughtUp = false;
  }
}
