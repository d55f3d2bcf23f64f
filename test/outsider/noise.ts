// The handshake (Noise_IK_25519_ChaChaPoly_BLAKE2s as the wire spec writes it), cookies and the
// data-packet keys, from node:crypto's X25519 and ChaCha20-Poly1305 plus our BLAKE2s. The Noise
// core is generic (any prologue and payload) and checked against noise-c's IK vector in
// library.test.ts; the Sluice packets are that core with a header in front and MACs behind.
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { blake2s } from "./blake2s.ts";
import {
  COOKIE,
  COOKIE_BYTES,
  DATA_HEADER_BYTES,
  INTRO,
  INTRO_BYTES,
  KEY_PHASE_BIT,
  KIND,
  RESPONSE,
  RESPONSE_BYTES,
  TAG_BYTES,
  dataHeader,
  decodeAddress,
  decodeVersion,
  encodeAddress,
  encodeVersion,
  handshakeHeader,
  readU32,
  readU64,
  writeU32,
  writeU64,
  type Address,
  type ProtocolVersion,
} from "./wire.ts";

const PROTOCOL_NAME = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE_LABEL = "Sluice v3";
const ascii = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

// ---- Primitives ----

export interface KeyPair {
  secret: Uint8Array;
  public: Uint8Array;
}

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");

const privateKeyObject = (secret: Uint8Array) =>
  createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: "der", type: "pkcs8" });
const publicKeyObject = (pub: Uint8Array) =>
  createPublicKey({ key: Buffer.concat([SPKI_X25519, pub]), format: "der", type: "spki" });

export function keyPairFrom(secret: Uint8Array): KeyPair {
  const spki = createPublicKey(privateKeyObject(secret)).export({ format: "der", type: "spki" });
  return { secret: new Uint8Array(secret), public: new Uint8Array(spki.subarray(SPKI_X25519.length)) };
}

export const generateKeyPair = () => keyPairFrom(randomBytes(32));

/** X25519; a low-order point (all-zero result, which OpenSSL refuses to return) gives 32 zero bytes. */
export function dh(secret: Uint8Array, pub: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(diffieHellman({ privateKey: privateKeyObject(secret), publicKey: publicKeyObject(pub) }));
  } catch {
    return new Uint8Array(32);
  }
}

/** HASH and H32: unkeyed BLAKE2s-256. */
const hash = (...parts: Uint8Array[]) => blake2s(concat(...parts));
export const mac = (key: Uint8Array, bytes: Uint8Array) => blake2s(bytes, key, 16);

const HMAC_BLOCK_BYTES = 64;

/** HMAC-BLAKE2s (RFC 2104 with a 64-byte block). */
export function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const block = new Uint8Array(HMAC_BLOCK_BYTES);
  block.set(key.length > HMAC_BLOCK_BYTES ? hash(key) : key);
  const pad = (byte: number) => block.map((b) => b ^ byte);
  return hash(pad(0x5c), hash(pad(0x36), data));
}

/** Noise's HKDF: two 32-byte outputs from a chaining key and input key material. */
function hkdf(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm);
  const first = hmac(temp, Uint8Array.of(1));
  return [first, hmac(temp, concat(first, Uint8Array.of(2)))];
}

function chachaSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  return concat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
}

function chachaOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(ad, { plaintextLength: sealed.length - TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return concat(decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final());
  } catch {
    return undefined;
  }
}

/** Noise's and the data packets' nonce: 4 zero bytes ‖ a counter (8 bytes LE). */
function counterNonce(counter: number): Uint8Array {
  const nonce = new Uint8Array(12);
  writeU64(nonce, 4, counter);
  return nonce;
}

// ---- Noise's symmetric state: ck (chaining key), h (transcript hash), k and its nonce ----

class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  #key: Uint8Array | undefined;
  #nonce: number;
  constructor(ck: Uint8Array, h: Uint8Array, key?: Uint8Array, nonce = 0) {
    this.ck = ck;
    this.h = h;
    this.#key = key;
    this.#nonce = nonce;
  }
  /** InitializeSymmetric: a name longer than 32 bytes is hashed, a shorter one zero-padded. */
  static initialize(protocolName: string): SymmetricState {
    const name = ascii(protocolName);
    const h = name.length > 32 ? hash(name) : concat(name, new Uint8Array(32 - name.length));
    return new SymmetricState(h, h);
  }
  copy(): SymmetricState {
    return new SymmetricState(this.ck, this.h, this.#key, this.#nonce);
  }
  mixHash(bytes: Uint8Array): void {
    this.h = hash(this.h, bytes);
  }
  /** ck, k = HKDF(ck, ikm). A zero shared secret makes the packet invalid: false. */
  mixKey(sharedSecret: Uint8Array): boolean {
    if (sharedSecret.every((x) => x === 0)) return false;
    [this.ck, this.#key] = hkdf(this.ck, sharedSecret);
    this.#nonce = 0;
    return true;
  }
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const sealed = this.#key ? chachaSeal(this.#key, counterNonce(this.#nonce++), this.h, plaintext) : plaintext;
    this.mixHash(sealed);
    return sealed;
  }
  decryptAndHash(sealed: Uint8Array): Uint8Array | undefined {
    const plaintext = this.#key ? chachaOpen(this.#key, counterNonce(this.#nonce++), this.h, sealed) : sealed;
    if (plaintext !== undefined) this.mixHash(sealed);
    return plaintext;
  }
  /** Split: T_i→r, T_r→i = HKDF(ck, empty). */
  split(): TrafficSecrets {
    const [initiatorToResponder, responderToInitiator] = hkdf(this.ck, new Uint8Array(0));
    return { initiatorToResponder, responderToInitiator };
  }
}

export interface TrafficSecrets {
  initiatorToResponder: Uint8Array;
  responderToInitiator: Uint8Array;
}

// ---- Noise IK, message by message (any prologue and payload) ----

/** The initiator after `-> e, es, s, ss`: what it needs to read `<- e, ee, se`. */
export interface InitiatorState {
  symmetric: SymmetricState;
  ephemeral: KeyPair;
  initiator: KeyPair;
}

/** `-> e, es, s, ss` carrying `payload`: E ‖ sealed S_I ‖ sealed payload. */
export function writeIkMessage1(
  prologue: Uint8Array,
  initiator: KeyPair,
  responderStatic: Uint8Array,
  ephemeral: KeyPair,
  payload: Uint8Array,
): { message: Uint8Array; state: InitiatorState } {
  const s = SymmetricState.initialize(PROTOCOL_NAME);
  s.mixHash(prologue);
  s.mixHash(responderStatic); // the pre-message <- s
  s.mixHash(ephemeral.public); // -> e
  s.mixKey(dh(ephemeral.secret, responderStatic)); // es
  const sealedStatic = s.encryptAndHash(initiator.public); // s
  s.mixKey(dh(initiator.secret, responderStatic)); // ss
  const sealedPayload = s.encryptAndHash(payload);
  return { message: concat(ephemeral.public, sealedStatic, sealedPayload), state: { symmetric: s, ephemeral, initiator } };
}

/** What the responder learnt from message 1, and the state to answer it from. */
export interface ResponderState {
  symmetric: SymmetricState;
  ephemeral: Uint8Array;
  initiatorStatic: Uint8Array;
  payload: Uint8Array;
}

export function readIkMessage1(prologue: Uint8Array, responder: KeyPair, message: Uint8Array): ResponderState | undefined {
  const s = SymmetricState.initialize(PROTOCOL_NAME);
  s.mixHash(prologue);
  s.mixHash(responder.public);
  const ephemeral = message.slice(0, 32);
  s.mixHash(ephemeral);
  if (!s.mixKey(dh(responder.secret, ephemeral))) return undefined; // es
  const initiatorStatic = s.decryptAndHash(message.subarray(32, 80));
  if (initiatorStatic === undefined || !s.mixKey(dh(responder.secret, initiatorStatic))) return undefined; // ss
  const payload = s.decryptAndHash(message.subarray(80));
  return payload === undefined ? undefined : { symmetric: s, ephemeral, initiatorStatic, payload };
}

/** `<- e, ee, se` carrying `payload`: F ‖ sealed payload, and the traffic secrets. */
export function writeIkMessage2(
  state: ResponderState,
  ephemeral: KeyPair,
  payload: Uint8Array,
): { message: Uint8Array; secrets: TrafficSecrets } {
  const s = state.symmetric.copy();
  s.mixHash(ephemeral.public);
  s.mixKey(dh(ephemeral.secret, state.ephemeral)); // ee
  s.mixKey(dh(ephemeral.secret, state.initiatorStatic)); // se
  return { message: concat(ephemeral.public, s.encryptAndHash(payload)), secrets: s.split() };
}

export function readIkMessage2(
  state: InitiatorState,
  message: Uint8Array,
): { payload: Uint8Array; secrets: TrafficSecrets } | undefined {
  const s = state.symmetric.copy();
  const ephemeral = message.subarray(0, 32);
  s.mixHash(ephemeral);
  if (!s.mixKey(dh(state.ephemeral.secret, ephemeral))) return undefined; // ee
  if (!s.mixKey(dh(state.initiator.secret, ephemeral))) return undefined; // se
  const payload = s.decryptAndHash(message.subarray(32));
  return payload === undefined ? undefined : { payload, secrets: s.split() };
}

/** A Noise transport message under `key` with counter `nonce` and no associated data. */
export const transportSeal = (key: Uint8Array, nonce: number, plaintext: Uint8Array) =>
  chachaSeal(key, counterNonce(nonce), new Uint8Array(0), plaintext);

// ---- mac1, mac2 and cookies ----

export const mac1Key = (recipientStatic: Uint8Array) => hash(ascii("mac1----"), recipientStatic);
const cookieKey = (responderStatic: Uint8Array) => hash(ascii("cookie--"), responderStatic);

/** The responder's cookie for a source address: MAC(R, observed-address encoding). */
export const cookieFor = (cookieSecret: Uint8Array, source: Address) => mac(cookieSecret, encodeAddress(source));

export function mac1Valid(packet: Uint8Array, recipientStatic: Uint8Array, mac1Offset: number): boolean {
  return equal(mac(mac1Key(recipientStatic), packet.subarray(0, mac1Offset)), packet.subarray(mac1Offset, mac1Offset + 16));
}

export function mac2Valid(intro: Uint8Array, cookie: Uint8Array): boolean {
  return equal(mac(cookie, intro.subarray(0, INTRO.mac2)), intro.subarray(INTRO.mac2));
}

/** The same intro with mac2 computed from `cookie` (the spec: re-sent "the same intro otherwise"). */
export function withMac2(intro: Uint8Array, cookie: Uint8Array): Uint8Array {
  const out = new Uint8Array(intro);
  out.set(mac(cookie, intro.subarray(0, INTRO.mac2)), INTRO.mac2);
  return out;
}

export function writeCookie(intro: Uint8Array, cookie: Uint8Array, responderStatic: Uint8Array): Uint8Array {
  const out = new Uint8Array(COOKIE_BYTES);
  out.set(handshakeHeader(KIND.cookie, readU32(intro, INTRO.senderId)));
  const nonce = randomBytes(12);
  out.set(nonce, COOKIE.nonce);
  out.set(chachaSeal(cookieKey(responderStatic), nonce, intro.subarray(INTRO.mac1, INTRO.mac2), cookie), COOKIE.sealedCookie);
  return out;
}

/** The cookie inside a COOKIE answering `intro`, or undefined when it does not open. */
export function readCookie(packet: Uint8Array, intro: Uint8Array, responderStatic: Uint8Array): Uint8Array | undefined {
  return chachaOpen(
    cookieKey(responderStatic),
    packet.subarray(COOKIE.nonce, COOKIE.sealedCookie),
    intro.subarray(INTRO.mac1, INTRO.mac2),
    packet.subarray(COOKIE.sealedCookie),
  );
}

// ---- INTRO ----

/** The prologue: "Sluice v3" ‖ intro[0..6) (kind, wire version, sender id). */
const introPrologue = (packet: Uint8Array) => concat(ascii(PROLOGUE_LABEL), packet.subarray(0, 6));

export interface IntroOptions {
  /** The initiator's static key. A forger passes someone else's public key with its own secret. */
  initiator: KeyPair;
  responderStatic: Uint8Array;
  senderId: number;
  timestampUs: number;
  version: ProtocolVersion;
  ephemeral?: KeyPair;
  /** The responder's cookie for our address; mac2 is zero without one. */
  cookie?: Uint8Array;
}

export function writeIntro(o: IntroOptions): { packet: Uint8Array; state: InitiatorState } {
  const packet = new Uint8Array(INTRO_BYTES);
  packet.set(handshakeHeader(KIND.intro, o.senderId));
  const payload = new Uint8Array(12);
  writeU64(payload, 0, o.timestampUs);
  payload.set(encodeVersion(o.version), 8);
  const { message, state } = writeIkMessage1(
    introPrologue(packet),
    o.initiator,
    o.responderStatic,
    o.ephemeral ?? generateKeyPair(),
    payload,
  );
  packet.set(message, INTRO.ephemeral);
  packet.set(mac(mac1Key(o.responderStatic), packet.subarray(0, INTRO.mac1)), INTRO.mac1);
  if (o.cookie) packet.set(mac(o.cookie, packet.subarray(0, INTRO.mac2)), INTRO.mac2);
  return { packet, state };
}

export interface OpenedIntro {
  senderId: number;
  initiatorStatic: Uint8Array;
  timestampUs: number;
  version: ProtocolVersion;
  state: ResponderState;
}

export type IntroRefusal = "badMac" | "decryptFailed";

/** The responder's steps 2 and 5: mac1, then es, S_I, ss, the payload. */
export function readIntro(packet: Uint8Array, responder: KeyPair): OpenedIntro | IntroRefusal {
  if (!mac1Valid(packet, responder.public, INTRO.mac1)) return "badMac";
  const state = readIkMessage1(introPrologue(packet), responder, packet.subarray(INTRO.ephemeral, INTRO.mac1));
  if (state === undefined) return "decryptFailed";
  return {
    senderId: readU32(packet, INTRO.senderId),
    initiatorStatic: state.initiatorStatic,
    timestampUs: readU64(state.payload, 0),
    version: decodeVersion(state.payload.subarray(8)),
    state,
  };
}

// ---- RESPONSE ----

export interface ResponsePayload {
  /** Low 4 bits: 0 ok, 1 version mismatch; bit 4: the responder is a gateway (docs/wire.md, after the 3.0 spec). */
  status: number;
  version: ProtocolVersion;
  responderId: number;
  observed: Address;
}

export function writeResponse(
  intro: OpenedIntro,
  payload: ResponsePayload,
  ephemeral: KeyPair = generateKeyPair(),
): { packet: Uint8Array; secrets: TrafficSecrets } {
  const packet = new Uint8Array(RESPONSE_BYTES);
  packet.set(handshakeHeader(KIND.response, intro.senderId));
  const plaintext = new Uint8Array(28);
  plaintext[0] = payload.status;
  plaintext.set(encodeVersion(payload.version), 1);
  writeU32(plaintext, 5, payload.responderId);
  plaintext.set(encodeAddress(payload.observed), 9);
  const { message, secrets } = writeIkMessage2(intro.state, ephemeral, plaintext);
  packet.set(message, RESPONSE.ephemeral);
  packet.set(mac(mac1Key(intro.initiatorStatic), packet.subarray(0, RESPONSE.mac1)), RESPONSE.mac1);
  return { packet, secrets };
}

/** The initiator opens a RESPONSE: mac1, ee, se, the payload; undefined when anything fails. */
export function readResponse(
  packet: Uint8Array,
  state: InitiatorState,
): (ResponsePayload & { secrets: TrafficSecrets }) | undefined {
  if (!mac1Valid(packet, state.initiator.public, RESPONSE.mac1)) return undefined;
  const opened = readIkMessage2(state, packet.subarray(RESPONSE.ephemeral, RESPONSE.mac1));
  if (opened === undefined) return undefined;
  const plaintext = opened.payload;
  return {
    status: plaintext[0],
    version: decodeVersion(plaintext.subarray(1, 5)),
    responderId: readU32(plaintext, 5),
    observed: decodeAddress(plaintext.subarray(9)),
    secrets: opened.secrets,
  };
}

// ---- Data packets ----

/** Phase n's key: HMAC(secret_n, "sluice packet key" ‖ 0x01) (HKDF-Expand, one block). */
const packetKey = (secret: Uint8Array) => hmac(secret, concat(ascii("sluice packet key"), Uint8Array.of(1)));
/** secret_{n+1} = HMAC(secret_n, "sluice key update" ‖ 0x01). */
const nextSecret = (secret: Uint8Array) => hmac(secret, concat(ascii("sluice key update"), Uint8Array.of(1)));

/** The keys of one direction, phase by phase (phase n's secret is n key updates after the traffic secret). */
export class DirectionKeys {
  readonly #secrets: Uint8Array[];
  readonly #keys: Uint8Array[] = [];
  constructor(trafficSecret: Uint8Array) {
    this.#secrets = [trafficSecret];
  }
  key(phase: number): Uint8Array {
    while (this.#secrets.length <= phase) this.#secrets.push(nextSecret(this.#secrets[this.#secrets.length - 1]));
    return (this.#keys[phase] ??= packetKey(this.#secrets[phase]));
  }
}

export function sealData(key: Uint8Array, phase: number, connectionId: number, packetNumber: number, plaintext: Uint8Array): Uint8Array {
  const header = dataHeader(phase, connectionId, packetNumber);
  return concat(header, chachaSeal(key, counterNonce(packetNumber), header, plaintext));
}

export const dataPhase = (packet: Uint8Array) => (packet[0] & KEY_PHASE_BIT) >> 7;
export const dataConnectionId = (packet: Uint8Array) => readU32(packet, 1);
export const dataPacketNumber = (packet: Uint8Array) => readU64(packet, 5);

export function openData(key: Uint8Array, packet: Uint8Array): Uint8Array | undefined {
  const header = packet.subarray(0, DATA_HEADER_BYTES);
  return chachaOpen(key, counterNonce(dataPacketNumber(packet)), header, packet.subarray(DATA_HEADER_BYTES));
}
