// The handshake's messages and key schedule (docs/wire.md, "Handshake"), as pure functions: no
// socket, no clock. Shaped after Noise IK: the initiator knows the responder's static key.
//
//   intro     E, then seal(k_intro){ S_I, version, initiator's connection id }
//             k_intro = HKDF(es)                              only the holder of s_R can open it
//   response  F, then seal(k_response){ status, version, responder's connection id, observed address }
//             keys    = HKDF(es ‖ ss ‖ ee ‖ se, transcript)   only the holder of s_I can derive them
//
// The transcript hash binds the session keys to every byte of the intro and the response header,
// so nothing later can be spliced from another handshake (freenet's flaw: no KDF, no binding). The
// responder learns that the initiator really holds S_I's secret when the first data packet (the
// confirm) opens under the derived keys.
import { ADDRESS_BYTES, readAddress, writeAddress, type Address } from "../wire/address.ts";
import { agree, generateKeyPair, hkdf, importPublicKey, open, seal, sealKey, sha256, type PrivateKey, type PublicKey, type SealKey } from "./crypto.ts";
import type { Framer } from "../wire/framer.ts";
import { readVersion, VERSION_BYTES, writeVersion, type ProtocolVersion } from "../wire/version.ts";
import {
  AEAD_KEY_BYTES, INTRO_BODY_BYTES, INTRO_EPHEMERAL, INTRO_SEALED, KEY_BYTES, RESPONSE_BODY_BYTES, RESPONSE_EPHEMERAL,
  RESPONSE_SEALED, TAG_BYTES,
} from "../wire/constants.ts";

const INTRO_LABEL = "sluice/1 intro";
const SESSION_LABEL = "sluice/1 session";
const AES_KEY_BYTES = 16;
/** Data packets' keys, one per direction (ChaCha20-Poly1305 in the core). */
const DATA_KEY_BYTES = AEAD_KEY_BYTES;

// The sealed bodies' fields (docs/wire.md, "Handshake"); their sizes are the core's (it checks the lengths).
/** Intro body: the initiator's static key, its protocol version, its connection id (u32). */
const INTRO_STATIC = 0;
const INTRO_VERSION = INTRO_STATIC + KEY_BYTES;
const INTRO_CONNECTION = INTRO_VERSION + VERSION_BYTES;
/** Response body: status (u8), the responder's protocol version, its connection id (u32), the initiator's address as seen. */
const RESPONSE_STATUS = 0;
const RESPONSE_VERSION = RESPONSE_STATUS + 1;
const RESPONSE_CONNECTION_ID = RESPONSE_VERSION + VERSION_BYTES;
const RESPONSE_OBSERVED_ADDRESS = RESPONSE_CONNECTION_ID + 4;
// The core checks a handshake datagram's length against these sizes, so the fields must fill them
// exactly: a body laid out short or long here would be cut or padded silently.
if (INTRO_CONNECTION + 4 !== INTRO_BODY_BYTES || RESPONSE_OBSERVED_ADDRESS + ADDRESS_BYTES !== RESPONSE_BODY_BYTES) {
  throw new Error("src/handshake/messages.ts and assembly/wire.ts disagree on the handshake bodies' layout");
}
/** Handshake messages are each sealed once under a key of their own, so a zero nonce is safe. */
const ZERO_NONCE = new Uint8Array(12);

export const STATUS_OK = 0;
export const STATUS_VERSION_MISMATCH = 1;

export interface Identity {
  privateKey: PrivateKey;
  publicKey: Uint8Array;
}

/** Data-packet keys per direction: 32-byte ChaCha20-Poly1305 keys (wire/packet-aead.ts). */
export interface SessionKeys {
  send: Uint8Array;
  receive: Uint8Array;
}

/** What the initiator keeps between its intro and the response. */
export interface IntroState {
  datagram: Uint8Array;
  ephemeral: PrivateKey;
  /** es, computed once for the intro and needed again for the session keys. */
  es: Buffer;
  remoteStatic: PublicKey;
}

export interface OpenedIntro {
  initiatorStatic: Uint8Array;
  version: Required<ProtocolVersion>;
  initiatorConnection: number;
  // Key material the response needs.
  es: Buffer;
  ephemeral: PublicKey;
  datagram: Uint8Array;
}

export interface OpenedResponse {
  status: number;
  version: Required<ProtocolVersion>;
  responderConnection: number;
  observedAddress: Address | undefined;
  keys: SessionKeys;
}

function introKey(es: Uint8Array, ephemeral: Uint8Array, responderStatic: Uint8Array): SealKey {
  return sealKey(hkdf(es, INTRO_LABEL, concat(ephemeral, responderStatic), AES_KEY_BYTES));
}

function sessionKeys(secrets: Uint8Array[], transcript: Uint8Array, initiator: boolean): { response: SealKey; keys: SessionKeys } {
  const okm = hkdf(concat(...secrets), SESSION_LABEL, transcript, AES_KEY_BYTES + 2 * DATA_KEY_BYTES);
  const response = sealKey(okm.subarray(0, AES_KEY_BYTES));
  const toResponder = okm.slice(AES_KEY_BYTES, AES_KEY_BYTES + DATA_KEY_BYTES);
  const toInitiator = okm.slice(AES_KEY_BYTES + DATA_KEY_BYTES);
  return { response, keys: initiator ? { send: toResponder, receive: toInitiator } : { send: toInitiator, receive: toResponder } };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function buildIntro(framer: Framer, me: Identity, remoteStaticRaw: Uint8Array, remoteStatic: PublicKey, connection: number, version: Required<ProtocolVersion>): IntroState {
  const ephemeral = generateKeyPair();
  const es = agree(ephemeral.privateKey, remoteStatic);
  const header = concat(framer.introHeader(), ephemeral.publicKey);
  const body = new Uint8Array(INTRO_BODY_BYTES);
  body.set(me.publicKey, INTRO_STATIC);
  writeVersion(version, body, INTRO_VERSION);
  new DataView(body.buffer).setUint32(INTRO_CONNECTION, connection, true);
  const sealed = seal(introKey(es, ephemeral.publicKey, remoteStaticRaw), ZERO_NONCE, header, [body]);
  return { datagram: concat(header, ...sealed), ephemeral: ephemeral.privateKey, es, remoteStatic };
}

/** The intro's contents, or undefined if it was not sealed to us (or is otherwise bogus). */
export function openIntro(me: Identity, datagram: Uint8Array): OpenedIntro | undefined {
  const ephemeralRaw = datagram.subarray(INTRO_EPHEMERAL, INTRO_SEALED);
  let ephemeral: PublicKey;
  let es: Buffer;
  try {
    ephemeral = importPublicKey(ephemeralRaw);
    es = agree(me.privateKey, ephemeral);
  } catch {
    return undefined; // not a usable X25519 key: a forged or corrupted intro
  }
  const tagAt = datagram.length - TAG_BYTES;
  const body = open(introKey(es, ephemeralRaw, me.publicKey), ZERO_NONCE, datagram.subarray(0, INTRO_SEALED), datagram.subarray(INTRO_SEALED, tagAt), datagram.subarray(tagAt));
  if (body === undefined) return undefined;
  return {
    initiatorStatic: new Uint8Array(body.subarray(INTRO_STATIC, INTRO_STATIC + KEY_BYTES)),
    version: readVersion(body, INTRO_VERSION),
    initiatorConnection: body.readUInt32LE(INTRO_CONNECTION),
    es,
    ephemeral,
    datagram: new Uint8Array(datagram),
  };
}

export interface ResponseFields {
  status: number;
  version: Required<ProtocolVersion>;
  responderConnection: number;
  observedAddress: Address;
}

/** The response to an opened intro and the responder's session keys (undefined if the initiator's key is unusable). */
export function buildResponse(framer: Framer, me: Identity, intro: OpenedIntro, fields: ResponseFields): { datagram: Uint8Array; keys: SessionKeys } | undefined {
  const ephemeral = generateKeyPair();
  let secrets: Uint8Array[];
  try {
    const initiatorStatic = importPublicKey(intro.initiatorStatic);
    secrets = [intro.es, agree(me.privateKey, initiatorStatic), agree(ephemeral.privateKey, intro.ephemeral), agree(ephemeral.privateKey, initiatorStatic)];
  } catch {
    return undefined;
  }
  const header = concat(framer.responseHeader(intro.initiatorConnection), ephemeral.publicKey);
  const { response, keys } = sessionKeys(secrets, sha256(intro.datagram, header), false);
  const body = new Uint8Array(RESPONSE_BODY_BYTES);
  body[RESPONSE_STATUS] = fields.status;
  writeVersion(fields.version, body, RESPONSE_VERSION);
  new DataView(body.buffer).setUint32(RESPONSE_CONNECTION_ID, fields.responderConnection, true);
  writeAddress(fields.observedAddress, body, RESPONSE_OBSERVED_ADDRESS);
  return { datagram: concat(header, ...seal(response, ZERO_NONCE, header, [body])), keys };
}

export function openResponse(me: Identity, intro: IntroState, datagram: Uint8Array): OpenedResponse | undefined {
  const header = datagram.subarray(0, RESPONSE_SEALED);
  let secrets: Uint8Array[];
  try {
    const ephemeral = importPublicKey(datagram.subarray(RESPONSE_EPHEMERAL, RESPONSE_SEALED));
    secrets = [intro.es, agree(me.privateKey, intro.remoteStatic), agree(intro.ephemeral, ephemeral), agree(me.privateKey, ephemeral)];
  } catch {
    return undefined;
  }
  const { response, keys } = sessionKeys(secrets, sha256(intro.datagram, header), true);
  const tagAt = datagram.length - TAG_BYTES;
  const body = open(response, ZERO_NONCE, header, datagram.subarray(RESPONSE_SEALED, tagAt), datagram.subarray(tagAt));
  if (body === undefined) return undefined;
  return {
    status: body[RESPONSE_STATUS]!,
    version: readVersion(body, RESPONSE_VERSION),
    responderConnection: body.readUInt32LE(RESPONSE_CONNECTION_ID),
    observedAddress: readAddress(body, RESPONSE_OBSERVED_ADDRESS),
    keys,
  };
}
