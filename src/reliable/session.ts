// A connection's reliable delivery, as a state machine with no I/O and no clock (in the manner of
// quinn-proto): the host feeds it authenticated plaintexts and `now`, takes plaintexts to seal and send
// from pollTransmit(), and calls handleTimeout() at nextDeadline(). Tests drive it in virtual time.
//
// What it does (docs/design.md explains the choices):
// - Every packet has a fresh packet number; the peer acknowledges packet numbers (ACK ranges), and the
//   data a lost packet carried is sent again in a new packet. Pure ACK packets are never acknowledged
//   nor retransmitted. Karn's rule holds by construction, as in QUIC: a packet is sent once, so the
//   acknowledgement of the packet an RTT sample comes from is never the acknowledgement of another.
// - Loss (loss-recovery.ts): three packets or 9/8 RTT behind an acknowledged one (RFC 9002 §6.1), a
//   tail-loss probe, the RFC 6298 retransmission timeout; the connection fails after
//   `maxRetransmissions` consecutive timeouts.
// - Messages are streams of declared length delivered whole and in order; byte streams deliver bytes
//   in order per stream. Both are flow controlled by credit the receiver grants as its reader consumes,
//   so a reader that stops makes the writer wait instead of memory grow.
// - Congestion: NewReno with pacing (congestion.ts).

import { DATA_HEADER_BYTES, MAX_DATA_PLAINTEXT_BYTES, TAG_BYTES } from "../wire.ts";
import { MAX_DATAGRAM_SIZE_BYTES, Pacer } from "./congestion.ts";
import {
  CLOSE_APPLICATION, MAX_ACK_RANGES, MESSAGE_DATA_HEADER_BYTES, PacketWriter, parseFrames, RESET_ABORTED, RESET_IDLE,
  STREAM_DATA_HEADER_BYTES, type FrameVisitor,
} from "./frames.ts";
import {
  INITIAL_MESSAGE_CREDIT_BYTES, INITIAL_STREAM_CREDIT_BYTES, INITIAL_STREAMS_CREDIT, MESSAGES_AHEAD, type ReliabilityConfig,
} from "./options.ts";
import { Inbound, type CreditsSent } from "./inbound.ts";
import { LossRecovery } from "./loss-recovery.ts";
import { RangeSet } from "./range-set.ts";
import { SendStream } from "./send-stream.ts";

/** The longest a receiver holds an acknowledgement (a protocol constant: the sender's probe timer counts on it). */
export const MAX_ACK_DELAY_MS = 25;
/** Unacknowledged ack-eliciting packets that make the receiver acknowledge at once (freenet's 20). */
export const ACK_ELICITING_THRESHOLD = 20;
/**
 * The first packets of a connection are acknowledged one by one (as Chromium's QUIC does for its
 * first 100): slow start grows per ACK, and a window of 10 must not sit out the 25 ms ACK delay.
 */
const ACK_EVERY_PACKET_UNTIL = 100;
/** Resets are written while this much room is left, so a packet of control frames still carries data. */
const RESET_ROOM_BYTES = 600;
/** Reasons kept for reset outgoing streams (the oldest dropped beyond this). */
const MAX_RESET_REASONS = 64;
/** After a CLOSE either way, keep answering retransmitted CLOSEs for this many RTOs. */
const DRAIN_RTOS = 3;

interface SentData {
  stream: SendStream;
  offset: number;
  length: number;
  fin: boolean;
}

/** A packet in flight, and what it carried (its credit frames in CreditsSent's fields). */
interface SentPacket extends CreditsSent {
  time: number;
  bytes: number;
  data: SentData[];
  resets: OutStream[];
  close: boolean;
}

interface OutMessage {
  sequence: number;
  /** Where the message starts in the concatenation of all messages: what message credit counts. */
  start: number;
  stream: SendStream;
}

interface OutStream {
  id: number;
  stream: SendStream;
  /** The peer's credit: data bytes below this offset may go. */
  limit: number;
  /** When the application last wrote (or opened it): the writer's inactivity clock. */
  lastWrite: number;
  /** Why it was reset (then its RESET frame is due or sent), else undefined. */
  reset: { reason: string; code: number } | undefined;
}


export type SessionState = "open" | "closing" | "draining" | "closed";

export interface SessionStats {
  rttMs: number;
  rttVariationMs: number;
  minRttMs: number;
  rtoMs: number;
  congestionWindowBytes: number;
  bytesInFlight: number;
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  ackOnlyPackets: number;
  tailLossProbes: number;
  retransmissionTimeouts: number;
  messagesSent: number;
  messagesReceived: number;
  streamsOpened: number;
  streamsAccepted: number;
  /** Incoming messages or streams the peer broke (over a limit, past their end...): each failed alone. */
  streamErrors: number;
  /** Authenticated packets whose frames did not parse. */
  malformedPackets: number;
  /** Data beyond the credit we granted. */
  flowControlViolations: number;
  sendBufferedBytes: number;
  /** The keep-alive interval now: 5 s, doubling while pings go unanswered, up to 60 s. */
  keepAliveIntervalMs: number;
}

export interface Transmit {
  packetNumber: number;
  /** The plaintext, in parts to be sealed in order. */
  parts: Uint8Array[];
}

export class Session {
  readonly #config: ReliabilityConfig;
  readonly #recovery: LossRecovery<SentPacket>;
  readonly #pacer = new Pacer();
  readonly #writer = new PacketWriter(MAX_DATA_PLAINTEXT_BYTES);
  #state: SessionState = "open";
  #error: Error | undefined;

  // Sending packets.
  #nextPacketNumber = 0;
  #pacingAt = Infinity;

  // Receiving packets.
  readonly #received = new RangeSet();
  #largestReceived = -1;
  #largestReceivedTime = 0;
  #newSinceAck = false;
  #elicitingSinceAck = 0;
  #ackDeadline = Infinity;
  #ackNow = false;
  #lastReceiveTime: number;

  // Keep-alive and close.
  #keepAliveInterval: number;
  #lastPingTime = -Infinity;
  #pingDue = false;
  #closeDue = false;
  #closeQueued = false;
  #drainUntil = Infinity;

  // Outgoing messages and streams.
  readonly #outMessages: OutMessage[] = [];
  /** Index in #outMessages of the first message with bytes never sent. */
  #nextNewMessage = 0;
  readonly #lostMessages = new Set<OutMessage>();
  #nextMessageSequence = 0;
  #messageBytesQueued = 0;
  #peerMessageLimit = INITIAL_MESSAGE_CREDIT_BYTES;
  #peerSequenceLimit = MESSAGES_AHEAD;
  readonly #outStreams: OutStream[] = [];
  readonly #outStreamById = new Map<number, OutStream>();
  #nextStreamId = 0;
  #peerStreamsLimit = INITIAL_STREAMS_CREDIT;
  /** Reset streams whose RESET frame is due (again, if one was lost). */
  readonly #resetsDue = new Set<OutStream>();
  /** Why outgoing streams were reset, for the application (the last MAX_RESET_REASONS). */
  readonly #resetReasons = new Map<number, string>();
  #sendBuffered = 0;
  #rotation = 0;

  readonly #stats = {
    packetsSent: 0, packetsReceived: 0, ackOnlyPackets: 0,
    messagesSent: 0, messagesReceived: 0, streamsOpened: 0, streamsAccepted: 0, streamErrors: 0, malformedPackets: 0,
    flowControlViolations: 0,
  };
  /** The receiving half: incoming messages and streams, and their credit. */
  readonly #inbound: Inbound;

  constructor(config: ReliabilityConfig, now: number) {
    this.#config = config;
    this.#recovery = new LossRecovery(config.rtoFloorMs, config.maxRetransmissions, MAX_ACK_DELAY_MS);
    this.#inbound = new Inbound(config, this.#stats);
    this.#lastReceiveTime = now;
    this.#keepAliveInterval = config.keepAliveMs;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Why the connection failed (undefined after a clean close, or while open). */
  get error(): Error | undefined {
    return this.#error;
  }

  /** The last incoming message or stream the peer broke, and why. */
  get lastStreamError(): string | undefined {
    return this.#inbound.lastStreamError;
  }

  // ---------------------------------------------------------------- application side

  /** Whether a writer may add bytes now (the send buffer is under its bound and the connection open). */
  get writable(): boolean {
    return this.#state === "open" && this.#sendBuffered < this.#config.sendBufferBytes;
  }

  /** Queues one message (the caller checked its size and `writable`, and hands over `bytes`). */
  sendMessage(bytes: Uint8Array): void {
    this.#assertOpen();
    const stream = new SendStream();
    stream.write(bytes);
    stream.finish();
    this.#outMessages.push({ sequence: this.#nextMessageSequence++, start: this.#messageBytesQueued, stream });
    this.#messageBytesQueued += bytes.length;
    this.#sendBuffered += bytes.length;
    this.#stats.messagesSent++;
  }

  /** A new outgoing stream's id. Its data waits for the peer's stream credit. */
  openStream(now: number): number {
    this.#assertOpen();
    const out: OutStream = { id: this.#nextStreamId++, stream: new SendStream(), limit: INITIAL_STREAM_CREDIT_BYTES, lastWrite: now, reset: undefined };
    this.#outStreams.push(out);
    this.#outStreamById.set(out.id, out);
    this.#stats.streamsOpened++;
    return out.id;
  }

  writeStream(id: number, bytes: Uint8Array, now: number): void {
    this.#assertOpen();
    const out = this.#outStream(id);
    if (out.reset !== undefined) throw new Error(out.reset.reason);
    out.stream.write(bytes);
    out.lastWrite = now;
    this.#sendBuffered += bytes.length;
  }

  finishStream(id: number): void {
    this.#assertOpen();
    const out = this.#outStream(id);
    if (out.reset !== undefined) throw new Error(out.reset.reason);
    out.stream.finish();
  }

  /**
   * Outgoing stream `id`: "delivered" once the peer acknowledged every byte and the end, the reason
   * if it was reset (remembered for the last MAX_RESET_REASONS resets), else "sending".
   */
  streamState(id: number): "sending" | "delivered" | { reset: string } {
    const reason = this.#resetReasons.get(id);
    if (reason !== undefined) return { reset: reason };
    return this.#outStreamById.has(id) ? "sending" : "delivered";
  }

  /**
   * Gives up on outgoing stream `id`: its unsent bytes are dropped and the peer is told (a STREAM_RESET,
   * retransmitted until acknowledged), so its reader fails with a clear error instead of waiting.
   */
  resetStream(id: number, reason: string, code = RESET_ABORTED): void {
    const out = this.#outStreamById.get(id);
    if (out === undefined || out.reset !== undefined) return;
    out.reset = { reason, code };
    this.#sendBuffered -= out.stream.abandon();
    this.#resetsDue.add(out);
    this.#resetReasons.set(id, reason);
    if (this.#resetReasons.size > MAX_RESET_REASONS) this.#resetReasons.delete(this.#resetReasons.keys().next().value!);
  }

  /** The next whole message, in order; undefined if none is ready. */
  readMessage(): Uint8Array | undefined {
    return this.#inbound.readMessage();
  }

  /** No message will ever be ready again (closed either way, or failed). */
  get messagesEnded(): boolean {
    return !this.#inbound.hasReadyMessage && this.#state !== "open";
  }

  /** The id of the next incoming stream, if one arrived. */
  acceptStream(): number | undefined {
    return this.#inbound.acceptStream();
  }

  /** The next bytes of incoming stream `id`: data, null at its end, undefined if none yet; throws if it failed. */
  readStream(id: number): Uint8Array | null | undefined {
    return this.#inbound.readStream(id, this.#state !== "open" && this.#state !== "closing", this.#error);
  }

  /** The reader gave up on incoming stream `id`: later data for it is dropped. */
  cancelStream(id: number): void {
    this.#inbound.cancelStream(id);
  }

  /**
   * Closes gracefully: no more writes; the CLOSE goes once everything written was acknowledged,
   * and the session is closed when the CLOSE is (or the retransmission limit fails it).
   */
  close(): void {
    if (this.#state !== "open") return;
    this.#state = "closing";
    this.#inbound.discardIncomplete();
    this.#queueCloseIfFlushed();
  }

  /**
   * Closes at once and answers the one packet that tells the peer (a CLOSE, sent once, not retransmitted:
   * if it is lost the peer learns from its retransmission limit or idle timeout).
   */
  abort(now: number): Transmit | undefined {
    if (this.#state === "closed") return undefined;
    const wasOpen = this.#state !== "draining";
    this.#fail(undefined);
    if (!wasOpen) return undefined;
    this.#writer.begin();
    if (this.#newSinceAck) this.#writeAck(now);
    this.#writer.close(CLOSE_APPLICATION);
    this.#stats.packetsSent++;
    return { packetNumber: this.#nextPacketNumber++, parts: this.#writer.finish() };
  }

  // ---------------------------------------------------------------- network side

  /** A packet number for a packet the host sends itself (the handshake's confirm): never reused. */
  allocatePacketNumber(): number {
    return this.#nextPacketNumber++;
  }

  /**
   * One authenticated, non-replayed packet's plaintext. Answers undefined, or why it was malformed
   * (it then had no effect; the host counts it).
   */
  handlePacket(plaintext: Uint8Array, packetNumber: number, now: number): string | undefined {
    if (this.#state === "closed") return undefined;
    this.#now = now;
    this.#elicits = false;
    const parsed = parseFrames(plaintext, this.#visitor);
    if (typeof parsed === "string") {
      this.#stats.malformedPackets++;
      return parsed;
    }
    this.#stats.packetsReceived++;
    this.#lastReceiveTime = now;
    this.#keepAliveInterval = this.#config.keepAliveMs;
    this.#received.add(packetNumber, packetNumber + 1);
    this.#received.limitRanges(MAX_ACK_RANGES);
    this.#newSinceAck = true;
    if (packetNumber > this.#largestReceived) {
      if (packetNumber !== this.#largestReceived + 1) this.#ackNow = true; // a gap: tell the sender at once
      this.#largestReceived = packetNumber;
      this.#largestReceivedTime = now;
    } else this.#ackNow = true; // reordered or a retransmission: the sender wants to know
    if (this.#elicits) {
      if (this.#elicitingSinceAck++ === 0) this.#ackDeadline = now + MAX_ACK_DELAY_MS;
      if (this.#elicitingSinceAck >= ACK_ELICITING_THRESHOLD || this.#stats.packetsReceived <= ACK_EVERY_PACKET_UNTIL) this.#ackNow = true;
    }
    this.#queueCloseIfFlushed();
    return undefined;
  }

  /** The earliest time handleTimeout() or pollTransmit() has something to do (Infinity: nothing). */
  nextDeadline(): number {
    if (this.#state === "closed") return Infinity;
    let deadline = Math.min(this.#ackDeadline, this.#pacingAt, this.#drainUntil, this.#lastReceiveTime + this.#config.idleTimeoutMs);
    deadline = Math.min(deadline, this.#recovery.deadline());
    if (this.#state === "open" || this.#state === "closing") deadline = Math.min(deadline, this.#nextPingTime());
    for (const out of this.#outStreams) {
      if (this.#idleWriter(out)) deadline = Math.min(deadline, out.lastWrite + this.#config.streamInactivityMs);
    }
    return deadline;
  }

  handleTimeout(now: number): void {
    if (this.#state === "closed") return;
    this.#now = now;
    if (now >= this.#lastReceiveTime + this.#config.idleTimeoutMs) {
      this.#fail(new Error(`idle timeout: nothing from the peer for ${this.#config.idleTimeoutMs} ms`));
      return;
    }
    if (now >= this.#drainUntil) {
      this.#state = "closed";
      return;
    }
    if (now >= this.#recovery.deadline() && this.#recovery.onTimeout(now, this.#onPacketLost) === "failed") {
      this.#fail(new Error(`peer unreachable: ${this.#config.maxRetransmissions} consecutive retransmission timeouts without an acknowledgement`));
      return;
    }
    if ((this.#state === "open" || this.#state === "closing") && now >= this.#nextPingTime()) {
      if (this.#lastPingTime > this.#lastReceiveTime) this.#keepAliveInterval = Math.min(2 * this.#keepAliveInterval, this.#config.maxKeepAliveMs);
      this.#lastPingTime = now;
      this.#pingDue = true;
    }
    for (const out of this.#outStreams) {
      if (this.#idleWriter(out) && now >= out.lastWrite + this.#config.streamInactivityMs) {
        this.resetStream(out.id, `stream ${out.id}: its writer wrote nothing for ${this.#config.streamInactivityMs} ms`, RESET_IDLE);
      }
    }
  }

  /** The next packet to seal and send, or undefined (then wait for input or nextDeadline()). */
  pollTransmit(now: number): Transmit | undefined {
    if (this.#state === "closed") return undefined;
    this.#now = now;
    const ackDue = this.#elicitingSinceAck > 0 && (this.#ackNow || now >= this.#ackDeadline);
    const recovery = this.#recovery;
    const probe = recovery.probeDue;
    let eliciting = probe || this.#hasElicitingWork();
    if (eliciting && !probe) {
      this.#pacingAt = Infinity;
      if (!recovery.congestion.canSend(MAX_DATAGRAM_SIZE_BYTES)) eliciting = false;
      else {
        const at = this.#pacer.nextSendTime(MAX_DATAGRAM_SIZE_BYTES, recovery.congestion.window, recovery.rtt.smoothed, now);
        if (at > now) {
          this.#pacingAt = at;
          eliciting = false;
        }
      }
    }
    if (!eliciting && !ackDue) return undefined;
    const writer = this.#writer;
    writer.begin();
    if (this.#newSinceAck) this.#writeAck(now);
    const packetNumber = this.#nextPacketNumber++;
    if (!eliciting) {
      this.#stats.ackOnlyPackets++;
      this.#stats.packetsSent++;
      return { packetNumber, parts: writer.finish() };
    }
    const packet: SentPacket = { time: now, bytes: 0, data: [], messageCredit: false, streamsCredit: false, streamCredits: [], resets: [], close: false };
    this.#writeControl(packet);
    if (this.#closeDue) {
      writer.close(CLOSE_APPLICATION);
      this.#closeDue = false;
      packet.close = true;
    }
    // The last packet the window lets out asks for an ACK at once: a receiver waiting for its 20th
    // packet (or 25 ms) would otherwise stall a small window for the whole ACK delay every round trip.
    if (recovery.congestion.bytesInFlight + 2 * MAX_DATAGRAM_SIZE_BYTES > recovery.congestion.window) writer.ping();
    if (this.#state === "open" || this.#state === "closing") this.#writeData(packet);
    // Any ack-eliciting packet does what a PING would; add one only when nothing else elicits.
    if (!packet.messageCredit && !packet.streamsCredit && packet.streamCredits.length === 0 && packet.resets.length === 0 && !packet.close && packet.data.length === 0) writer.ping();
    this.#pingDue = false;
    const parts = writer.finish();
    packet.bytes = writer.length + DATA_HEADER_BYTES + TAG_BYTES; // the datagram: what the window counts
    recovery.onSent(packetNumber, packet, probe);
    this.#pacer.onSent(packet.bytes);
    this.#stats.packetsSent++;
    if (!this.#hasElicitingWork()) recovery.congestion.onApplicationLimited();
    return { packetNumber, parts };
  }

  stats(): SessionStats {
    const { rtt } = this.#recovery;
    return {
      ...this.#stats,
      ...this.#recovery.stats,
      rttMs: rtt.hasSample ? rtt.smoothed : 0,
      rttVariationMs: rtt.variation,
      minRttMs: rtt.hasSample ? rtt.min : 0,
      rtoMs: rtt.rto,
      congestionWindowBytes: this.#recovery.congestion.window,
      bytesInFlight: this.#recovery.congestion.bytesInFlight,
      sendBufferedBytes: this.#sendBuffered,
      keepAliveIntervalMs: this.#keepAliveInterval,
    };
  }

  // ---------------------------------------------------------------- receiving frames

  #now = 0;
  /** Whether the packet being handled carries a frame that must be acknowledged. */
  #elicits = false;

  readonly #visitor: FrameVisitor = {
    ack: (ranges, delayMs) => this.#onAck(ranges, delayMs),
    ping: () => {
      this.#elicits = true;
      this.#ackNow = true; // answered at once: the peer is measuring whether we are there
    },
    close: () => {
      this.#elicits = true;
      this.#ackNow = true;
      this.#onPeerClose();
    },
    messageData: (sequence, total, offset, data) => {
      this.#elicits = true;
      if (this.#state === "open") this.#inbound.messageData(sequence, total, offset, data); // closing: acknowledged, not delivered
    },
    streamData: (id, offset, fin, data) => {
      this.#elicits = true;
      if (this.#state === "open") this.#inbound.streamData(id, offset, fin, data);
    },
    messageCredit: (byteLimit, sequenceLimit) => {
      this.#elicits = true;
      this.#peerMessageLimit = Math.max(this.#peerMessageLimit, byteLimit);
      this.#peerSequenceLimit = Math.max(this.#peerSequenceLimit, sequenceLimit);
    },
    streamCredit: (id, limit) => {
      this.#elicits = true;
      const out = this.#outStreamById.get(id);
      if (out !== undefined) out.limit = Math.max(out.limit, limit);
    },
    streamsCredit: (idLimit) => {
      this.#elicits = true;
      this.#peerStreamsLimit = Math.max(this.#peerStreamsLimit, idLimit);
    },
    streamReset: (id, code) => {
      this.#elicits = true;
      if (this.#state === "open") this.#inbound.streamReset(id, code);
    },
  };

  #onAck(ranges: Array<[number, number]>, delayMs: number): void {
    if (ranges[0]![1] > this.#nextPacketNumber) return; // acknowledges what we never sent: ignore the frame
    if (this.#recovery.onAck(ranges, delayMs, this.#now, this.#onPacketAcked, this.#onPacketLost)) this.#queueCloseIfFlushed();
  }

  readonly #onPacketAcked = (packet: SentPacket): void => {
    for (const data of packet.data) this.#onDataAcked(data);
    for (const out of packet.resets) this.#forgetOutStream(out);
    if (packet.close && this.#state === "closing") this.#enterDrain();
  };

  #onDataAcked(data: SentData): void {
    this.#sendBuffered -= data.stream.onAcked(data.offset, data.length, data.fin);
    if (!data.stream.complete) return;
    // Retire completed messages from the front (later ones wait their turn: the array stays ordered).
    while (this.#outMessages.length > 0 && this.#outMessages[0]!.stream.complete) {
      this.#lostMessages.delete(this.#outMessages.shift()!);
      if (this.#nextNewMessage > 0) this.#nextNewMessage--;
    }
    const out = this.#outStreams.find((candidate) => candidate.stream === data.stream);
    if (out !== undefined) this.#forgetOutStream(out);
  }

  /** The stream is done with: delivered whole, or its reset was acknowledged. */
  #forgetOutStream(out: OutStream): void {
    const at = this.#outStreams.indexOf(out);
    if (at >= 0) this.#outStreams.splice(at, 1);
    this.#outStreamById.delete(out.id);
    this.#resetsDue.delete(out);
  }

  /** A packet is lost: its data, credits, resets and CLOSE go again (in new packets). */
  readonly #onPacketLost = (packet: SentPacket): void => {
    for (const data of packet.data) {
      data.stream.onLost(data.offset, data.length, data.fin);
      const message = this.#messageOf(data.stream);
      if (message !== undefined && data.stream.hasLost) this.#lostMessages.add(message);
    }
    this.#inbound.onCreditsLost(packet);
    for (const out of packet.resets) if (this.#outStreamById.has(out.id)) this.#resetsDue.add(out);
    if (packet.close && this.#state === "closing") this.#closeDue = true;
  };

  #messageOf(stream: SendStream): OutMessage | undefined {
    for (const message of this.#outMessages) if (message.stream === stream) return message;
    return undefined;
  }

  /**
   * An outgoing stream whose writer, not the path or the reader, is the reason nothing moves: open,
   * not finished, every byte written already acknowledged. A stream with bytes in flight or waiting
   * for credit is not idle, however long loss or a slow reader holds it.
   */
  #idleWriter(out: OutStream): boolean {
    return out.reset === undefined && !out.stream.finished && out.stream.bufferedBytes === 0;
  }

  #onPeerClose(): void {
    if (this.#state === "closed" || this.#state === "draining") return;
    this.#discardOutgoing();
    this.#enterDrain();
  }

  #enterDrain(): void {
    this.#state = "draining";
    this.#drainUntil = this.#now + DRAIN_RTOS * this.#recovery.rtt.rto;
    this.#closeDue = false;
  }

  #discardOutgoing(): void {
    this.#outMessages.length = 0;
    this.#nextNewMessage = 0;
    this.#lostMessages.clear();
    this.#outStreams.length = 0;
    this.#outStreamById.clear();
    this.#sendBuffered = 0;
  }

  #fail(error: Error | undefined): void {
    this.#error = error;
    this.#state = "closed";
    this.#discardOutgoing();
    this.#recovery.clear();
  }

  #queueCloseIfFlushed(): void {
    if (this.#state === "closing" && !this.#closeQueued && this.#sendBuffered === 0 && this.#outStreams.length === 0 && this.#outMessages.length === 0) {
      this.#closeQueued = true;
      this.#closeDue = true;
    }
  }

  #nextPingTime(): number {
    return Math.max(this.#lastReceiveTime, this.#lastPingTime) + this.#keepAliveInterval;
  }

  // ---------------------------------------------------------------- writing frames

  #writeAck(now: number): void {
    const count = Math.min(this.#received.rangeCount, MAX_ACK_RANGES);
    const ranges: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) ranges.push(this.#received.rangeFromTop(i));
    this.#writer.ack(ranges, now - this.#largestReceivedTime);
    this.#newSinceAck = false;
    this.#elicitingSinceAck = 0;
    this.#ackDeadline = Infinity;
    this.#ackNow = false;
  }

  /** Credit frames (the inbound side's) and our streams' resets: control frames, before any data. */
  #writeControl(packet: SentPacket): void {
    const writer = this.#writer;
    this.#inbound.writeCredits(writer, packet);
    for (const out of this.#resetsDue) {
      if (writer.remaining < RESET_ROOM_BYTES) break;
      writer.streamReset(out.id, out.reset!.code);
      this.#resetsDue.delete(out);
      packet.resets.push(out);
    }
  }

  #hasElicitingWork(): boolean {
    if (this.#closeDue) return true;
    if (this.#state !== "open" && this.#state !== "closing") return false;
    if (this.#pingDue || this.#resetsDue.size > 0 || this.#inbound.creditDue) return true;
    for (const message of this.#lostMessages) if (message.stream.hasLost) return true;
    const next = this.#firstUnsentMessage();
    if (next !== undefined && next.sequence < this.#peerSequenceLimit && next.stream.hasSendable(this.#peerMessageLimit - next.start)) return true;
    for (const out of this.#outStreams) {
      if (out.id < this.#peerStreamsLimit && out.stream.hasSendable(out.limit)) return true;
    }
    return false;
  }

  /**
   * Fills the packet with data, taking turns between the messages and each stream: the next packet
   * starts with the source after the last one that wrote here, so none starves.
   */
  #writeData(packet: SentPacket): void {
    const sources = 1 + this.#outStreams.length;
    const first = this.#rotation % sources;
    for (let k = 0; k < sources && this.#writer.remaining > STREAM_DATA_HEADER_BYTES; k++) {
      const source = (first + k) % sources;
      const before = packet.data.length;
      if (source === 0) this.#writeMessages(packet);
      else this.#writeStream(packet, this.#outStreams[source - 1]!);
      if (packet.data.length > before) this.#rotation = source + 1;
    }
  }

  #writeMessages(packet: SentPacket): void {
    const writer = this.#writer;
    while (writer.remaining > MESSAGE_DATA_HEADER_BYTES) {
      let message: OutMessage | undefined;
      let limit = Infinity;
      for (const lost of this.#lostMessages) {
        if (lost.stream.hasLost) {
          message = lost;
          break;
        }
        this.#lostMessages.delete(lost);
      }
      if (message === undefined) {
        message = this.#firstUnsentMessage();
        if (message === undefined || message.sequence >= this.#peerSequenceLimit) return;
        limit = this.#peerMessageLimit - message.start;
      }
      const range = message.stream.take(Math.min(0xffff, writer.remaining - MESSAGE_DATA_HEADER_BYTES), limit);
      if (range === undefined) return; // waiting for credit
      writer.messageData(message.sequence, message.stream.written, range.offset, range.data);
      packet.data.push({ stream: message.stream, offset: range.offset, length: range.data.length, fin: range.fin });
      if (!message.stream.hasLost) this.#lostMessages.delete(message);
    }
  }

  /** The first message with bytes never sent (the index moves past messages sent whole). */
  #firstUnsentMessage(): OutMessage | undefined {
    let message = this.#outMessages[this.#nextNewMessage];
    while (message !== undefined && message.stream.allSent) message = this.#outMessages[++this.#nextNewMessage];
    return message;
  }

  #writeStream(packet: SentPacket, out: OutStream): void {
    if (out.id >= this.#peerStreamsLimit || out.reset !== undefined) return;
    const writer = this.#writer;
    while (writer.remaining > STREAM_DATA_HEADER_BYTES) {
      const range = out.stream.take(Math.min(0xffff, writer.remaining - STREAM_DATA_HEADER_BYTES), out.limit);
      if (range === undefined) return;
      writer.streamData(out.id, range.offset, range.fin, range.data);
      packet.data.push({ stream: out.stream, offset: range.offset, length: range.data.length, fin: range.fin });
    }
  }

  #outStream(id: number): OutStream {
    const out = this.#outStreamById.get(id);
    if (out === undefined) throw new Error(`stream ${id} is not open for writing`);
    return out;
  }

  #assertOpen(): void {
    if (this.#state !== "open") throw new Error(this.#error?.message ?? "the connection is closed");
  }
}
