// The evil peer: UDP sockets on 127.0.0.x, an initiator that completes a handshake with a Sluice
// node, and a session that seals and opens data packets in either key phase and sends any frame,
// honest or not. Nothing here hides a decision: every byte it sends is a choice of the caller's.
import { createSocket, type Socket } from "node:dgram";
import { randomBytes, randomInt } from "node:crypto";
import {
  DirectionKeys,
  dataConnectionId,
  dataPacketNumber,
  dataPhase,
  generateKeyPair,
  openData,
  readCookie,
  readResponse,
  sealData,
  withMac2,
  writeIntro,
  type InitiatorState,
  type KeyPair,
  type TrafficSecrets,
} from "./noise.ts";
import {
  INTRO,
  MAX_PLAINTEXT_BYTES,
  PROTOCOL_3_0,
  RESPONSE_STATUS_CODE_MASK,
  decodeFrames,
  elicitsAck,
  encodeFrames,
  packetKind,
  readU32,
  type Address,
  type Frame,
  type PacketRange,
  type ProtocolVersion,
} from "./wire.ts";

export interface Datagram {
  bytes: Uint8Array;
  from: Address;
  at: number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A non-zero u32 connection id. */
export const randomConnectionId = () => randomInt(1, 2 ** 32 - 1);

let lastTimestampUs = 0;
/** Microseconds since the Unix epoch, strictly increasing in this process. */
export function timestampUs(): number {
  lastTimestampUs = Math.max(Date.now() * 1000, lastTimestampUs + 1);
  return lastTimestampUs;
}

/** One UDP socket. Every datagram it gets goes to `handler` if set, else into `inbox`. */
export class EvilSocket {
  readonly address: Address;
  readonly inbox: Datagram[] = [];
  handler: ((d: Datagram) => void) | undefined;
  datagramsSent = 0;
  bytesSent = 0;
  datagramsReceived = 0;
  bytesReceived = 0;
  readonly #socket: Socket;
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    const a = socket.address();
    this.address = { host: a.address, port: a.port };
    socket.on("message", (message, rinfo) => {
      const d = { bytes: new Uint8Array(message), from: { host: rinfo.address, port: rinfo.port }, at: performance.now() };
      this.datagramsReceived++;
      this.bytesReceived += message.length;
      if (this.handler) this.handler(d);
      else this.inbox.push(d);
      this.#wake?.();
    });
  }

  static bind(host = "127.0.0.2", port = 0): Promise<EvilSocket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket("udp4");
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.removeListener("error", reject);
        socket.on("error", () => {}); // an ICMP unreachable must not crash an attacker
        resolve(new EvilSocket(socket));
      });
    });
  }

  send(bytes: Uint8Array, to: Address): void {
    if (this.#closed) return; // a retry timer or an ACK after the test let go of this socket
    this.datagramsSent++;
    this.bytesSent += bytes.length;
    this.#socket.send(bytes, to.port, to.host);
  }

  /** The first datagram (in the inbox or arriving within `timeoutMs`) that `match` accepts, taken out of the inbox. */
  async next(match: (d: Datagram) => boolean = () => true, timeoutMs = 1000): Promise<Datagram | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const index = this.inbox.findIndex(match);
      if (index >= 0) return this.inbox.splice(index, 1)[0];
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/** `count` sockets on `host`, each on its own ephemeral port: one attacker, many "sources". */
export async function bindMany(host: string, count: number): Promise<EvilSocket[]> {
  const sockets: EvilSocket[] = [];
  for (let i = 0; i < count; i += 200) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => EvilSocket.bind(host)))));
  }
  return sockets;
}

/** `count` sockets, each on an IP of its own in 127.<net>.0.0/16: as many "strangers". */
export function bindAcrossIps(net: number, count: number): Promise<EvilSocket[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => EvilSocket.bind(`127.${net}.${(i + 1) >> 8}.${(i + 1) & 255}`)));
}

export const closeSockets = (sockets: EvilSocket[]) => Promise.all(sockets.map((s) => s.close()));

/** A set of packet numbers, as at most 64 ranges from the top down (the lowest forgotten first). */
export class PacketNumbers {
  ranges: PacketRange[] = [];
  has(n: number): boolean {
    return this.ranges.some((r) => r.low <= n && n <= r.high);
  }
  add(low: number, high = low): void {
    const all = [...this.ranges, { low, high }].sort((a, b) => b.high - a.high);
    const merged: PacketRange[] = [];
    for (const r of all) {
      const last = merged[merged.length - 1];
      if (last !== undefined && r.high >= last.low - 1) last.low = Math.min(last.low, r.low);
      else merged.push({ ...r });
    }
    this.ranges = merged.slice(0, 64);
  }
  get largest(): number {
    return this.ranges.length > 0 ? this.ranges[0].high : -1;
  }
}

export interface ReceivedPacket {
  packetNumber: number;
  phase: number;
  frames: Frame[];
  from: Address;
  bytes: number;
}

export interface SessionKeys {
  role: "initiator" | "responder";
  localId: number;
  remoteId: number;
  secrets: TrafficSecrets;
}

/**
 * One side of a connection after the handshake. It answers what an honest peer must (ACKs,
 * CONFIRM_ACK, PATH_RESPONSE: each switchable) and records everything it opens.
 */
export class EvilSession {
  readonly localId: number;
  readonly remoteId: number;
  readonly role: "initiator" | "responder";
  socket: EvilSocket;
  remote: Address;
  sendPhase = 0;
  receivePhase = 0;
  nextPacketNumber = 0;
  autoAck = true;
  answerChallenges = true;
  readonly received: ReceivedPacket[] = [];
  readonly receivedNumbers = new PacketNumbers();
  /** Our packet numbers the peer acknowledged, and how many ACK frames said so. */
  readonly acked = new PacketNumbers();
  ackFrames = 0;
  failedToOpen = 0;
  duplicates = 0;
  /** The peer's message credit: bytes over the concatenation of all messages (64 KiB before any credit frame). */
  messageCreditLimit = 64 * 1024;
  /** The peer's credit per stream (64 KiB before any credit frame). */
  readonly streamCreditLimits = new Map<number, number>();
  /** Our next message's sequence number and where it starts in the concatenation. */
  nextMessage = 0;
  messageBytesSent = 0;
  /** Our next control frame's sequence (numbered from 0 per direction). */
  nextControlSequence = 0;
  readonly #sendKeys: DirectionKeys;
  readonly #receiveKeys: DirectionKeys;
  #waiters: (() => void)[] = [];

  constructor(socket: EvilSocket, remote: Address, keys: SessionKeys) {
    this.socket = socket;
    this.remote = remote;
    this.role = keys.role;
    this.localId = keys.localId;
    this.remoteId = keys.remoteId;
    const initiator = keys.role === "initiator";
    this.#sendKeys = new DirectionKeys(initiator ? keys.secrets.initiatorToResponder : keys.secrets.responderToInitiator);
    this.#receiveKeys = new DirectionKeys(initiator ? keys.secrets.responderToInitiator : keys.secrets.initiatorToResponder);
  }

  /** A sealed packet of `frames`, with the next packet number unless told otherwise. */
  seal(frames: Frame[], o: { packetNumber?: number; phase?: number; connectionId?: number } = {}): Uint8Array {
    const packetNumber = o.packetNumber ?? this.nextPacketNumber++;
    const phase = o.phase ?? this.sendPhase;
    return sealData(this.#sendKeys.key(phase), phase, o.connectionId ?? this.remoteId, packetNumber, encodeFrames(frames));
  }

  /** Seals and sends `frames` (from this session's socket to its remote unless told otherwise); returns the packet. */
  send(frames: Frame[], o: { via?: EvilSocket; to?: Address; packetNumber?: number; phase?: number } = {}): Uint8Array {
    const packet = this.seal(frames, o);
    (o.via ?? this.socket).send(packet, o.to ?? this.remote);
    return packet;
  }

  /** A control frame (0x20–0x2f) with our next control sequence unless told otherwise. */
  control(controlType: number, body: Uint8Array, sequence = this.nextControlSequence++): Frame {
    return { type: "control", controlType, sequence, body };
  }

  /** Control frames of `controlType` the peer sent us, each sequence once, in the order received. */
  controls(controlType: number): Extract<Frame, { type: "control" }>[] {
    const seen = new Set<number>();
    return this.frames().filter(
      (f): f is Extract<Frame, { type: "control" }> => f.type === "control" && f.controlType === controlType && !seen.has(f.sequence) && (seen.add(f.sequence), true),
    );
  }

  /** Moves our sending to the next key phase (a key update we start). */
  updateKey(): void {
    this.sendPhase++;
  }

  /** An ACK of everything received (up to 32 ranges). */
  ackFrame(): Frame {
    return { type: "ack", delayUs: 0, ranges: this.receivedNumbers.ranges.slice(0, 32).map((r) => ({ ...r })) };
  }

  /** Feeds a datagram; true when it was a data packet of ours that opened. */
  handle(d: Datagram): boolean {
    if (packetKind(d.bytes) !== "data" || dataConnectionId(d.bytes) !== this.localId) return false;
    const packetNumber = dataPacketNumber(d.bytes);
    const bit = dataPhase(d.bytes);
    // The receiver's rule: the other phase bit on a packet newer than any authenticated means the next key.
    let phase = this.receivePhase;
    if (bit !== phase % 2) phase = packetNumber > this.receivedNumbers.largest ? phase + 1 : phase - 1;
    const plaintext = phase < 0 ? undefined : openData(this.#receiveKeys.key(phase), d.bytes);
    if (plaintext === undefined) {
      this.failedToOpen++;
      return false;
    }
    if (phase > this.receivePhase) {
      this.receivePhase = phase;
      this.sendPhase = Math.max(this.sendPhase, phase);
    }
    if (this.receivedNumbers.has(packetNumber)) {
      this.duplicates++;
      return true;
    }
    this.receivedNumbers.add(packetNumber);
    const frames = decodeFrames(plaintext);
    this.received.push({ packetNumber, phase, frames, from: d.from, bytes: d.bytes.length });
    for (const f of frames) {
      if (f.type === "ack") {
        this.ackFrames++;
        for (const r of f.ranges) this.acked.add(r.low, r.high);
      }
      if (f.type === "messageCredit") this.messageCreditLimit = Math.max(this.messageCreditLimit, f.byteLimit);
      if (f.type === "streamCredit") this.streamCreditLimits.set(f.stream, Math.max(this.streamCredit(f.stream), f.byteLimit));
      if (f.type === "confirm" && this.role === "responder") this.send([{ type: "confirmAck" }]);
      if (f.type === "pathChallenge" && this.answerChallenges) this.send([{ type: "pathResponse", data: f.data }]);
    }
    if (this.autoAck && elicitsAck(frames) && !frames.some((f) => f.type === "confirm" || f.type === "confirmAck")) {
      this.send([this.ackFrame()]);
    }
    for (const wake of this.#waiters.splice(0)) wake();
    return true;
  }

  /** Every frame received so far, in order. */
  frames(): Frame[] {
    return this.received.flatMap((p) => p.frames);
  }

  /** Waits until `condition` holds (checked after every packet that opens), or `timeoutMs`. */
  async until(condition: () => boolean, timeoutMs = 2000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  streamCredit(stream: number): number {
    return this.streamCreditLimits.get(stream) ?? 64 * 1024;
  }

  /** Waits until the peer's message credit covers a message of `total` bytes; answers its sequence number. */
  async reserveMessage(total: number): Promise<number> {
    const end = this.messageBytesSent + total;
    if (!(await this.until(() => this.messageCreditLimit >= end, 5000))) throw new Error(`no credit for ${end} bytes`);
    this.messageBytesSent = end;
    return this.nextMessage++;
  }

  /** Sends whole messages reliably, together, once the peer's credit covers them. */
  async sendMessages(...messages: Uint8Array[]): Promise<void> {
    let packets: Frame[][] = [];
    for (const m of messages) {
      if (packets.length > 0 && this.messageCreditLimit < this.messageBytesSent + m.length) {
        await this.sendAll(packets); // what the credit covers, so that the peer can give more
        packets = [];
      }
      packets.push(...messagePackets(await this.reserveMessage(m.length), m));
    }
    await this.sendAll(packets);
  }

  /**
   * Sends packets of `frames` with at most `window` unacknowledged, re-sending (as new packets)
   * what stays unacknowledged for `resendMs`: enough reliability to make the peer hold what we mean
   * it to hold. Resolves with how many packets were sent, or throws after `timeoutMs`.
   */
  async sendAll(packets: Frame[][], o: { window?: number; resendMs?: number; timeoutMs?: number } = {}): Promise<number> {
    const window = o.window ?? 64;
    const resendMs = o.resendMs ?? 300;
    const deadline = performance.now() + (o.timeoutMs ?? 10_000);
    const outstanding = new Map<number, { frames: Frame[]; sentAt: number }>();
    let next = 0;
    let sent = 0;
    while (next < packets.length || outstanding.size > 0) {
      for (const n of outstanding.keys()) if (this.acked.has(n)) outstanding.delete(n);
      const now = performance.now();
      if (now > deadline) throw new Error(`sendAll: ${outstanding.size} packets unacknowledged, ${packets.length - next} unsent`);
      for (const [n, p] of outstanding) {
        if (now - p.sentAt < resendMs) continue;
        outstanding.delete(n);
        const packetNumber = this.nextPacketNumber;
        this.send(p.frames);
        outstanding.set(packetNumber, { frames: p.frames, sentAt: now });
        sent++;
      }
      while (next < packets.length && outstanding.size < window) {
        const packetNumber = this.nextPacketNumber;
        this.send(packets[next]);
        outstanding.set(packetNumber, { frames: packets[next++], sentAt: now });
        sent++;
      }
      const ackFrames = this.ackFrames;
      await this.until(() => this.ackFrames > ackFrames, 30);
    }
    return sent;
  }
}

/** The MESSAGE_DATA frames of one message, `fragmentBytes` each, one frame per packet. */
function messagePackets(sequence: number, bytes: Uint8Array, fragmentBytes = MAX_PLAINTEXT_BYTES - 15): Frame[][] {
  const packets: Frame[][] = [];
  let offset = 0;
  do {
    const chunk = bytes.subarray(offset, offset + fragmentBytes);
    packets.push([{ type: "messageData", sequence, total: bytes.length, offset, bytes: chunk }]);
    offset += fragmentBytes;
  } while (offset < bytes.length);
  return packets;
}

export class HandshakeFailed extends Error {}

export interface ConnectOptions {
  version?: ProtocolVersion;
  timestampUs?: number;
  senderId?: number;
  deadlineMs?: number;
  /** Called with every intro sent: a test can capture one for a replay. */
  onIntro?: (intro: Uint8Array) => void;
  /** The socket the first data packet (the CONFIRM) leaves from: another address than the intro's. */
  confirmVia?: EvilSocket;
  /** false: no CONFIRM (the responder's handshake stays pending until the caller sends one). */
  confirm?: boolean;
}

/** An attacker's endpoint: one socket, one static key, handshakes as initiator. */
export class EvilPeer {
  readonly socket: EvilSocket;
  readonly staticKey: KeyPair;
  readonly sessions = new Map<number, EvilSession>();
  cookiesReceived = 0;
  readonly #pending = new Map<number, (d: Datagram) => void>();

  /** A peer on `socket`; unless `shared`, it takes every datagram the socket gets (else feed it `claim`). */
  constructor(socket: EvilSocket, staticKey: KeyPair = generateKeyPair(), shared = false) {
    this.socket = socket;
    this.staticKey = staticKey;
    if (!shared) {
      socket.handler = (d) => {
        if (!this.claim(d)) socket.inbox.push(d);
      };
    }
  }

  static async bind(host = "127.0.0.2", staticKey: KeyPair = generateKeyPair(), port = 0): Promise<EvilPeer> {
    return new EvilPeer(await EvilSocket.bind(host, port), staticKey);
  }

  /** Takes a datagram that belongs to one of our handshakes or sessions; false when it is not ours. */
  claim(d: Datagram): boolean {
    const kind = packetKind(d.bytes);
    if (kind === "data") {
      const session = this.sessions.get(dataConnectionId(d.bytes));
      return session !== undefined && (session.handle(d), true);
    }
    const pending = kind === "response" || kind === "cookie" ? this.#pending.get(readU32(d.bytes, 2)) : undefined;
    return pending !== undefined && (pending(d), true);
  }

  /** Completes a handshake with `remote` as initiator (cookie round trip included) and confirms it. */
  connect(remote: Address, responderStatic: Uint8Array, o: ConnectOptions = {}): Promise<EvilSession> {
    const senderId = o.senderId ?? randomConnectionId();
    const { packet, state } = writeIntro({
      initiator: this.staticKey,
      responderStatic,
      senderId,
      timestampUs: o.timestampUs ?? timestampUs(),
      version: o.version ?? PROTOCOL_3_0,
    });
    return new Promise<EvilSession>((resolve, reject) => {
      let intro = packet;
      const sendIntro = () => {
        o.onIntro?.(intro);
        this.socket.send(intro, remote);
      };
      const retry = setInterval(sendIntro, 200);
      const finish = (error?: Error, session?: EvilSession) => {
        clearInterval(retry);
        clearTimeout(deadline);
        this.#pending.delete(senderId);
        if (error) reject(error);
        else resolve(session!);
      };
      const deadline = setTimeout(() => finish(new HandshakeFailed("no response before the deadline")), o.deadlineMs ?? 3000);
      this.#pending.set(senderId, (d) => {
        if (packetKind(d.bytes) === "cookie") {
          const cookie = readCookie(d.bytes, intro, responderStatic);
          if (cookie === undefined) return;
          this.cookiesReceived++;
          intro = withMac2(intro, cookie);
          sendIntro();
          return;
        }
        const opened = readResponse(d.bytes, state as InitiatorState);
        if (opened === undefined) return;
        if ((opened.status & RESPONSE_STATUS_CODE_MASK) !== 0) return finish(new HandshakeFailed(`response status ${opened.status}`));
        const session = new EvilSession(this.socket, remote, {
          role: "initiator",
          localId: senderId,
          remoteId: opened.responderId,
          secrets: opened.secrets,
        });
        this.sessions.set(senderId, session);
        if (o.confirm !== false) session.send([{ type: "confirm" }], { via: o.confirmVia });
        finish(undefined, session);
      });
      sendIntro();
    });
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}

/**
 * An on-path relay: the client sends to `front`, the relay forwards from `back` to the server and
 * the server's answers back to the last client address. It logs both directions; `intercept` sees
 * each datagram first and can drop it (return false) or inject its own.
 */
export class Relay {
  readonly front: EvilSocket;
  /** The socket the server sees the client at; `rebind()` replaces it, as a NAT that maps a new port. */
  back: EvilSocket;
  readonly #earlierBacks: EvilSocket[] = [];
  readonly server: Address;
  client: Address | undefined;
  readonly toServer: Datagram[] = [];
  readonly toClient: Datagram[] = [];
  intercept: ((d: Datagram, direction: "toServer" | "toClient") => boolean) | undefined;

  private constructor(front: EvilSocket, back: EvilSocket, server: Address) {
    this.front = front;
    this.back = back;
    this.server = server;
    front.handler = (d) => {
      this.client = d.from;
      this.toServer.push(d);
      if (this.intercept?.(d, "toServer") !== false) this.back.send(d.bytes, server);
    };
    this.#listen(back);
  }

  #listen(back: EvilSocket): void {
    back.handler = (d) => {
      this.toClient.push(d);
      if (this.intercept?.(d, "toClient") !== false && this.client) this.front.send(d.bytes, this.client);
    };
  }

  static async open(server: Address, frontHost = "127.0.0.2", backHost = frontHost): Promise<Relay> {
    return new Relay(await EvilSocket.bind(frontHost), await EvilSocket.bind(backHost), server);
  }

  /** From now on the client's datagrams leave from a new socket on `host` (answers to the old one still pass). */
  async rebind(host = this.back.address.host): Promise<void> {
    const back = await EvilSocket.bind(host);
    this.#listen(back);
    this.#earlierBacks.push(this.back);
    this.back = back;
  }

  /** Intros the client sent through this relay. */
  intros(): Uint8Array[] {
    return this.toServer.filter((d) => packetKind(d.bytes) === "intro").map((d) => d.bytes);
  }

  close(): Promise<unknown> {
    return Promise.all([this.front, this.back, ...this.#earlierBacks].map((s) => s.close()));
  }
}

/** Intro-shaped random bytes: kind and wire version right, a non-zero id, everything else random. */
export function randomIntro(): Uint8Array {
  const packet = new Uint8Array(randomBytes(146));
  packet[0] = 0x01;
  packet[1] = 0x02;
  if (readU32(packet, INTRO.senderId) === 0) packet[2] = 1;
  return packet;
}
