// The handshake (Noise IK as the wire spec writes it), cookies and the data-packet keys, from
// node:crypto's X25519, SHA-256, HKDF-SHA256, AES-256-GCM and ChaCha20-Poly1305 plus our BLAKE2s.
// Each function is one step of the spec, named after it, so a reader can hold them side by side.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomBytes,
} from "node:crypto";
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

const PROTOCOL_NAME = "Sluice_IK_25519_AESGCM_SHA256 v3";
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

const isZero = (b: Uint8Array) => b.every((x) => x === 0);
export const sha256 = (...parts: Uint8Array[]) => new Uint8Array(createHash("sha256").update(concat(...parts)).digest());
const hkdf = (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, bytes: number) =>
  new Uint8Array(hkdfSync("sha256", ikm, salt, info, bytes));
export const mac = (key: Uint8Array, bytes: Uint8Array) => blake2s(bytes, key, 16);
const h32 = (bytes: Uint8Array) => blake2s(bytes, undefined, 32);

const ZERO_NONCE = new Uint8Array(12);

function aesGcmSeal(key: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", key, ZERO_NONCE);
  cipher.setAAD(ad);
  return concat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
}

function aesGcmOpen(key: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, ZERO_NONCE);
    decipher.setAAD(ad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return concat(decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final());
  } catch {
    return undefined;
  }
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

// ---- The symmetric state: ck (chaining key) and h (transcript hash) ----

class Transcript {
  ck: Uint8Array;
  h: Uint8Array;
  constructor(ck: Uint8Array, h: Uint8Array) {
    this.ck = ck;
    this.h = h;
  }
  static start(): Transcript {
    const h = sha256(ascii(PROTOCOL_NAME));
    return new Transcript(h, h);
  }
  copy = () => new Transcript(this.ck, this.h);
  mixHash(bytes: Uint8Array): void {
    this.h = sha256(this.h, bytes);
  }
  /** ck, k = HKDF(ck, ikm): returns k. A zero shared secret makes the packet invalid (undefined). */
  mixKey(sharedSecret: Uint8Array): Uint8Array | undefined {
    if (isZero(sharedSecret)) return undefined;
    const out = hkdf(sharedSecret, this.ck, new Uint8Array(0), 64);
    this.ck = out.slice(0, 32);
    return out.slice(32);
  }
  seal(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const sealed = aesGcmSeal(key, this.h, plaintext);
    this.mixHash(sealed);
    return sealed;
  }
  open(key: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    const plaintext = aesGcmOpen(key, this.h, sealed);
    if (plaintext !== undefined) this.mixHash(sealed);
    return plaintext;
  }
  /** T_i→r, T_r→i = HKDF(ck, empty). */
  split(): TrafficSecrets {
    const out = hkdf(new Uint8Array(0), this.ck, new Uint8Array(0), 64);
    return { initiatorToResponder: out.slice(0, 32), responderToInitiator: out.slice(32) };
  }
}

export interface TrafficSecrets {
  initiatorToResponder: Uint8Array;
  responderToInitiator: Uint8Array;
}

// ---- mac1, mac2 and cookies ----

export const mac1Key = (recipientStatic: Uint8Array) => h32(concat(ascii("mac1----"), recipientStatic));
const cookieKey = (responderStatic: Uint8Array) => h32(concat(ascii("cookie--"), responderStatic));

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

export interface IntroOptions {
  /** The initiator's static key. A forger passes someone else's public key with its own secret. */
  initiator: KeyPair;
  responderStatic: Uint8Array;
  senderId: number;
  timestampUs: number;
  version: ProtocolVersion;
  ephemeral?: KeyPair;
  /** Bytes after mac1 (16); zero when the initiator holds no cookie. */
  cookie?: Uint8Array;
}

/** What the initiator keeps to read the RESPONSE. */
export interface InitiatorState {
  transcript: Transcript;
  ephemeral: KeyPair;
  initiator: KeyPair;
  senderId: number;
}

export function writeIntro(o: IntroOptions): { packet: Uint8Array; state: InitiatorState } {
  const ephemeral = o.ephemeral ?? generateKeyPair();
  const packet = new Uint8Array(INTRO_BYTES);
  packet.set(handshakeHeader(KIND.intro, o.senderId));
  packet.set(ephemeral.public, INTRO.ephemeral);
  const t = Transcript.start();
  t.mixHash(packet.subarray(0, 6));
  t.mixHash(o.responderStatic);
  t.mixHash(ephemeral.public);
  const es = t.mixKey(dh(ephemeral.secret, o.responderStatic)) ?? new Uint8Array(32);
  packet.set(t.seal(es, o.initiator.public), INTRO.sealedStatic);
  const ss = t.mixKey(dh(o.initiator.secret, o.responderStatic)) ?? new Uint8Array(32);
  const payload = new Uint8Array(12);
  writeU64(payload, 0, o.timestampUs);
  payload.set(encodeVersion(o.version), 8);
  packet.set(t.seal(ss, payload), INTRO.sealedPayload);
  packet.set(mac(mac1Key(o.responderStatic), packet.subarray(0, INTRO.mac1)), INTRO.mac1);
  if (o.cookie) packet.set(mac(o.cookie, packet.subarray(0, INTRO.mac2)), INTRO.mac2);
  return { packet, state: { transcript: t, ephemeral, initiator: o.initiator, senderId: o.senderId } };
}

export interface OpenedIntro {
  senderId: number;
  ephemeral: Uint8Array;
  initiatorStatic: Uint8Array;
  timestampUs: number;
  version: ProtocolVersion;
  transcript: Transcript;
}

export type IntroRefusal = "badMac" | "decryptFailed";

/** The responder's steps 2 and 5: mac1, then es, S_I, ss, the payload. */
export function readIntro(packet: Uint8Array, responder: KeyPair): OpenedIntro | IntroRefusal {
  if (!mac1Valid(packet, responder.public, INTRO.mac1)) return "badMac";
  const ephemeral = packet.slice(INTRO.ephemeral, INTRO.sealedStatic);
  const t = Transcript.start();
  t.mixHash(packet.subarray(0, 6));
  t.mixHash(responder.public);
  t.mixHash(ephemeral);
  const es = t.mixKey(dh(responder.secret, ephemeral));
  if (es === undefined) return "decryptFailed";
  const initiatorStatic = t.open(es, packet.subarray(INTRO.sealedStatic, INTRO.sealedPayload));
  if (initiatorStatic === undefined) return "decryptFailed";
  const ss = t.mixKey(dh(responder.secret, initiatorStatic));
  if (ss === undefined) return "decryptFailed";
  const payload = t.open(ss, packet.subarray(INTRO.sealedPayload, INTRO.mac1));
  if (payload === undefined) return "decryptFailed";
  return {
    senderId: readU32(packet, INTRO.senderId),
    ephemeral,
    initiatorStatic,
    timestampUs: readU64(payload, 0),
    version: decodeVersion(payload.subarray(8)),
    transcript: t,
  };
}

// ---- RESPONSE ----

export interface ResponsePayload {
  status: number; // 0 ok, 1 version mismatch
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
  packet.set(ephemeral.public, RESPONSE.ephemeral);
  const t = intro.transcript.copy();
  t.mixHash(packet.subarray(0, 6));
  t.mixHash(ephemeral.public);
  t.mixKey(dh(ephemeral.secret, intro.ephemeral)); // ee
  const se = t.mixKey(dh(ephemeral.secret, intro.initiatorStatic)) ?? new Uint8Array(32);
  const plaintext = new Uint8Array(28);
  plaintext[0] = payload.status;
  plaintext.set(encodeVersion(payload.version), 1);
  writeU32(plaintext, 5, payload.responderId);
  plaintext.set(encodeAddress(payload.observed), 9);
  packet.set(t.seal(se, plaintext), RESPONSE.sealedPayload);
  packet.set(mac(mac1Key(intro.initiatorStatic), packet.subarray(0, RESPONSE.mac1)), RESPONSE.mac1);
  return { packet, secrets: t.split() };
}

/** The initiator opens a RESPONSE: ee, se, the payload; undefined when anything fails. */
export function readResponse(
  packet: Uint8Array,
  state: InitiatorState,
): (ResponsePayload & { secrets: TrafficSecrets }) | undefined {
  if (!mac1Valid(packet, state.initiator.public, RESPONSE.mac1)) return undefined;
  const ephemeral = packet.subarray(RESPONSE.ephemeral, RESPONSE.sealedPayload);
  const t = state.transcript.copy();
  t.mixHash(packet.subarray(0, 6));
  t.mixHash(ephemeral);
  if (t.mixKey(dh(state.ephemeral.secret, ephemeral)) === undefined) return undefined;
  const se = t.mixKey(dh(state.initiator.secret, ephemeral));
  if (se === undefined) return undefined;
  const plaintext = t.open(se, packet.subarray(RESPONSE.sealedPayload, RESPONSE.mac1));
  if (plaintext === undefined) return undefined;
  return {
    status: plaintext[0],
    version: decodeVersion(plaintext.subarray(1, 5)),
    responderId: readU32(plaintext, 5),
    observed: decodeAddress(plaintext.subarray(9)),
    secrets: t.split(),
  };
}

// ---- Data packets ----

const PACKET_KEY_INFO = ascii("sluice packet key");
const KEY_UPDATE_INFO = ascii("sluice key update");
const EMPTY = new Uint8Array(0);

const packetKey = (secret: Uint8Array) => hkdf(secret, EMPTY, PACKET_KEY_INFO, 32);
const nextSecret = (secret: Uint8Array) => hkdf(secret, EMPTY, KEY_UPDATE_INFO, 32);

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

const dataNonce = (packetNumber: number) => {
  const nonce = new Uint8Array(12);
  writeU64(nonce, 4, packetNumber);
  return nonce;
};

export function sealData(key: Uint8Array, phase: number, connectionId: number, packetNumber: number, plaintext: Uint8Array): Uint8Array {
  const header = dataHeader(phase, connectionId, packetNumber);
  return concat(header, chachaSeal(key, dataNonce(packetNumber), header, plaintext));
}

export const dataPhase = (packet: Uint8Array) => (packet[0] & KEY_PHASE_BIT) >> 7;
export const dataConnectionId = (packet: Uint8Array) => readU32(packet, 1);
export const dataPacketNumber = (packet: Uint8Array) => readU64(packet, 5);

export function openData(key: Uint8Array, packet: Uint8Array): Uint8Array | undefined {
  const header = packet.subarray(0, DATA_HEADER_BYTES);
  return chachaOpen(key, dataNonce(dataPacketNumber(packet)), header, packet.subarray(DATA_HEADER_BYTES));
}
