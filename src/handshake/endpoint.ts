// Every handshake of one transport, as a state machine with no I/O and no clock (in the manner of
// quinn-proto's Endpoint): the host hands it handshake datagrams with `now`, calls processQueued() when
// hasQueuedWork and handleTimeout() at nextDeadline(), and takes datagrams from pollTransmit() and
// outcomes from pollEvent(). Tests drive pairs of endpoints in virtual time.
//
// What it decides (docs/wire.md, "Handshake"; docs/security.md):
// - Cheap checks run synchronously in the listener: mac1, the per-IP intro budget, and under load
//   mac2 (else a COOKIE reply). Only then is an intro queued (bounded) for the expensive part: X25519.
// - An intro is answered only if it opens (proving the initiator's static key), its timestamp is newer
//   than any accepted from that key, and this node talks to that key (a gateway: anyone; otherwise a
//   key it is connecting to, or one it has a connection with, restarted). Replays change nothing.
// - Our own connect()s have a table of their own: strangers never use up their room.
// - Simultaneous open: the higher static key answers; the lower one, having opened the peer's intro,
//   re-sends its own at once, also to the address that intro came from (a symmetric NAT's new port).
// - A responder is established when the first data packet under the new keys opens (the initiator
//   held e as well): a replayed intro never completes.
import { codedError, SluiceError } from "../errors/errors.ts";
import { sameBytes } from "../memory/bytes.ts";
import { addressKey, sameAddress, type Address } from "../wire/address.ts";
import { packetKey } from "../wire/packet-keys.ts";
import { compatible, describeVersion, type ProtocolVersion } from "../wire/version.ts";
import { AcceptRamp, ipKey, isLoopbackSource, KeyedBuckets, KeyedCounts, WindowCounter, type AcceptRampStep } from "./admission.ts";
import { RetrySchedule, type RetryOptions } from "./retry.ts";
import {
  COOKIE_BYTES, HANDSHAKE_CONNECTION, INTRO_BYTES, MAC_BYTES, INTRO_MAC1, INTRO_MAC2, KIND_COOKIE, KIND_INTRO, KIND_RESPONSE,
  RESPONSE_BYTES, RESPONSE_MAC1,
} from "../wire/constants.ts";
import { CookieIssuer, COOKIE_SECRET_MS, mac1Key, openCookieReply, stampMacs, validMac1, type MacPrimitives } from "./macs.ts";
import type { PreparedMac } from "./core-crypto.ts";
import type { NoiseCrypto } from "./noise.ts";
import {
  readIntro, readResponse, STATUS_OK, STATUS_VERSION_MISMATCH, writeIntro, writeResponse,
  type Identity, type InitiatorState, type OpenedIntro, type TrafficSecrets,
} from "./noise.ts";
import { NewestTimestamps, nextTimestamp } from "./replay.ts";

/** A responder waits this long for the initiator's first data packet (freenet: 5 s). */
export const CONFIRM_TIMEOUT_MS = 5000;
/** Intros and responses waiting for their X25519 work. */
export const HANDSHAKE_WORK_QUEUE = 64;
/**
 * Response decryptions one connect() spends at most (a genuine responder needs one per intro re-send),
 * from the addresses its intros go to, and as many again from anywhere else. Apart, because whoever
 * sees an intro (its id is in the clear) and knows our key can forge RESPONSEs whose mac1 is valid:
 * from its own address, 16 of them used up the whole budget and the genuine RESPONSE was refused.
 */
const MAX_RESPONSES_PER_CONNECT = 16;
/**
 * Addresses one connect() sends each intro to (a peer's LAN and public addresses, a relay): the first
 * that answers wins. Each costs one intro per re-send, so this bounds what a connect() can send.
 */
const MAX_CANDIDATE_ADDRESSES = 8;
/**
 * Intros an address only claimed (a peer's local addresses, which nobody observed it at) gets at
 * most, over one connect(): a LAN answers the first, so 5 (the first second at the default 200 ms)
 * leave room for loss and a loaded host. Anyone can claim any address, so this bounds what an
 * introduction can make a node send to a third party: 5 intros per claimed address, not the ~15 of
 * the whole schedule (measured by the outsider suite before this bound: ~61 intros per introduction).
 */
export const CLAIMED_ADDRESS_INTROS = 5;
/** Initiator keys whose newest timestamp is remembered after their handshake or connection ended. */
const MAX_REMEMBERED_INITIATORS = 65_536;
/** Source IPs whose intro budget is remembered at once. */
const MAX_TRACKED_IPS = 65_536;
/**
 * COOKIE replies in all, per second (a burst of a quarter of that): a reply's send costs more than
 * everything else an intro costs (~6–8 µs of CPU for a UDP send here), so under a flood from many
 * addresses most intros are dropped after mac1 instead of answered. A legitimate initiator re-sends.
 */
const COOKIES_PER_SECOND = 1000;

export interface HandshakeLimits {
  /** Inbound handshakes waiting for the initiator's first data packet, in all. */
  maxHandshakes: number;
  /** ... and per source IP (IPv6: per /64). */
  maxHandshakesPerIp: number;
  /** Our own connect()s in progress (a table of their own, never shared with strangers). */
  maxConnecting: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Intro decryptions per source IP: this many at once... */
  introBurstPerIp: number;
  /** ...refilled at this rate per second. */
  introsPerIpPerSecond: number;
  /** More intro decryptions than this in the current second means "under load": cookies required. 0: always. */
  underLoadIntrosPerSecond: number;
  /** A gateway's accept ramp; [] for none. */
  acceptRamp: readonly AcceptRampStep[];
}

export interface EndpointConfig {
  identity: Identity;
  /** A gateway answers intros from anyone; other nodes only from keys they connect to or are connected with. */
  gateway: boolean;
  version: Required<ProtocolVersion>;
  retry: Required<RetryOptions>;
  limits: HandshakeLimits;
  /** BLAKE2s, HMAC and ChaCha20-Poly1305 (the WebAssembly core's: core-crypto.ts). */
  crypto: MacPrimitives & NoiseCrypto;
  random: () => number;
  randomBytes: (length: number) => Uint8Array;
  /** A connection id not in use (the host owns the id space). */
  newId: () => number;
  /** Opens a data packet under a packet key (the responder's proof that the initiator holds e). */
  openData: (key: Uint8Array, datagram: Uint8Array) => { plaintext: Uint8Array; packetNumber: number } | undefined;
  /** Counts a handshake datagram that went nowhere, by reason (now, or once its queued work ran). */
  countDrop: (reason: HandshakeDropReason) => void;
}

export type HandshakeDropReason =
  | "malformed" | "badMac" | "cookieRequired" | "rateLimited" | "replayed" | "unknownSender" | "overCapacity" | "queueFull"
  | "decryptFailed" | "versionMismatch" | "handshakeRedundant";

export interface Transmit {
  datagram: Uint8Array;
  to: Address;
}

export interface Connected {
  type: "connected";
  role: "initiator" | "responder";
  localId: number;
  remoteId: number;
  remoteKey: Uint8Array;
  /**
   * Where to send, proven or chosen: the intro's source, where the RESPONSE went (responder), or
   * where the RESPONSE came from if the intros went there, else the first address they went to (initiator).
   */
  address: Address;
  /**
   * Where the packet that completed this side came from (the first data packet, or the RESPONSE).
   * Anyone can send it from anywhere (a stranger with its own keys, an observer re-sending a captured
   * one): when it is not `address`, the connection moves there unvalidated, as after any move.
   */
  arrivedFrom: Address;
  secrets: TrafficSecrets;
  /** Initiator: our address as the responder saw it. */
  observedAddress: Address | undefined;
  /** Initiator: the responder said it is a gateway (its view of our address is the world's). */
  peerIsGateway: boolean;
  /** The connect() this connection answers, if any (a simultaneous open answers it as responder). */
  connectId: number | undefined;
  /** Responder: the data packet that proved the initiator, opened. */
  firstData: { plaintext: Uint8Array; packetNumber: number } | undefined;
}

export interface ConnectFailed {
  type: "connectFailed";
  connectId: number;
  error: SluiceError;
}

export type HandshakeEvent = Connected | ConnectFailed;

/** One of our connect()s. */
interface Connecting {
  id: number;
  remoteKey: Uint8Array;
  keyHex: string;
  /** Where its intros go: every one of these, on each re-send, while its #introsLeft lasts. */
  addresses: Address[];
  /** Intros each of `addresses` may still get (Infinity: the schedule's whole). */
  introsLeft: number[];
  state: InitiatorState;
  schedule: RetrySchedule;
  /** RESPONSEs decrypted: [from an address its intros go to, from anywhere else]. */
  responsesTried: [number, number];
}

/** An intro we answered: waiting for the initiator's first data packet. */
interface Answering {
  id: number;
  remoteKey: Uint8Array;
  keyHex: string;
  remoteId: number;
  timestamp: number;
  intro: Uint8Array;
  response: Uint8Array;
  secrets: TrafficSecrets;
  /**
   * The key of the initiator's first packets (phase 0), derived at the first DATA packet and kept:
   * deriving it for each (an HMAC, four allocations) made a forged 30-byte packet at a pending id
   * cost ~11 µs instead of ~2 µs (measured).
   */
  receiveKey: Uint8Array | undefined;
  address: Address;
  ip: string;
  deadline: number;
}

/** A live connection's peer, as the endpoint needs to know it (replays, restarts, per-IP counts). */
interface Peer {
  localId: number;
  /** The newest intro timestamp accepted from it (-1: we were the initiator). */
  timestamp: number;
  ip: string;
  inbound: boolean;
  /** When we completed this connection as its initiator (-Infinity: we were the responder). */
  initiatedAt: number;
}

interface Work {
  kind: typeof KIND_INTRO | typeof KIND_RESPONSE;
  datagram: Uint8Array;
  from: Address;
  ip: string;
}

export interface EndpointStats {
  handshakesCompleted: number;
  handshakesFailed: number;
  cookiesSent: number;
  /** Inbound handshakes waiting for a confirm now. */
  answering: number;
  /** Our connect()s in progress now. */
  connecting: number;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");

/** Whether an intro carries a mac2 (one made with a cookie: not all zeros). */
function hasMac2(intro: Uint8Array): boolean {
  for (let i = INTRO_MAC2; i < INTRO_MAC2 + MAC_BYTES; i++) if (intro[i] !== 0) return true;
  return false;
}

/** An intro's mac1 as a number (its first 48 bits): a map key that costs no string (a match is checked in full). */
function macKey(intro: Uint8Array): number {
  const view = new DataView(intro.buffer, intro.byteOffset + INTRO_MAC1, 6);
  return view.getUint32(0, true) * 2 ** 16 + view.getUint16(4, true);
}

/**
 * Whether two intros are the same one, their mac2 aside: mac1 covers every byte before it, and mac2
 * (a cookie's proof of the sender's address) is stamped anew when a COOKIE reply comes. A re-send
 * with a cookie is a copy of the intro sent without one; refused as a replay before, it cost a
 * genuine initiator its connect (159 of a storm's 1,000 peers' intros, issue 13's scale section).
 */
function sameIntro(a: Uint8Array, b: Uint8Array): boolean {
  return sameBytes(a.subarray(0, INTRO_MAC2), b.subarray(0, INTRO_MAC2));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export class HandshakeEndpoint {
  readonly #config: EndpointConfig;
  readonly #limits: HandshakeLimits;
  /** Our mac1 key, prepared: every handshake packet to us is checked against it. */
  readonly #mac1: PreparedMac;
  readonly #cookies: CookieIssuer;
  readonly #introBudget: KeyedBuckets;
  readonly #introsDecrypted = new WindowCounter();
  readonly #cookieBudget = new KeyedBuckets(COOKIES_PER_SECOND / 4, COOKIES_PER_SECOND, 1);
  readonly #acceptRamp: AcceptRamp;
  readonly #answeringPerIp = new KeyedCounts();
  readonly #connectionsPerIp = new KeyedCounts();
  #inboundConnections = 0;
  #outboundConnections = 0;
  readonly #recent = new NewestTimestamps(MAX_REMEMBERED_INITIATORS);

  readonly #connecting = new Map<number, Connecting>();
  readonly #connectingByKey = new Map<string, Connecting>();
  readonly #answering = new Map<number, Answering>();
  readonly #answeringByKey = new Map<string, Answering>();
  /** Answered intros by their mac1 (a digest of the whole intro): a re-sent copy costs no X25519. */
  readonly #answeringByMac = new Map<number, Answering>();
  readonly #peers = new Map<string, Peer>();
  /** Cookies responders gave us, by their key, with when they were given (one per connect() at most). */
  readonly #cookieJar = new Map<string, { cookie: Uint8Array; at: number }>();

  readonly #work: Work[] = [];
  /** The intros in #work by their mac1: a copy re-sent while its first waits costs no X25519 either. */
  readonly #queuedIntros = new Map<number, Uint8Array>();
  /** Intros in #work, in all and per source IP: each may take a handshake slot once decrypted. */
  #queuedIntroCount = 0;
  readonly #queuedIntrosPerIp = new KeyedCounts();
  readonly #transmits: Transmit[] = [];
  readonly #events: HandshakeEvent[] = [];
  readonly #stats = { handshakesCompleted: 0, handshakesFailed: 0, cookiesSent: 0 };

  constructor(config: EndpointConfig, now: number) {
    this.#config = config;
    this.#limits = config.limits;
    this.#mac1 = config.crypto.prepareMac(mac1Key(config.crypto, config.identity.publicKey), MAC_BYTES);
    this.#cookies = new CookieIssuer(config.crypto, config.identity.publicKey, config.randomBytes, now);
    this.#introBudget = new KeyedBuckets(config.limits.introBurstPerIp, config.limits.introsPerIpPerSecond, MAX_TRACKED_IPS);
    this.#acceptRamp = new AcceptRamp(config.limits.acceptRamp, now);
  }

  stats(): EndpointStats {
    return { ...this.#stats, answering: this.#answering.size, connecting: this.#connecting.size };
  }

  // ---------------------------------------------------------------- our connect()s

  /**
   * Starts connecting to the holder of `remoteKey` at `addresses` (its intros go to each: the first
   * that answers wins); the outcome comes as an event with connectId = the answer. A connect() to a
   * key already being connected to joins it (its addresses are added, up to MAX_CANDIDATE_ADDRESSES).
   * `claimed` addresses (a peer's word, nobody observed it there) get CLAIMED_ADDRESS_INTROS at most.
   * Throws a RangeError for a key no handshake can use (a low-order point), or when maxConnecting
   * connect()s are in progress or maxConnections are open; nothing is left behind then.
   */
  connect(remoteKey: Uint8Array, addresses: readonly Address[], now: number, retry: Required<RetryOptions> = this.#config.retry, claimed: readonly Address[] = []): number {
    const keyHex = hex(remoteKey);
    const pending = this.#connectingByKey.get(keyHex);
    if (pending !== undefined) {
      this.#addCandidates(pending, addresses, claimed);
      return pending.id;
    }
    if (this.#connecting.size >= this.#limits.maxConnecting) {
      throw codedError(RangeError, "ERR_OUT_OF_RANGE", `too many connects in progress (options.maxConnecting = ${this.#limits.maxConnecting})`, HandshakeEndpoint.prototype.connect);
    }
    if (this.#outboundConnections >= this.#limits.maxConnections && !this.#peers.has(keyHex)) {
      throw codedError(RangeError, "ERR_OUT_OF_RANGE", `too many connections (options.maxConnections = ${this.#limits.maxConnections})`, HandshakeEndpoint.prototype.connect);
    }
    // The intro's DHs with the key refuse a low-order point (its shared secret would be zero): no
    // probe DH beforehand (it cost a key pair and a DH, ~120 µs of every connect's first intro).
    const id = this.#config.newId();
    const state = writeIntro(this.#config.crypto, this.#config.identity, remoteKey, { senderId: id, timestamp: nextTimestamp(Date.now()), version: this.#config.version });
    if (state === undefined) {
      throw codedError(RangeError, "ERR_INVALID_ARG_VALUE", "The argument 'publicKey' is not a usable X25519 public key: a low-order point (its shared secret would be all zeros)", HandshakeEndpoint.prototype.connect);
    }
    const connecting: Connecting = {
      id, remoteKey: new Uint8Array(remoteKey), keyHex, addresses: [], introsLeft: [], state,
      schedule: new RetrySchedule(retry, now, this.#config.random), responsesTried: [0, 0],
    };
    this.#addCandidates(connecting, addresses, claimed);
    this.#stampIntro(connecting, now);
    this.#connecting.set(id, connecting);
    this.#connectingByKey.set(keyHex, connecting);
    this.#resend(connecting, now);
    return id;
  }

  /** Gives up on a connect() (its caller aborted): no event follows. */
  cancel(connectId: number): void {
    const connecting = this.#connecting.get(connectId);
    if (connecting !== undefined) this.#endConnecting(connecting);
  }

  /** Whether `id` is one of our pending handshakes (connect()s or answered intros). */
  owns(id: number): boolean {
    return this.#connecting.has(id) || this.#answering.has(id);
  }

  // ---------------------------------------------------------------- the listener's calls (cheap, synchronous)

  /**
   * An INTRO, RESPONSE or COOKIE datagram (already classified by the wire parser; `datagram` is the
   * caller's: copied if kept). Cheap checks only; expensive work is queued (see processQueued).
   */
  handleDatagram(kind: number, datagram: Uint8Array, from: Address, now: number): void {
    if (kind === KIND_INTRO && datagram.length === INTRO_BYTES) this.#admitIntro(datagram, from, now);
    else if (kind === KIND_RESPONSE && datagram.length === RESPONSE_BYTES) this.#admitResponse(datagram, from);
    else if (kind === KIND_COOKIE && datagram.length === COOKIE_BYTES) this.#handleCookie(datagram, from, now);
    else this.#config.countDrop("malformed");
  }

  /**
   * A DATA datagram for `id`, one of our answered intros: the initiator's confirm (or its first data)
   * establishes the connection if it opens. Answers false if `id` is not ours.
   */
  handleData(id: number, datagram: Uint8Array, from: Address, now: number): boolean {
    const answering = this.#answering.get(id);
    if (answering === undefined) return this.#connecting.has(id) ? (this.#config.countDrop("unknownSender"), true) : false;
    answering.receiveKey ??= packetKey(this.#config.crypto, answering.secrets.receive);
    const opened = this.#config.openData(answering.receiveKey, datagram);
    if (opened === undefined) {
      this.#config.countDrop("decryptFailed");
      return true;
    }
    this.#endAnswering(answering);
    const connecting = this.#connectingByKey.get(answering.keyHex);
    if (connecting !== undefined) this.#endConnecting(connecting); // a simultaneous open: answered by this
    this.#stats.handshakesCompleted++;
    this.#addPeer(answering.keyHex, { localId: answering.id, timestamp: answering.timestamp, ip: answering.ip, inbound: connecting === undefined, initiatedAt: -Infinity });
    this.#events.push({
      type: "connected", role: "responder", localId: answering.id, remoteId: answering.remoteId, remoteKey: answering.remoteKey,
      address: answering.address, arrivedFrom: from, secrets: answering.secrets, observedAddress: undefined, peerIsGateway: false, connectId: connecting?.id, firstData: opened,
    });
    return true;
  }

  /** Connection `localId` with `remoteKey` ended: its peer's newest timestamp is remembered, its slot freed. */
  connectionEnded(remoteKey: Uint8Array, localId: number): void {
    const keyHex = hex(remoteKey);
    const peer = this.#peers.get(keyHex);
    if (peer === undefined || peer.localId !== localId) return; // replaced by a newer connection meanwhile
    this.#removePeer(keyHex, peer);
  }

  // ---------------------------------------------------------------- the queued, expensive part

  get hasQueuedWork(): boolean {
    return this.#work.length > 0;
  }

  /** Runs the X25519 work of up to `budget` queued datagrams (the host calls this off the listener). */
  processQueued(now: number, budget = HANDSHAKE_WORK_QUEUE): void {
    for (let done = 0; done < budget && this.#work.length > 0; done++) {
      const work = this.#work.shift()!;
      if (work.kind === KIND_INTRO) {
        const key = macKey(work.datagram);
        if (this.#queuedIntros.get(key) === work.datagram) this.#queuedIntros.delete(key);
        this.#queuedIntroCount--;
        this.#queuedIntrosPerIp.remove(work.ip);
        this.#processIntro(work, now);
      } else this.#processResponse(work, now);
    }
  }

  // ---------------------------------------------------------------- timers and output

  nextDeadline(): number {
    let deadline = Infinity;
    for (const connecting of this.#connecting.values()) deadline = Math.min(deadline, connecting.schedule.nextDeadline());
    for (const answering of this.#answering.values()) deadline = Math.min(deadline, answering.deadline);
    return deadline;
  }

  handleTimeout(now: number): void {
    for (const connecting of [...this.#connecting.values()]) {
      if (connecting.schedule.nextDeadline() <= now) this.#resend(connecting, now);
    }
    for (const answering of [...this.#answering.values()]) {
      if (answering.deadline <= now) {
        this.#endAnswering(answering);
        this.#stats.handshakesFailed++;
      }
    }
  }

  pollTransmit(): Transmit | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): HandshakeEvent | undefined {
    return this.#events.shift();
  }

  // ---------------------------------------------------------------- intros

  #admitIntro(datagram: Uint8Array, from: Address, now: number): void {
    const macs = this.#config.crypto;
    if (!validMac1(macs, datagram, INTRO_MAC1, this.#mac1)) return this.#config.countDrop("badMac");
    const ip = ipKey(from.host);
    const key = macKey(datagram);
    const copyOf = this.#answeringByMac.get(key);
    const sameSource = copyOf !== undefined && sameAddress(copyOf.address, from);
    if (copyOf !== undefined && (sameSource || !this.#underLoad(now)) && sameIntro(copyOf.intro, datagram)) {
      // The initiator did not get our response and repeats its intro, or the intro reached us first
      // from another address: the same response again, no crypto, never larger than the intro.
      if (!this.#introBudget.tryTake(ip, now)) return this.#config.countDrop("rateLimited");
      return this.#answerAgain(copyOf, from);
    }
    // Under load only a proven address (a valid mac2) gets further; everyone else gets a cookie. The
    // per-IP budgets of proven and unproven senders are apart, so a sender spoofing an address cannot
    // use up the budget of the one who holds it.
    const proven = this.#underLoad(now);
    if (proven) {
      // An intro with no cookie at all (mac2 zero) costs no BLAKE2s more unless it is answered.
      const cookie = hasMac2(datagram) ? this.#cookies.cookieFor(from, now) : undefined;
      if (cookie === undefined || !this.#cookies.validMac2(datagram, INTRO_MAC2, cookie)) {
        if (!this.#introBudget.tryTake(`${ip} cookie`, now) || !this.#cookieBudget.tryTake("all", now)) return this.#config.countDrop("rateLimited");
        this.#stats.cookiesSent++;
        this.#transmits.push({ datagram: this.#cookies.reply(datagram, INTRO_MAC1, cookie ?? this.#cookies.cookieFor(from, now)), to: from });
        return this.#config.countDrop("cookieRequired");
      }
    }
    if (!this.#introBudget.tryTake(proven ? `${ip} proven` : ip, now)) return this.#config.countDrop("rateLimited");
    if (copyOf !== undefined && sameIntro(copyOf.intro, datagram)) {
      // A copy from another address, under load, with a cookie that proves that address (a NAT that
      // moved the initiator to a new port after our response was lost): the same response, there.
      // It takes no slot: the handshake it belongs to holds one already (an outsider's test found it
      // refused as over capacity when every slot was taken).
      return this.#answerAgain(copyOf, from);
    }
    const queued = this.#queuedIntros.get(key);
    if (queued !== undefined && sameIntro(queued, datagram)) return this.#config.countDrop("handshakeRedundant");
    // What the decryption would find no room for is dropped before it: with every handshake slot
    // taken, a storm's intros cost a whole X25519 each before this (1,223 of them in one storm).
    // Intros already queued count as taking a slot, so a burst gets no more decryptions than slots.
    if (!this.#slotFree(ip, this.#queuedIntroCount, this.#queuedIntrosPerIp.count(ip))) return this.#config.countDrop("overCapacity");
    const copy = new Uint8Array(datagram);
    if (!this.#queue({ kind: KIND_INTRO, datagram: copy, from, ip })) return;
    this.#queuedIntros.set(key, copy);
    this.#queuedIntroCount++;
    this.#queuedIntrosPerIp.add(ip);
  }

  #underLoad(now: number): boolean {
    const threshold = this.#limits.underLoadIntrosPerSecond;
    return threshold === 0 || this.#introsDecrypted.count(now) >= threshold || this.#answering.size * 2 >= this.#limits.maxHandshakes;
  }

  /** A copy of `answering`'s intro: the same response again, to `to` (no crypto, smaller than the intro). */
  #answerAgain(answering: Answering, to: Address): void {
    this.#transmits.push({ datagram: answering.response, to });
    this.#config.countDrop("handshakeRedundant");
  }

  /** Whether `work` was queued (else it is counted as dropped). */
  #queue(work: Work): boolean {
    if (this.#work.length >= HANDSHAKE_WORK_QUEUE) {
      this.#config.countDrop("queueFull");
      return false;
    }
    this.#work.push(work);
    return true;
  }

  #processIntro(work: Work, now: number): void {
    this.#introsDecrypted.add(now);
    const opened = readIntro(this.#config.crypto, this.#config.identity, work.datagram);
    if (opened === undefined) return this.#config.countDrop("decryptFailed");
    const keyHex = hex(opened.initiatorStatic);
    const connecting = this.#connectingByKey.get(keyHex);
    if (connecting !== undefined && compareBytes(this.#config.identity.publicKey, opened.initiatorStatic) < 0) {
      // Simultaneous open, and the peer answers. Its intro shows a way in from where it came (a
      // symmetric NAT maps a new port per destination): send our intro back there at once. One
      // intro per intro received, never more: a replayed intro from a spoofed address gains nothing.
      // Its timestamp is remembered, so once connected a replay of it is refused as any other is.
      if (opened.timestamp < this.#recent.get(keyHex)) return this.#config.countDrop("replayed");
      this.#recent.record(keyHex, opened.timestamp);
      this.#sendIntro(connecting, work.from);
      return this.#config.countDrop("handshakeRedundant");
    }
    if (!this.#fresh(keyHex, opened, work)) return;
    const peer = this.#peers.get(keyHex);
    if (!this.#config.gateway && connecting === undefined && peer === undefined) return this.#config.countDrop("unknownSender");
    // A simultaneous open's straggler: we completed as initiator a moment ago and our proof is on its
    // way, which completes the peer's end too. Answering it as well gave each side a second
    // connection that replaced the first, the one its application held (the intro can first reach
    // us after we connected: each side's relay rung starts on its own clock). Decided here, on our
    // own authenticated state: the other side dropping responses while it answered an intro let a
    // replayed intro (after a restart that emptied its timestamp memory) fail its connects. A peer
    // that really restarted within this window gets its answer once the window has passed.
    if (peer !== undefined && now - peer.initiatedAt < this.#config.retry.deadlineMs) return this.#config.countDrop("handshakeRedundant");
    // A version we do not speak is answered so (the initiator's connect() fails saying why), and takes
    // no slot and nothing of the accept ramp.
    const agreed = compatible(this.#config.version, opened.version);
    if (agreed && !this.#admit(work.ip, peer === undefined && connecting === undefined, isLoopbackSource(work.from), now)) return this.#config.countDrop("overCapacity");
    this.#recent.record(keyHex, opened.timestamp); // answered: a copy of it is a replay from now on
    const id = agreed ? this.#config.newId() : 0;
    const written = writeResponse(this.#config.crypto, this.#config.identity, opened, {
      status: agreed ? STATUS_OK : STATUS_VERSION_MISMATCH, gateway: this.#config.gateway, version: this.#config.version, responderId: id, observedAddress: work.from,
    });
    if (written === undefined) return this.#config.countDrop("decryptFailed");
    stampMacs(this.#config.crypto, written.response, RESPONSE_MAC1, mac1Key(this.#config.crypto, opened.initiatorStatic), undefined);
    this.#transmits.push({ datagram: written.response, to: work.from });
    if (!agreed) return this.#config.countDrop("versionMismatch");
    const previous = this.#answeringByKey.get(keyHex);
    if (previous !== undefined) this.#endAnswering(previous); // a newer intro from the same key replaces it
    const answering: Answering = {
      id, remoteKey: opened.initiatorStatic, keyHex, remoteId: opened.senderId, timestamp: opened.timestamp, intro: work.datagram,
      response: written.response, secrets: written.secrets, receiveKey: undefined, address: work.from, ip: work.ip, deadline: now + CONFIRM_TIMEOUT_MS,
    };
    this.#answering.set(id, answering);
    this.#answeringByKey.set(keyHex, answering);
    this.#answeringByMac.set(macKey(work.datagram), answering);
    this.#answeringPerIp.add(work.ip);
  }

  /**
   * Whether the intro is newer than anything accepted from its key. A copy of the intro we are
   * answering gets the same response again (lost, or seen first from another address); every other
   * old one is dropped unanswered.
   */
  #fresh(keyHex: string, opened: OpenedIntro, work: Work): boolean {
    const answering = this.#answeringByKey.get(keyHex);
    if (answering !== undefined && opened.timestamp === answering.timestamp && sameIntro(answering.intro, work.datagram)) {
      // Copies are answered at admission; one gets here only past a collision of their 48-bit keys.
      this.#answerAgain(answering, work.from);
      return false;
    }
    const newest = Math.max(this.#recent.get(keyHex), this.#peers.get(keyHex)?.timestamp ?? -1, answering?.timestamp ?? -1);
    if (opened.timestamp <= newest) {
      this.#config.countDrop("replayed");
      return false;
    }
    return true;
  }

  /** A pending-handshake slot free, in all and for `ip`, with `queued` more (`queuedFromIp` from it) counted as holding one. */
  #slotFree(ip: string, queued: number, queuedFromIp: number): boolean {
    return this.#answering.size + queued < this.#limits.maxHandshakes && this.#answeringPerIp.count(ip) + queuedFromIp < this.#limits.maxHandshakesPerIp;
  }

  /** Room for one more inbound handshake from `ip` (a stranger also needs the accept ramp and a connection slot). */
  #admit(ip: string, stranger: boolean, loopback: boolean, now: number): boolean {
    const limits = this.#limits;
    if (!this.#slotFree(ip, 0, 0)) return false;
    if (!stranger) return true;
    if (this.#inboundConnections + this.#answering.size >= limits.maxConnections) return false;
    if (this.#connectionsPerIp.count(ip) + this.#answeringPerIp.count(ip) >= limits.maxConnectionsPerIp) return false;
    return this.#acceptRamp.tryTake(ip, now, loopback);
  }

  // ---------------------------------------------------------------- responses and cookies

  #admitResponse(datagram: Uint8Array, from: Address): void {
    const connecting = this.#connecting.get(this.#destinationId(datagram));
    if (connecting === undefined) return this.#config.countDrop("unknownSender");
    if (!validMac1(this.#config.crypto, datagram, RESPONSE_MAC1, this.#mac1)) return this.#config.countDrop("badMac");
    const elsewhere = connecting.addresses.some((address) => sameAddress(address, from)) ? 0 : 1;
    if (connecting.responsesTried[elsewhere]! >= MAX_RESPONSES_PER_CONNECT) return this.#config.countDrop("rateLimited");
    connecting.responsesTried[elsewhere]!++;
    this.#queue({ kind: KIND_RESPONSE, datagram: new Uint8Array(datagram), from, ip: ipKey(from.host) });
  }

  #processResponse(work: Work, now: number): void {
    const connecting = this.#connecting.get(this.#destinationId(work.datagram));
    if (connecting === undefined) return this.#config.countDrop("unknownSender"); // settled meanwhile
    const opened = readResponse(this.#config.crypto, this.#config.identity, connecting.state, work.datagram);
    if (opened === undefined) return this.#config.countDrop("decryptFailed");
    if (opened.status === STATUS_VERSION_MISMATCH || !compatible(this.#config.version, opened.version)) {
      this.#config.countDrop("versionMismatch");
      return this.#fail(connecting, new SluiceError("ERR_SLUICE_VERSION_MISMATCH", `protocol version mismatch: the peer speaks ${describeVersion(opened.version)}, this node ${describeVersion(this.#config.version)}`));
    }
    if (opened.status !== STATUS_OK || opened.responderId === 0) return this.#config.countDrop("malformed");
    this.#endConnecting(connecting);
    this.#stats.handshakesCompleted++;
    const timestamp = this.#peers.get(connecting.keyHex)?.timestamp ?? -1;
    this.#addPeer(connecting.keyHex, { localId: connecting.id, timestamp, ip: ipKey(work.from.host), inbound: false, initiatedAt: now });
    this.#events.push({
      type: "connected", role: "initiator", localId: connecting.id, remoteId: opened.responderId, remoteKey: connecting.remoteKey,
      // As heard (an IPv4 address in the mapped form a dual-stack socket reports), if the intros went there.
      address: connecting.addresses.some((address) => sameAddress(address, work.from)) ? work.from : connecting.addresses[0]!, arrivedFrom: work.from,
      secrets: opened.secrets, observedAddress: opened.observedAddress, peerIsGateway: opened.gateway, connectId: connecting.id, firstData: undefined,
    });
  }

  #handleCookie(datagram: Uint8Array, from: Address, now: number): void {
    const connecting = this.#connecting.get(this.#destinationId(datagram));
    // Only from where this connect sends its intros: anyone who saw an intro can seal a COOKIE that
    // opens, and one from elsewhere both overwrote the cookie held and drew an intro to its source
    // (a review found both).
    if (connecting === undefined || !connecting.addresses.some((address) => sameAddress(address, from))) return this.#config.countDrop("unknownSender");
    const introMac1 = connecting.state.intro.subarray(INTRO_MAC1, INTRO_MAC2);
    const cookie = openCookieReply(this.#config.crypto, datagram, connecting.remoteKey, introMac1);
    if (cookie === undefined) return this.#config.countDrop("decryptFailed");
    this.#cookieJar.set(connecting.keyHex, { cookie, at: now });
    connecting.schedule.responderLoaded();
    this.#stampIntro(connecting, now);
    // At once (the cookie proves the way back works), but once between two scheduled re-sends: an
    // observer can seal COOKIEs that open (spoofing the peer's address), and each with a new cookie
    // made one more intro (200 forged COOKIEs, 205 intros, in an outsider's test).
    if (connecting.schedule.takeExtraAttempt()) this.#sendIntro(connecting, from);
  }

  // ---------------------------------------------------------------- helpers

  #destinationId(datagram: Uint8Array): number {
    return new DataView(datagram.buffer, datagram.byteOffset).getUint32(HANDSHAKE_CONNECTION, true);
  }

  /** mac1 for the responder, mac2 with its cookie if we hold a fresh one. */
  #stampIntro(connecting: Connecting, now: number): void {
    const held = this.#cookieJar.get(connecting.keyHex);
    const cookie = held !== undefined && now - held.at < COOKIE_SECRET_MS ? held.cookie : undefined;
    if (held !== undefined && cookie === undefined) this.#cookieJar.delete(connecting.keyHex);
    stampMacs(this.#config.crypto, connecting.state.intro, INTRO_MAC1, mac1Key(this.#config.crypto, connecting.remoteKey), cookie);
  }

  #resend(connecting: Connecting, now: number): void {
    const due = connecting.schedule.poll(now);
    if (due === "expired") {
      return this.#fail(connecting, new SluiceError("ERR_SLUICE_CONNECT_TIMEOUT",
        `connect to ${connecting.addresses.map((address) => addressKey(address.host, address.port, address.relay)).join(", ")} failed: no valid answer after ${connecting.schedule.attempts} intros within ${Math.round(connecting.schedule.deadlineAt - connecting.schedule.startedAt)} ms ` +
        (connecting.schedule.responderIsLoaded
          ? "(the peer is up but loaded: it answered with COOKIE replies only)"
          : "(the peer is down, is not a gateway and not connecting to us, or its public key is not the one given; or it turns this address away unanswered: a young gateway's accept ramp, or many connects at once from one IP address)"),
      ));
    }
    if (due !== "send") return;
    connecting.addresses.forEach((address, i) => {
      if (connecting.introsLeft[i]! <= 0) return;
      connecting.introsLeft[i]!--;
      this.#sendIntro(connecting, address);
    });
  }

  /** `addresses` get the whole schedule, `claimed` ones CLAIMED_ADDRESS_INTROS at most. */
  #addCandidates(connecting: Connecting, addresses: readonly Address[], claimed: readonly Address[]): void {
    for (const address of addresses) this.#addCandidate(connecting, address, Infinity);
    for (const address of claimed) this.#addCandidate(connecting, address, CLAIMED_ADDRESS_INTROS);
  }

  #addCandidate(connecting: Connecting, address: Address, intros: number): void {
    const known = connecting.addresses.findIndex((candidate) => sameAddress(candidate, address));
    if (known >= 0) connecting.introsLeft[known] = Math.max(connecting.introsLeft[known]!, intros); // claimed, then observed there
    else if (connecting.addresses.length < MAX_CANDIDATE_ADDRESSES) {
      connecting.addresses.push({ ...address });
      connecting.introsLeft.push(intros);
    }
  }

  #sendIntro(connecting: Connecting, to: Address): void {
    this.#transmits.push({ datagram: connecting.state.intro, to });
  }

  /** A new connection with `keyHex`; a previous one with the same key is replaced (its slot freed). */
  #addPeer(keyHex: string, peer: Peer): void {
    const previous = this.#peers.get(keyHex);
    if (previous !== undefined) this.#removePeer(keyHex, previous);
    this.#peers.set(keyHex, peer);
    this.#connectionsPerIp.add(peer.ip);
    if (peer.inbound) this.#inboundConnections++;
    else this.#outboundConnections++;
  }

  #removePeer(keyHex: string, peer: Peer): void {
    this.#peers.delete(keyHex);
    this.#connectionsPerIp.remove(peer.ip);
    if (peer.inbound) this.#inboundConnections--;
    else this.#outboundConnections--;
    this.#recent.record(keyHex, peer.timestamp);
  }

  #fail(connecting: Connecting, error: SluiceError): void {
    this.#endConnecting(connecting);
    this.#stats.handshakesFailed++;
    this.#events.push({ type: "connectFailed", connectId: connecting.id, error });
  }

  #endConnecting(connecting: Connecting): void {
    this.#connecting.delete(connecting.id);
    this.#connectingByKey.delete(connecting.keyHex);
    this.#cookieJar.delete(connecting.keyHex);
  }

  #endAnswering(answering: Answering): void {
    this.#answering.delete(answering.id);
    if (this.#answeringByKey.get(answering.keyHex) === answering) this.#answeringByKey.delete(answering.keyHex);
    const key = macKey(answering.intro);
    if (this.#answeringByMac.get(key) === answering) this.#answeringByMac.delete(key);
    this.#answeringPerIp.remove(answering.ip);
  }
}
