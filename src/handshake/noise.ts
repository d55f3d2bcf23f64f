// The handshake's messages and key schedule: Noise_IK_25519_ChaChaPoly_BLAKE2s (`<- s`, `-> e, es, s,
// ss`, `<- e, ee, se`; the suite WireGuard uses), as pure functions over bytes: no socket, no clock, no
// state beyond what they return. X25519 comes from the platform (primitives.ts), BLAKE2s and
// ChaCha20-Poly1305 from the WebAssembly core (core-crypto.ts). docs/wire.md ("Handshake") is the long form.
//
//   INTRO     kind | wire version | sender id | E | seal(S_I) | seal(timestamp ‖ version) | mac1 | mac2
//   RESPONSE  kind | wire version | initiator's id | F | seal(status ‖ version ‖ responder's id ‖ observed address) | mac1 | mac2
//
// The intro proves the initiator's static key (only its holder can compute ss, which keys the
// payload); the timestamp inside makes it fresh. The response proves the responder's static key and
// freshness (ee). The responder learns the initiator holds e as well when the first data packet under
// the new keys opens, so a replayed intro never completes a handshake.
import { ADDRESS_BYTES, readAddress, writeAddress, type Address } from "../wire/address.ts";
import { readVersion, VERSION_BYTES, writeVersion, type ProtocolVersion } from "../wire/version.ts";
import { dh, ephemeralKeyPair, type PrivateKey } from "./primitives.ts";
import {
  HANDSHAKE_CONNECTION, INTRO_BYTES, INTRO_EPHEMERAL, INTRO_MAC1, INTRO_PAYLOAD, INTRO_STATIC, KIND_INTRO,
  KIND_RESPONSE, RESPONSE_BYTES, RESPONSE_EPHEMERAL, RESPONSE_MAC1, RESPONSE_PAYLOAD, WIRE_VERSION,
} from "../wire/constants.ts";

const PROTOCOL_NAME = new TextEncoder().encode("Noise_IK_25519_ChaChaPoly_BLAKE2s");
/** Bound to the keys before anything else, with the intro's first bytes (kind, wire version, sender id). */
const PROLOGUE = new TextEncoder().encode("Sluice v3");
const ZERO_NONCE = new Uint8Array(12);

export const STATUS_OK = 0;
export const STATUS_VERSION_MISMATCH = 1;
/** The status byte's low four bits are the status; this bit says the responder is a gateway. */
const STATUS_MASK = 0x0f;
const RESPONDER_IS_GATEWAY = 0x10;

/** This node's static key pair. */
export interface Identity {
  privateKey: PrivateKey;
  publicKey: Uint8Array;
}

/** One traffic secret per direction; packet keys and their updates derive from them (packet-keys.ts). */
export interface TrafficSecrets {
  send: Uint8Array;
  receive: Uint8Array;
}

/** The symmetric primitives of Noise_*_ChaChaPoly_BLAKE2s (core-crypto.ts, or a test's stand-in). */
export interface NoiseCrypto {
  /** BLAKE2s-256 of the concatenation. */
  hash(parts: readonly Uint8Array[]): Uint8Array;
  /** HMAC-BLAKE2s of the concatenation. */
  hmac(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  /** ChaCha20-Poly1305: ciphertext ‖ tag. */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined;
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);

/** Noise's HKDF with two outputs (§4.3): HMAC-BLAKE2s, no info. */
function hkdf2(crypto: NoiseCrypto, chainingKey: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = crypto.hmac(chainingKey, [input]);
  const first = crypto.hmac(temp, [ONE]);
  return [first, crypto.hmac(temp, [first, TWO])];
}

/** Noise's symmetric state: the chaining key, the transcript hash and the current cipher key. */
class SymmetricState {
  readonly #crypto: NoiseCrypto;
  #ck: Uint8Array;
  #h: Uint8Array;
  #k: Uint8Array | undefined;

  constructor(crypto: NoiseCrypto, ck: Uint8Array, h: Uint8Array, k: Uint8Array | undefined) {
    this.#crypto = crypto;
    this.#ck = ck;
    this.#h = h;
    this.#k = k;
  }

  /** InitializeSymmetric (the name is longer than 32 bytes: hashed), then the prologue. */
  static start(crypto: NoiseCrypto, header: Uint8Array): SymmetricState {
    const h = crypto.hash([PROTOCOL_NAME]);
    const state = new SymmetricState(crypto, h, h, undefined);
    state.mixHash(PROLOGUE, header);
    return state;
  }

  copy(): SymmetricState {
    return new SymmetricState(this.#crypto, this.#ck, this.#h, this.#k);
  }

  mixHash(...data: Uint8Array[]): void {
    this.#h = this.#crypto.hash([this.#h, ...data]);
  }

  /** Mixes a DH result into the chaining key; false (and nothing changes) if the DH failed. */
  mixKey(shared: Uint8Array | undefined): boolean {
    if (shared === undefined) return false;
    [this.#ck, this.#k] = hkdf2(this.#crypto, this.#ck, shared);
    return true;
  }

  /** Seals `plaintext` (tag appended) into `into` at `at`, with the transcript hash as associated data. */
  encryptAndHash(plaintext: Uint8Array, into: Uint8Array, at: number): void {
    const sealed = this.#crypto.seal(this.#k!, ZERO_NONCE, this.#h, plaintext);
    into.set(sealed, at);
    this.mixHash(sealed);
  }

  /** The plaintext of `sealed` (ciphertext ‖ tag), or undefined if it does not authenticate. */
  decryptAndHash(sealed: Uint8Array): Uint8Array | undefined {
    const plaintext = this.#crypto.open(this.#k!, ZERO_NONCE, this.#h, sealed);
    if (plaintext !== undefined) this.mixHash(sealed);
    return plaintext;
  }

  /** The traffic secrets: first initiator → responder, then responder → initiator. */
  split(): [Uint8Array, Uint8Array] {
    return hkdf2(this.#crypto, this.#ck, new Uint8Array(0));
  }
}

/** What the initiator keeps between its intro and the response. */
export interface InitiatorState {
  readonly intro: Uint8Array;
  readonly ephemeral: PrivateKey;
  readonly responderStatic: Uint8Array;
  readonly symmetric: SymmetricState;
}

export interface IntroFields {
  senderId: number;
  timestamp: number;
  version: Required<ProtocolVersion>;
}

/**
 * The intro to `responderStatic` (without its MACs: bytes INTRO_MAC1.. are zero, for the caller to
 * fill), and the state to open the response with. Undefined if `responderStatic` is unusable (a
 * low-order point: the shared secret would be zero).
 */
export function writeIntro(crypto: NoiseCrypto, me: Identity, responderStatic: Uint8Array, fields: IntroFields): InitiatorState | undefined {
  const intro = new Uint8Array(INTRO_BYTES);
  intro[0] = KIND_INTRO;
  intro[1] = WIRE_VERSION;
  new DataView(intro.buffer).setUint32(HANDSHAKE_CONNECTION, fields.senderId, true);
  const ephemeral = ephemeralKeyPair();
  intro.set(ephemeral.publicKey, INTRO_EPHEMERAL);
  const symmetric = SymmetricState.start(crypto, intro.subarray(0, INTRO_EPHEMERAL));
  symmetric.mixHash(responderStatic);
  symmetric.mixHash(ephemeral.publicKey);
  if (!symmetric.mixKey(dh(ephemeral.privateKey, responderStatic))) return undefined;
  symmetric.encryptAndHash(me.publicKey, intro, INTRO_STATIC);
  if (!symmetric.mixKey(dh(me.privateKey, responderStatic))) return undefined;
  const payload = new Uint8Array(8 + VERSION_BYTES);
  writeTimestamp(payload, 0, fields.timestamp);
  writeVersion(fields.version, payload, 8);
  symmetric.encryptAndHash(payload, intro, INTRO_PAYLOAD);
  return { intro, ephemeral: ephemeral.privateKey, responderStatic, symmetric };
}

/** An intro that opened: who sent it, when, and the state to answer it with. */
export interface OpenedIntro extends IntroFields {
  initiatorStatic: Uint8Array;
  initiatorEphemeral: Uint8Array;
  symmetric: SymmetricState;
}

/** Opens an intro sealed to `me` (its MACs already checked); undefined if it is not genuine. */
export function readIntro(crypto: NoiseCrypto, me: Identity, intro: Uint8Array): OpenedIntro | undefined {
  const symmetric = SymmetricState.start(crypto, intro.subarray(0, INTRO_EPHEMERAL));
  symmetric.mixHash(me.publicKey);
  const initiatorEphemeral = intro.slice(INTRO_EPHEMERAL, INTRO_STATIC);
  symmetric.mixHash(initiatorEphemeral);
  if (!symmetric.mixKey(dh(me.privateKey, initiatorEphemeral))) return undefined;
  const initiatorStatic = symmetric.decryptAndHash(intro.subarray(INTRO_STATIC, INTRO_PAYLOAD));
  if (initiatorStatic === undefined || !symmetric.mixKey(dh(me.privateKey, initiatorStatic))) return undefined;
  const payload = symmetric.decryptAndHash(intro.subarray(INTRO_PAYLOAD, INTRO_MAC1));
  if (payload === undefined) return undefined;
  return {
    senderId: new DataView(intro.buffer, intro.byteOffset).getUint32(HANDSHAKE_CONNECTION, true),
    timestamp: readTimestamp(payload, 0),
    version: readVersion(payload, 8),
    initiatorStatic: new Uint8Array(initiatorStatic),
    initiatorEphemeral,
    symmetric,
  };
}

export interface ResponseFields {
  status: number;
  /** The responder talks to strangers: the address it observed is the one everyone sees. */
  gateway: boolean;
  version: Required<ProtocolVersion>;
  /** The responder's connection id (0 when the status refuses). */
  responderId: number;
  /** Where the intro came from, as the responder saw it. */
  observedAddress: Address;
}

/**
 * The response to an opened intro (MACs zero, for the caller) and the responder's traffic secrets.
 * Undefined if the initiator's keys give a zero shared secret.
 */
export function writeResponse(crypto: NoiseCrypto, me: Identity, opened: OpenedIntro, fields: ResponseFields): { response: Uint8Array; secrets: TrafficSecrets } | undefined {
  const response = new Uint8Array(RESPONSE_BYTES);
  response[0] = KIND_RESPONSE;
  response[1] = WIRE_VERSION;
  new DataView(response.buffer).setUint32(HANDSHAKE_CONNECTION, opened.senderId, true);
  const ephemeral = ephemeralKeyPair();
  response.set(ephemeral.publicKey, RESPONSE_EPHEMERAL);
  const symmetric = opened.symmetric.copy();
  symmetric.mixHash(ephemeral.publicKey);
  if (!symmetric.mixKey(dh(ephemeral.privateKey, opened.initiatorEphemeral))) return undefined;
  if (!symmetric.mixKey(dh(ephemeral.privateKey, opened.initiatorStatic))) return undefined;
  const payload = new Uint8Array(1 + VERSION_BYTES + 4 + ADDRESS_BYTES);
  payload[0] = fields.status | (fields.gateway ? RESPONDER_IS_GATEWAY : 0);
  writeVersion(fields.version, payload, 1);
  new DataView(payload.buffer).setUint32(1 + VERSION_BYTES, fields.responderId, true);
  writeAddress(fields.observedAddress, payload, 1 + VERSION_BYTES + 4);
  symmetric.encryptAndHash(payload, response, RESPONSE_PAYLOAD);
  const [toResponder, toInitiator] = symmetric.split();
  return { response, secrets: { send: toInitiator, receive: toResponder } };
}

export interface OpenedResponse {
  status: number;
  gateway: boolean;
  version: Required<ProtocolVersion>;
  responderId: number;
  observedAddress: Address | undefined;
  secrets: TrafficSecrets;
}

/** Opens the response to our intro (its MACs already checked); undefined if it is not genuine. */
export function readResponse(crypto: NoiseCrypto, me: Identity, state: InitiatorState, response: Uint8Array): OpenedResponse | undefined {
  const symmetric = state.symmetric.copy();
  const responderEphemeral = response.subarray(RESPONSE_EPHEMERAL, RESPONSE_PAYLOAD);
  symmetric.mixHash(responderEphemeral);
  if (!symmetric.mixKey(dh(state.ephemeral, responderEphemeral))) return undefined;
  if (!symmetric.mixKey(dh(me.privateKey, responderEphemeral))) return undefined;
  const payload = symmetric.decryptAndHash(response.subarray(RESPONSE_PAYLOAD, RESPONSE_MAC1));
  if (payload === undefined) return undefined;
  const [toResponder, toInitiator] = symmetric.split();
  return {
    status: payload[0]! & STATUS_MASK,
    gateway: (payload[0]! & RESPONDER_IS_GATEWAY) !== 0,
    version: readVersion(payload, 1),
    responderId: new DataView(payload.buffer, payload.byteOffset).getUint32(1 + VERSION_BYTES, true),
    observedAddress: readAddress(payload, 1 + VERSION_BYTES + 4),
    secrets: { send: toResponder, receive: toInitiator },
  };
}

/** Timestamps are microseconds since the Unix epoch, below 2^53, as a u64. */
function writeTimestamp(into: Uint8Array, at: number, value: number): void {
  const view = new DataView(into.buffer, into.byteOffset);
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

function readTimestamp(from: Uint8Array, at: number): number {
  const view = new DataView(from.buffer, from.byteOffset);
  return view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
}
