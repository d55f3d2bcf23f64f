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
//   tail-loss probe, the RFC 6298 retransmission timeout; the connection fails when the peer
//   acknowledges nothing for `deadPeerTimeoutMs`, or after `maxRetransmissions` consecutive timeouts.
// - Messages are streams of declared length delivered whole and in order; byte streams deliver bytes
//   in order per stream. Both are flow controlled by credit the receiver grants as its reader consumes,
//   so a reader that stops makes the writer wait instead of memory grow.
// - Congestion: NewReno with pacing (congestion.ts).
// - Datagram size: 1200 bytes until path MTU discovery (path-mtu.ts) confirms the path carries more;
//   its probes are packets of PING and PADDING alone, whose loss is no congestion and re-sends nothing.

import { SluiceError } from "../errors/errors.ts";
import type { ReceivedBytes } from "../memory/delivery-slab.ts";
import { DATA_HEADER_BYTES, MAX_DATAGRAM_BYTES, TAG_BYTES } from "../wire/constants.ts";
import { Pacer } from "./congestion.ts";
import { ControlFrames, type ControlFrame, type ControlSent } from "./control.ts";
import { CLOSE_APPLICATION, CLOSE_PROTOCOL_VIOLATION, MAX_ACK_RANGES, PacketWriter, parseFrames, PATH_DATA_BYTES, RESET_ABORTED, type FrameVisitor } from "./frames.ts";
import { Inbound, type InboundSent } from "./inbound.ts";
import { acknowledges, LossRecovery } from "./loss-recovery.ts";
import type { ReliabilityConfig } from "./options.ts";
import { messageTooLarge, Outbound, type OutboundSent, type WrittenMark } from "./outbound.ts";
import { PathMtu, type PathMtuStats } from "./path-mtu.ts";
import { RangeSet } from "./range-set.ts";
import { NONE_SENT } from "./sent-lists.ts";

/** The longest a receiver holds an acknowledgement (a protocol constant: the sender's probe timer counts on it). */
const MAX_ACK_DELAY_MS = 25;
/**
 * Data (a message's or a stream's) was arriving, the peer is part-way through (a message not yet
 * whole, a stream not yet at its end), and then nothing at all came for this many RTOs: one PING goes
 * (once per such silence; complete messages, as requests and answers are, never cost one). A receiver has nothing of its own awaiting acknowledgement once
 * its credit is acknowledged, so a path cut under it (its NAT rebound, it changed networks) left it
 * unaware until its keep-alive (keepAliveMs, 5 s) went unanswered, and only then did it ask its
 * introducer to re-punch: in the network-namespace bed, data flowed again ~5 s after a receiver
 * changed networks in 2 of 5 runs (~1 s in the others, where a credit was in flight). Its PING
 * unanswered, it re-punches REPUNCH_AFTER_MS later. A sender pauses longer than a few RTOs only when
 * it has nothing to send, or is backed off: then the PING costs a datagram and its ACK.
 */
const STALL_PROBE_RTOS = 3;
/**
 * Unacknowledged ack-eliciting packets that make the receiver acknowledge at once (freenet's is 20).
 * Every ACK is a datagram each way's CPU: a send for the receiver (25–40 µs on the 2-core VM, with
 * the wake-up of the other process) and a receive for the sender. At 40, a 64 MiB stream between two
 * processes took 0.90× the CPU per GiB of 20 (median of 8 interleaved rounds, 7 below 1.0; 64 gave
 * 0.95×); the window's last packet still asks for an ACK at once, and a connection's first
 * ACK_EVERY_PACKET_UNTIL packets are acknowledged one by one.
 */
const ACK_ELICITING_THRESHOLD = 40;
/**
 * The first packets of a connection are acknowledged one by one (as Chromium's QUIC does for its
 * first 100): slow start grows per ACK, and a window of 10 must not sit out the 25 ms ACK delay.
 */
const ACK_EVERY_PACKET_UNTIL = 100;
/** After a CLOSE either way, keep answering retransmitted CLOSEs for this many RTOs. */
const DRAIN_RTOS = 3;
/**
 * One packet number in this many (on average, at random) is skipped, never sent: an ACK that names
 * one acknowledges what the peer cannot have received (an optimistic ACK, RFC 9000 §21.4), and fails
 * the connection. 1 in 128 costs nothing measurable and catches a blind acknowledger within a few
 * hundred packets.
 */
const SKIP_ONE_IN = 128;
/** Skipped packet numbers remembered (the newest: an optimistic acknowledger names recent ones). */
const MAX_SKIPPED = 32;
/** PATH_CHALLENGE data remembered to answer, and PATH_RESPONSE data kept for the host, at most. */
const MAX_PATH_FRAMES = 4;
/** A packet smaller than this carries only an ACK and path frames (an address not yet validated allows little). */
const MIN_FULL_PACKET_BYTES = 300;
/** Room an ACK frame needs before its extra ranges (frames.ts's ACK_FIXED_BYTES) and per extra range. */
const ACK_MIN_BYTES = 18;
const ACK_RANGE_BYTES = 8;

/** A packet in flight, and what it carried: data and resets (OutboundSent), credit, stops, refusals (InboundSent), control frames, a CLOSE. */
interface SentPacket extends InboundSent, OutboundSent, ControlSent {
  time: number;
  bytes: number;
  /** A path MTU probe's number (it carries only PING and PADDING), or 0. */
  mtuProbe: number;
  close: boolean;
  /** The largest packet number its ACK frame reported (-1: none): once it is acknowledged, the older ranges need not be reported again. */
  ackedUpTo: number;
}

export type SessionState = "open" | "closing" | "draining" | "closed";

export interface DeliveryStats extends PathMtuStats {
  rttMs: number;
  rttVariationMs: number;
  minRttMs: number;
  rtoMs: number;
  congestionWindowBytes: number;
  bytesInFlight: number;
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  /** Packets declared lost whose acknowledgement came after all (reordering): what they carried counted as delivered. */
  spuriousLosses: number;
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
  /** ACK frames naming packet numbers we never sent (the frame is ignored). */
  invalidAcks: number;
  /** ACK frames naming a packet number skipped on purpose (the connection fails). */
  optimisticAcks: number;
  /** Control frames numbered past the receive window (the peer broke the protocol): ignored. */
  controlFramesDropped: number;
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
  /** The host's note on the path (notePath), for ERR_SLUICE_PEER_UNREACHABLE's message. */
  #pathNote = "";
  readonly #recovery: LossRecovery<SentPacket>;
  readonly #pacer = new Pacer();
  readonly #writer = new PacketWriter(MAX_DATAGRAM_BYTES - DATA_HEADER_BYTES - TAG_BYTES);
  /** The datagram size data packets are packed to, and its search. */
  readonly #pathMtu: PathMtu;
  #state: SessionState = "open";
  #error: SluiceError | undefined;
  /** Who ended the connection, once it is not open (and it did not fail). */
  #closedBy: "us" | "peer" | undefined;
  /** The peer closed with everything written until then acknowledged (see #onPeerClose). */
  #acknowledgedAtPeerClose = false;
  /** Why nothing more can be written, once the connection is not open: made on first need. */
  #endReason: SluiceError | undefined;

  // Sending packets.
  readonly #random: () => number;
  #nextPacketNumber = 0;
  /** Packet numbers skipped on purpose, newest last: an ACK of one is optimistic. */
  readonly #skipped: number[] = [];
  /** The CLOSE code of a failure that must tell the peer (sent by the next pollTransmit). */
  #finalClose: number | undefined;
  // Path frames.
  #challengeDue: Uint8Array | undefined;
  readonly #responsesDue: Uint8Array[] = [];
  readonly #pathResponses: Uint8Array[] = [];
  readonly #challengesReceived: Uint8Array[] = [];
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
  /** Whether the silence after the last data that arrived was probed already (STALL_PROBE_RTOS); true until data arrives. */
  #stallProbed = true;
  #closeDue = false;
  #closeQueued = false;
  #drainUntil = Infinity;
  /**
   * The liveness check running (see checkAlive): the first packet number whose acknowledgement
   * answers it, and when it goes unanswered.
   */
  #aliveCheck: { from: number; until: number } | undefined;
  #aliveVerdict: "answered" | "unanswered" | undefined;

  readonly #stats = {
    packetsSent: 0, packetsReceived: 0, ackOnlyPackets: 0,
    messagesSent: 0, messagesReceived: 0, streamsOpened: 0, streamsAccepted: 0, streamErrors: 0, malformedPackets: 0,
    flowControlViolations: 0, invalidAcks: 0, optimisticAcks: 0,
  };
  /** The sending half: outgoing messages and streams. */
  readonly #outbound: Outbound;
  /** The receiving half: incoming messages and streams, and their credit. */
  readonly #inbound: Inbound;
  /** Control frames both ways (the rendezvous's, addresses): each delivered once, in order. */
  readonly #control = new ControlFrames();

  /**
   * `random` (uniform in [0, 1)) picks the skipped packet numbers; tests give a seeded one.
   */
  constructor(config: ReliabilityConfig, now: number, random: () => number = Math.random) {
    this.#config = config;
    this.#random = random;
    this.#recovery = new LossRecovery({
      rtoFloorMs: config.rtoFloorMs, maxTimeouts: config.maxRetransmissions, peerAckDelayMs: MAX_ACK_DELAY_MS, deadPeerTimeoutMs: config.deadPeerTimeoutMs,
    });
    this.#outbound = new Outbound(config, this.#stats);
    this.#pathMtu = new PathMtu(config.maxDatagramBytes);
    this.#inbound = new Inbound(config, this.#stats);
    this.#lastReceiveTime = now;
    this.#keepAliveInterval = config.keepAliveMs;
  }

  get state(): SessionState {
    return this.#state;
  }

  /**
   * Since when the peer has acknowledged nothing while something awaits its acknowledgement (a
   * PING's, when idle); Infinity when nothing does. The host asks the introducer to re-punch a
   * path silent for long.
   */
  get unansweredSince(): number {
    return this.#recovery.unansweredSince;
  }

  /** The retransmission timeout now, in ms (the host times its path validation by it). */
  get rto(): number {
    return this.#recovery.rtt.rto;
  }

  /**
   * Starts a liveness check, unless one is running: a PING goes in the next packet, and the check is
   * "answered" once the peer acknowledges it or any later packet, "unanswered" if it has not within
   * two probe timeouts (twice the RTO, and the peer's ACK delay: 425 ms at the 200 ms floor): a PING
   * lost once goes again at the first, and that one's answer still counts (with one timeout, one lost
   * datagram made a live peer look restarted, and its healthy connection was replaced). The host asks
   * before it trusts an old connection with a peer that may have restarted (a restarted peer has
   * lost the connection's keys: it acknowledges nothing of it). A session that no longer sends
   * (the peer closed, or it ended) is "unanswered" at once, and so is a check running when it stops.
   */
  checkAlive(now: number): void {
    if (this.#aliveCheck !== undefined) return;
    if (!this.#sending) return this.#settleAliveCheck("unanswered");
    this.#aliveCheck = { from: this.#nextPacketNumber, until: now + 2 * this.#recovery.rtt.rto + MAX_ACK_DELAY_MS };
    this.#aliveVerdict = undefined;
    this.#pingDue = true;
  }

  /**
   * The last liveness check's outcome (settled here from the acknowledgements so far): "pending"
   * while it runs, undefined if none was asked for.
   */
  get aliveCheck(): "pending" | "answered" | "unanswered" | undefined {
    const check = this.#aliveCheck;
    if (check !== undefined && !this.#sending) this.#settleAliveCheck("unanswered");
    else if (check !== undefined && this.#recovery.largestAcked >= check.from) this.#settleAliveCheck("answered");
    return this.#aliveCheck === undefined ? this.#aliveVerdict : "pending";
  }

  #settleAliveCheck(verdict: "answered" | "unanswered"): void {
    this.#aliveCheck = undefined;
    this.#aliveVerdict = verdict;
  }

  /** Why the connection failed (undefined after a clean close, or while open). */
  get error(): SluiceError | undefined {
    return this.#error;
  }

  /**
   * Why nothing more can be sent or received, once the connection is not open: why it failed, or
   * ERR_SLUICE_CLOSED (this side closed it) or ERR_SLUICE_PEER_CLOSED. Undefined while open.
   */
  get endReason(): SluiceError | undefined {
    if (this.#state === "open") return undefined;
    return this.#error ?? (this.#endReason ??= this.#closedBy === "peer"
      ? new SluiceError("ERR_SLUICE_PEER_CLOSED", "the peer closed the connection")
      : new SluiceError("ERR_SLUICE_CLOSED", "the connection was closed"));
  }

  /** The last incoming message or stream the peer broke, and why. */
  get lastStreamError(): string | undefined {
    return this.#inbound.lastStreamError;
  }

  // ---------------------------------------------------------------- application side

  /**
   * Whether a message may be added now: the connection is open, the message queue is under its bound
   * and the send buffer has room for messages (see Outbound.messagesHaveRoom).
   */
  get writable(): boolean {
    return this.#state === "open" && this.#outbound.messagesHaveRoom;
  }

  /**
   * Whether outgoing stream `id`'s writer may add bytes now: the connection is open, the peer
   * admitted the stream and left it credit, and the send buffer has room for streams (see
   * Outbound.streamHasRoom).
   */
  streamWritable(id: number): boolean {
    return this.#state === "open" && this.#outbound.streamHasRoom(id);
  }

  /** Queues one message (the caller checked its size and `writable`, and hands over `bytes`). */
  sendMessage(bytes: Uint8Array): void {
    this.#assertOpen();
    this.#outbound.sendMessage(bytes);
  }

  /**
   * A new outgoing stream's id. Nothing goes yet: the peer learns of the stream with its first bytes
   * or its end, and its writes wait (streamWritable) until the peer admits it.
   */
  openStream(): number {
    this.#assertOpen();
    return this.#outbound.openStream();
  }

  /** Adds bytes to outgoing stream `id`; throws if the stream ended early (with why). */
  writeStream(id: number, bytes: Uint8Array): void {
    this.#assertOpen();
    this.#outbound.writeStream(id, bytes);
  }

  finishStream(id: number): void {
    this.#assertOpen();
    this.#outbound.finishStream(id);
  }

  /** Outgoing stream `id`: "delivered", "sending", or why it ended early (reset, or cancelled by its reader). */
  streamState(id: number): "sending" | "delivered" | SluiceError {
    return this.#outbound.streamState(id);
  }

  /** Gives up on outgoing stream `id`; the peer's reader fails with a clear error (see Outbound). */
  resetStream(id: number, reason: SluiceError, code = RESET_ABORTED): void {
    this.#outbound.resetStream(id, reason, code);
  }

  /** The first message refusal the peer sent that was not yet reported (ERR_SLUICE_MESSAGE_TOO_LARGE), once. */
  takeMessageRefusal(): SluiceError | undefined {
    return this.#outbound.takeRefusal();
  }

  /** Why a message of `length` bytes would be refused, if a refusal told us the peer's limit and it is over it. */
  overPeerLimit(length: number): SluiceError | undefined {
    const limit = this.#outbound.peerMaxMessageBytes;
    return length > limit ? messageTooLarge(`a message of ${length} bytes cannot be sent`, limit) : undefined;
  }

  /** What has been written until now (for flushed()). */
  writtenMark(): WrittenMark {
    return this.#outbound.writtenMark();
  }

  /**
   * Whether the peer acknowledged everything `mark` covers (streams that ended early count as done
   * with). Throws why it never will be known: the peer closed or the connection failed first (what was
   * not yet acknowledged was dropped), or this side aborted it.
   */
  flushed(mark: WrittenMark): boolean {
    if (this.#sending) return this.#outbound.flushed(mark);
    if (this.#acknowledgedAtPeerClose) return true; // every mark taken before the CLOSE: nothing can be written after it
    if (this.#closedBy === "us" && this.#error === undefined && this.#closeQueued) return true; // our CLOSE went after everything
    throw this.endReason!;
  }

  /** The next whole message, in order; undefined if none is ready. */
  readMessage(): ReceivedBytes | undefined {
    return this.#inbound.readMessage();
  }

  /**
   * Whether the peer is owed more message credit (readMessage() raised it past a quarter of the
   * window): then the host drives the session to send it. Most reads owe nothing.
   */
  get messageCreditDue(): boolean {
    return this.#inbound.messageCreditDue;
  }

  /** No message will ever be ready again (closed either way, or failed). */
  get messagesEnded(): boolean {
    return !this.#inbound.hasReadyMessage && this.#state !== "open";
  }

  /** The id of the next incoming stream, if one arrived. */
  acceptStream(): number | undefined {
    return this.#inbound.acceptStream();
  }

  /**
   * The next bytes of incoming stream `id`: data (all that arrived in order, up to 64 KiB: a reader
   * that fell behind gets it in few large pieces), null at its end, undefined if none yet; throws if
   * it failed; at most `maxBytes` (a BYOB reader's room), so nothing is read ahead of the reader.
   * The bytes are the caller's. A read that answers anything but undefined may owe the peer credit (a
   * piece, the stream's; an end or a failure, another stream): the host drives the session after
   * it, or the credit waits for the next packet that goes for another reason.
   */
  readStream(id: number, maxBytes = Infinity): ReceivedBytes | null | undefined {
    return this.#inbound.readStream(id, this.#sending ? undefined : this.endReason, maxBytes);
  }

  /** As readStream, the data copied into the start of `target` (a BYOB reader's view): answers how many bytes (at least 1). */
  readStreamInto(id: number, target: Uint8Array): number | null | undefined {
    return this.#inbound.readStreamInto(id, target, this.#sending ? undefined : this.endReason);
  }

  /** The reader gave up on incoming stream `id`: later data for it is dropped, and the writer told to stop (STOP_SENDING). */
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
    this.#closedBy = "us";
    this.#inbound.discardIncomplete();
    this.#queueCloseIfFlushed();
  }

  /**
   * Closes at once and answers the one packet that tells the peer (a CLOSE, sent once, not retransmitted:
   * if it is lost the peer learns from its dead-peer or idle timeout). Once the peer closed (draining)
   * no CLOSE goes, but the ACK this side still owes does, alone: the peer's close waits for the ACK
   * of its CLOSE, and the application may end the connection as soon as the CLOSE wakes it, before
   * the host polls (sent once too). `error`, if given, is why (then `error` and `endReason` say so);
   * without it the connection counts as closed by this side.
   */
  abort(now: number, error?: SluiceError): Transmit | undefined {
    if (this.#state === "closed") return undefined;
    const wasOpen = this.#state !== "draining";
    this.#closedBy ??= "us";
    this.#fail(error);
    if (wasOpen) return this.#lastPacket(now, CLOSE_APPLICATION);
    return this.#elicitingSinceAck > 0 ? this.#lastPacket(now) : undefined;
  }

  /** A last packet, not in flight: the ACK owed, if any, then a CLOSE with `code` (none: the ACK alone). */
  #lastPacket(now: number, code?: number): Transmit {
    this.#writer.begin();
    if (this.#newSinceAck) this.#writeAck(now);
    if (code === undefined) this.#stats.ackOnlyPackets++;
    else this.#writer.close(code);
    this.#stats.packetsSent++;
    return { packetNumber: this.#allocate(), parts: this.#writer.finish() };
  }

  /** The next packet number: now and then one is skipped (see SKIP_ONE_IN). */
  #allocate(): number {
    if (this.#random() * SKIP_ONE_IN < 1) {
      this.#skipped.push(this.#nextPacketNumber++);
      if (this.#skipped.length > MAX_SKIPPED) this.#skipped.shift();
    }
    return this.#nextPacketNumber++;
  }

  // ---------------------------------------------------------------- network side

  /** A packet number for a packet the host sends itself (the handshake's confirm): never reused. */
  allocatePacketNumber(): number {
    return this.#allocate();
  }

  // ---------------------------------------------------------------- control frames (the host says what they mean)

  /**
   * Queues a control frame (type 0x20 to 0x2f), sent reliably and delivered to the peer's host once.
   * Answers false, queuing nothing, when MAX_QUEUED_CONTROL_FRAMES are queued or the session no
   * longer sends.
   */
  sendControl(type: number, body: Uint8Array): boolean {
    return this.#sending && this.#control.send(type, body);
  }

  /** How many more control frames sendControl() would take now (0 once the session no longer sends). */
  get controlRoom(): number {
    return this.#sending ? this.#control.room : 0;
  }

  /** The next control frame the peer sent, in its order; undefined when none is waiting. Take them after each packet. */
  pollControl(): ControlFrame | undefined {
    return this.#control.poll();
  }

  // ---------------------------------------------------------------- paths (the host decides where; these carry the frames)

  /** Sends a PATH_CHALLENGE with `data` (8 bytes) in the next packet: the host validates a new address. */
  sendPathChallenge(data: Uint8Array): void {
    this.#challengeDue = new Uint8Array(data);
  }

  /** The data of a PATH_RESPONSE that arrived, oldest first; undefined when none is waiting. */
  pollPathResponse(): Uint8Array | undefined {
    return this.#pathResponses.shift();
  }

  /**
   * The data of a PATH_CHALLENGE that arrived, oldest first: the host answers it in the next packet
   * (answerChallenge) when it came on the connection's path, or with a probe (probePacket) to where it
   * came from otherwise (the peer is probing a direct path).
   */
  pollPathChallenge(): Uint8Array | undefined {
    return this.#challengesReceived.shift();
  }

  /** Answers a PATH_CHALLENGE in the next packet, on the connection's path. */
  answerChallenge(data: Uint8Array): void {
    if (this.#responsesDue.length < MAX_PATH_FRAMES) this.#responsesDue.push(data);
  }

  /**
   * A packet of one PATH_CHALLENGE or PATH_RESPONSE alone, for the host to send to an address that is
   * not the connection's path (probing another path). It is not in flight: never retransmitted.
   */
  probePacket(frame: "challenge" | "response", data: Uint8Array): Transmit {
    const writer = this.#writer;
    writer.begin();
    if (frame === "challenge") writer.pathChallenge(data);
    else writer.pathResponse(data);
    this.#stats.packetsSent++;
    return { packetNumber: this.#allocate(), parts: writer.finish() };
  }

  /**
   * The host moved the connection to a validated new address: what is in flight was likely sent where
   * the peer no longer is, so it goes again at once (not a congestion signal), and the timers restart.
   */
  onPathValidated(now: number): void {
    this.#now = now;
    this.#recovery.onPathValidated(now, this.#onPacketLost);
    this.#pingDue = this.#sending;
  }

  /**
   * One authenticated, non-replayed packet's plaintext. Answers undefined, or why it was malformed
   * (it then had no effect; the host counts it). `plaintext` need only be valid during the call: the
   * session copies what it keeps into memory of its own, so the host may pass a view of memory it
   * reuses (a shared ring's slot) and overwrite it as soon as this returns.
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
    deadline = Math.min(deadline, this.#recovery.deadline(), this.#aliveCheck?.until ?? Infinity);
    if (this.#sending) deadline = Math.min(deadline, this.#nextPingTime(), this.#stallProbeTime());
    if (this.#state === "open") deadline = Math.min(deadline, this.#pathMtu.deadline);
    return deadline;
  }

  handleTimeout(now: number): void {
    if (this.#state === "closed") return;
    this.#now = now;
    if (now >= this.#lastReceiveTime + this.#config.idleTimeoutMs) {
      this.#fail(new SluiceError("ERR_SLUICE_IDLE_TIMEOUT", `idle timeout: nothing from the peer for ${this.#config.idleTimeoutMs} ms (reliability.idleTimeoutMs)`));
      return;
    }
    if (now >= this.#drainUntil) {
      this.#state = "closed";
      return;
    }
    if (now >= this.#recovery.deadline()) {
      const outcome = this.#recovery.onTimeout(now, this.#onPacketLost);
      this.#pathMtu.endLossEvent(now, outcome === "timeout");
      if (outcome === "failed" || outcome === "silent") {
        this.#fail(new SluiceError("ERR_SLUICE_PEER_UNREACHABLE", outcome === "silent"
          ? `peer unreachable: nothing acknowledged for ${this.#config.deadPeerTimeoutMs} ms (reliability.deadPeerTimeoutMs)${this.#pathNote}`
          : `peer unreachable: ${this.#config.maxRetransmissions} consecutive retransmission timeouts without an acknowledgement (reliability.maxRetransmissions)${this.#pathNote}`));
        return;
      }
    }
    if (this.#state === "open") this.#pathMtu.handleTimeout(now);
    if (this.#aliveCheck !== undefined && now >= this.#aliveCheck.until && this.aliveCheck === "pending") this.#settleAliveCheck("unanswered");
    if (this.#sending && now >= this.#stallProbeTime()) {
      this.#stallProbed = true;
      if (this.#inbound.midTransfer) {
        this.#lastPingTime = now;
        this.#pingDue = true;
      }
    }
    if (this.#sending && now >= this.#nextPingTime()) {
      if (this.#lastPingTime > this.#lastReceiveTime) this.#keepAliveInterval = Math.min(2 * this.#keepAliveInterval, this.#config.maxKeepAliveMs);
      this.#lastPingTime = now;
      this.#pingDue = true;
    }
  }

  /**
   * The next packet to seal and send, of at most `maxDatagramBytes` once sealed (an address not yet
   * validated allows only a few times what it sent) and at most the path MTU, or undefined (then wait
   * for input or nextDeadline()).
   */
  pollTransmit(now: number, maxDatagramBytes = Infinity): Transmit | undefined {
    if (this.#state === "closed") {
      if (this.#finalClose === undefined) return undefined;
      const code = this.#finalClose;
      this.#finalClose = undefined;
      return this.#lastPacket(now, code);
    }
    this.#now = now;
    const datagramBytes = Math.min(maxDatagramBytes, this.#pathMtu.current);
    const room = datagramBytes - DATA_HEADER_BYTES - TAG_BYTES;
    if (room < ACK_MIN_BYTES + 1 + PATH_DATA_BYTES) return undefined;
    if (room < MIN_FULL_PACKET_BYTES - DATA_HEADER_BYTES - TAG_BYTES) return this.#pollSmall(now, room);
    const ackDue = this.#elicitingSinceAck > 0 && (this.#ackNow || now >= this.#ackDeadline);
    const recovery = this.#recovery;
    const probe = recovery.probeDue;
    const mtuProbe = this.#pathMtu.probeSize;
    // Not ahead of a connection's first packet: that one carries what the connection queued (its
    // proof of keys, the rendezvous' frames, the first ACK), which the peer waits for.
    const firstPacketWaits = this.#stats.packetsSent === 0 && this.#hasElicitingWork();
    if (mtuProbe !== undefined && !probe && !firstPacketWaits && this.#state === "open" && mtuProbe <= maxDatagramBytes && this.#mayGo(mtuProbe, now)) return this.#mtuProbe(mtuProbe, now);
    let eliciting = probe || this.#hasElicitingWork();
    if (eliciting && !probe && !this.#mayGo(datagramBytes, now)) eliciting = false;
    const pathFrames = this.#challengeDue !== undefined || this.#responsesDue.length > 0;
    if (!eliciting && !ackDue && !pathFrames) return undefined;
    const writer = this.#writer;
    writer.begin(room);
    const ackedUpTo = this.#newSinceAck ? this.#largestReceived : -1;
    if (this.#newSinceAck) this.#writeAck(now);
    const ackEnd = writer.length;
    this.#writePathFrames();
    const packetNumber = this.#allocate();
    if (!eliciting) {
      if (pathFrames) return this.#sentAlone(packetNumber, now);
      this.#stats.ackOnlyPackets++;
      this.#stats.packetsSent++;
      return { packetNumber, parts: writer.finish() };
    }
    const packet = newPacket(now, ackedUpTo, 0);
    this.#writeControl(packet);
    if (this.#closeDue) {
      writer.close(CLOSE_APPLICATION);
      this.#closeDue = false;
      packet.close = true;
    }
    // The last packet the window lets out asks for an ACK at once: a receiver waiting for its 20th
    // packet (or 25 ms) would otherwise stall a small window for the whole ACK delay every round trip.
    if (recovery.congestion.bytesInFlight + 2 * datagramBytes > recovery.congestion.window) writer.ping();
    if (this.#sending) this.#outbound.writeData(writer, packet);
    // Any frame but an ACK (path frames too) elicits an acknowledgement, as a PING would; add one only when nothing else does.
    if (writer.length === ackEnd) writer.ping();
    this.#pingDue = false;
    const parts = writer.finish();
    packet.bytes = writer.length + DATA_HEADER_BYTES + TAG_BYTES; // the datagram: what the window counts
    recovery.onSent(packetNumber, packet, probe);
    this.#pacer.onSent(packet.bytes);
    this.#stats.packetsSent++;
    if (!this.#hasElicitingWork()) recovery.congestion.onApplicationLimited();
    return { packetNumber, parts };
  }

  /**
   * Whether the window and the pacer let a packet of `bytes` go now (when the pacer holds it, its
   * time is the next deadline).
   */
  #mayGo(bytes: number, now: number): boolean {
    const { congestion, rtt } = this.#recovery;
    this.#pacingAt = Infinity;
    if (!congestion.canSend(bytes)) return false;
    const at = this.#pacer.nextSendTime(bytes, congestion.window, rtt.smoothed, now);
    if (at <= now) return true;
    this.#pacingAt = at;
    return false;
  }

  /**
   * A path MTU probe: PING and PADDING to exactly `datagramBytes` once sealed, in flight (its ACK or
   * loss goes to the search) but carrying nothing that goes again.
   */
  #mtuProbe(datagramBytes: number, now: number): Transmit {
    const writer = this.#writer;
    writer.begin(datagramBytes - DATA_HEADER_BYTES - TAG_BYTES);
    writer.ping();
    writer.padding();
    const packetNumber = this.#allocate();
    const packet = newPacket(now, -1, this.#pathMtu.onProbeSent());
    packet.bytes = datagramBytes;
    this.#recovery.onSent(packetNumber, packet, false);
    this.#pacer.onSent(datagramBytes);
    this.#stats.packetsSent++;
    return { packetNumber, parts: writer.finish() };
  }

  /**
   * The connection's path changed (an address change, a relay, a validation): its datagrams go back
   * to 1200 bytes, and path MTU discovery searches up to `ceilingBytes` (1200: none) from now. The
   * host passes 1200 while the address is not validated (no probe goes to an unproven address) or
   * is a relay.
   */
  restartPathMtu(ceilingBytes: number): void {
    this.#pathMtu.restart(Math.min(ceilingBytes, this.#config.maxDatagramBytes));
  }

  /**
   * What the host says of the path now, for the end of an unreachable peer's error message ("" when
   * there is nothing to add): a relayed path's gateway may have restarted, which no timeout can tell
   * from a peer that vanished, but the operator can.
   */
  notePath(note: string): void {
    this.#pathNote = note;
  }

  /**
   * Written out field by field: the same object built from three spreads took ~34 µs a call (V8
   * copies spread properties one by one into a fresh dictionary-mode object), which a gateway's
   * stats() paid for each of its 10,000 connections (~0.5 s with the event loop blocked).
   */
  stats(): DeliveryStats {
    const { rtt } = this.#recovery;
    const counts = this.#stats;
    const pathMtu = this.#pathMtu.stats;
    const recovery = this.#recovery.stats;
    return {
      packetsSent: counts.packetsSent,
      packetsReceived: counts.packetsReceived,
      ackOnlyPackets: counts.ackOnlyPackets,
      messagesSent: counts.messagesSent,
      messagesReceived: counts.messagesReceived,
      streamsOpened: counts.streamsOpened,
      streamsAccepted: counts.streamsAccepted,
      streamErrors: counts.streamErrors,
      malformedPackets: counts.malformedPackets,
      flowControlViolations: counts.flowControlViolations,
      invalidAcks: counts.invalidAcks,
      optimisticAcks: counts.optimisticAcks,
      pathMtuBytes: pathMtu.pathMtuBytes,
      mtuProbesSent: pathMtu.mtuProbesSent,
      mtuProbesLost: pathMtu.mtuProbesLost,
      mtuBlackHoles: pathMtu.mtuBlackHoles,
      controlFramesDropped: this.#control.dropped,
      packetsLost: recovery.packetsLost,
      spuriousLosses: recovery.spuriousLosses,
      tailLossProbes: recovery.tailLossProbes,
      retransmissionTimeouts: recovery.retransmissionTimeouts,
      rttMs: rtt.hasSample ? rtt.smoothed : 0,
      rttVariationMs: rtt.variation,
      minRttMs: rtt.hasSample ? rtt.min : 0,
      rtoMs: rtt.rto,
      congestionWindowBytes: this.#recovery.congestion.window,
      bytesInFlight: this.#recovery.congestion.bytesInFlight,
      sendBufferedBytes: this.#outbound.bufferedBytes,
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
      this.#stallProbed = false;
      if (this.#state === "open") this.#inbound.messageData(sequence, total, offset, data); // closing: acknowledged, not delivered
    },
    streamData: (id, offset, fin, data) => {
      this.#elicits = true;
      this.#stallProbed = false;
      if (this.#state === "open") this.#inbound.streamData(id, offset, fin, data);
    },
    messageCredit: (byteLimit, sequenceLimit) => {
      this.#elicits = true;
      this.#outbound.onMessageCredit(byteLimit, sequenceLimit);
    },
    streamCredit: (id, limit) => {
      this.#elicits = true;
      this.#outbound.onStreamCredit(id, limit);
    },
    streamsCredit: (idLimit) => {
      this.#elicits = true;
      this.#outbound.onStreamsCredit(idLimit);
    },
    streamReset: (id, code) => {
      this.#elicits = true;
      if (this.#state === "open") this.#inbound.streamReset(id, code);
    },
    stopSending: (id) => {
      this.#elicits = true;
      if (this.#sending) this.#outbound.onStopSending(id);
    },
    messageRefused: (sequence, length, limit) => {
      this.#elicits = true;
      if (this.#sending) this.#outbound.onMessageRefused(sequence, length, limit);
    },
    pathChallenge: (data) => {
      this.#elicits = true;
      this.#ackNow = true;
      if (this.#challengesReceived.length < MAX_PATH_FRAMES) this.#challengesReceived.push(new Uint8Array(data)); // the host answers at once
    },
    pathResponse: (data) => {
      this.#elicits = true;
      if (this.#pathResponses.length < MAX_PATH_FRAMES) this.#pathResponses.push(new Uint8Array(data));
    },
    control: (type, sequence, body) => {
      this.#elicits = true;
      this.#control.receive(type, sequence, body);
    },
  };

  #onAck(ranges: Array<[number, number]>, delayMs: number): void {
    if (ranges[0]![1] > this.#nextPacketNumber) {
      this.#stats.invalidAcks++; // acknowledges what we never sent: ignore the frame
      return;
    }
    // Skipped numbers are ascending: only those at or above the frame's lowest range can be named.
    const lowest = ranges[ranges.length - 1]![0];
    const skippedNumbers = this.#skipped;
    for (let i = skippedNumbers.length - 1; i >= 0 && skippedNumbers[i]! >= lowest; i--) {
      const skipped = skippedNumbers[i]!;
      if (acknowledges(ranges, skipped)) {
        this.#stats.optimisticAcks++;
        this.#fail(new SluiceError("ERR_SLUICE_PROTOCOL_VIOLATION", `protocol violation: the peer acknowledged packet ${skipped}, which was never sent (an optimistic ACK)`));
        this.#finalClose = CLOSE_PROTOCOL_VIOLATION;
        return;
      }
    }
    const acknowledged = this.#recovery.onAck(ranges, delayMs, this.#now, this.#onPacketAcked, this.#onPacketLost);
    this.#pathMtu.endLossEvent(this.#now, false);
    if (acknowledged) this.#queueCloseIfFlushed();
  }

  /**
   * The packet arrived. It may have been declared lost before its ACK came (reordering), and what it
   * carried sent again since: every step here counts a frame done once, whichever copy is acknowledged.
   */
  readonly #onPacketAcked = (packet: SentPacket): void => {
    // The peer has our ACK up to ackedUpTo (RFC 9000 §13.2.4): the ranges wholly below it need not be
    // reported again. Without this, the gaps of the peer's skipped packet numbers (one in ~128) stayed
    // in every ACK frame, up to 32 ranges: a 1 KiB message no longer fit beside the ACK in one packet,
    // and a request/response round trip between processes went from ~70 to ~200 µs.
    if (packet.ackedUpTo >= 0) this.#received.dropRangesBelow(packet.ackedUpTo);
    if (packet.mtuProbe !== 0) return this.#pathMtu.onProbeAcked(packet.mtuProbe, this.#now);
    this.#pathMtu.onDataAcked(packet.bytes);
    this.#outbound.onAcked(packet);
    this.#control.onAcked(packet);
    if (packet.close && this.#state === "closing") this.#enterDrain();
  };

  /** A packet is lost: its data, credits, stops, refusals, resets and CLOSE go again (in new packets). */
  readonly #onPacketLost = (packet: SentPacket): void => {
    if (packet.mtuProbe !== 0) return this.#pathMtu.onProbeLost(packet.mtuProbe, this.#now);
    this.#pathMtu.onDataLost(packet.bytes);
    this.#outbound.onLost(packet);
    this.#inbound.onLost(packet);
    this.#control.onLost(packet);
    if (packet.close && this.#state === "closing") this.#closeDue = true;
  };

  #onPeerClose(): void {
    if (this.#state === "closed" || this.#state === "draining") return;
    this.#closedBy ??= "peer";
    // The peer's last ACK often comes in the packet with its CLOSE, processed first: what it
    // acknowledged is flushed, though the CLOSE ends the connection before a flush() looks again.
    this.#acknowledgedAtPeerClose = this.#outbound.flushed(this.#outbound.writtenMark());
    this.#outbound.discard();
    this.#control.discard();
    this.#enterDrain();
  }

  #enterDrain(): void {
    this.#state = "draining";
    this.#drainUntil = this.#now + DRAIN_RTOS * this.#recovery.rtt.rto;
    this.#closeDue = false;
    this.#recovery.clear(); // nothing is retransmitted while draining, nor owed an acknowledgement
    this.#inbound.releaseSpareMemory();
  }

  #fail(error: SluiceError | undefined): void {
    this.#error = error;
    this.#state = "closed";
    this.#outbound.discard();
    this.#control.discard();
    this.#recovery.clear();
    this.#inbound.releaseSpareMemory();
  }

  #queueCloseIfFlushed(): void {
    if (this.#state === "closing" && !this.#closeQueued && this.#outbound.delivered) {
      this.#closeQueued = true;
      this.#closeDue = true;
    }
  }

  #nextPingTime(): number {
    return Math.max(this.#lastReceiveTime, this.#lastPingTime) + this.#keepAliveInterval;
  }

  /** When the silence after data that arrived is probed (STALL_PROBE_RTOS), if it was not yet. */
  #stallProbeTime(): number {
    return this.#stallProbed ? Infinity : this.#lastReceiveTime + STALL_PROBE_RTOS * this.#recovery.rtt.rto;
  }

  // ---------------------------------------------------------------- writing frames

  #writeAck(now: number): void {
    const room = this.#writer.remaining;
    if (room < ACK_MIN_BYTES) return;
    const count = Math.min(this.#received.rangeCount, MAX_ACK_RANGES, 1 + Math.floor((room - ACK_MIN_BYTES) / ACK_RANGE_BYTES));
    const ranges: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) ranges.push(this.#received.rangeFromTop(i));
    this.#writer.ack(ranges, now - this.#largestReceivedTime);
    this.#newSinceAck = false;
    this.#elicitingSinceAck = 0;
    this.#ackDeadline = Infinity;
    this.#ackNow = false;
  }

  /** Control frames, before any data: our credit, stops and refusals to the peer, our streams' resets, the host's control frames. */
  #writeControl(packet: SentPacket): void {
    this.#inbound.writeControl(this.#writer, packet);
    this.#outbound.writeResets(this.#writer, packet);
    this.#control.write(this.#writer, packet);
  }

  /** The PATH_CHALLENGE due and the PATH_RESPONSEs owed, where they fit. */
  #writePathFrames(): void {
    const writer = this.#writer;
    if (this.#challengeDue !== undefined && writer.remaining >= 1 + PATH_DATA_BYTES) {
      writer.pathChallenge(this.#challengeDue);
      this.#challengeDue = undefined;
    }
    while (this.#responsesDue.length > 0 && writer.remaining >= 1 + PATH_DATA_BYTES) writer.pathResponse(this.#responsesDue.shift()!);
  }

  /** A packet too small for anything but an ACK and path frames (an unvalidated address's allowance). */
  #pollSmall(now: number, room: number): Transmit | undefined {
    const ackDue = this.#elicitingSinceAck > 0 && (this.#ackNow || now >= this.#ackDeadline);
    if (this.#challengeDue === undefined && this.#responsesDue.length === 0 && !ackDue) return undefined;
    this.#writer.begin(room);
    this.#writePathFrames();
    if (this.#newSinceAck) this.#writeAck(now);
    if (this.#writer.length === 0) return undefined;
    return this.#sentAlone(this.#allocate(), now);
  }

  /**
   * Sends the packet begun without recording it in flight: path frames are not retransmitted (the host
   * challenges again on its own schedule; a lost response is answered by the next challenge).
   */
  #sentAlone(packetNumber: number, now: number): Transmit {
    void now;
    this.#stats.packetsSent++;
    return { packetNumber, parts: this.#writer.finish() };
  }

  #hasElicitingWork(): boolean {
    if (this.#closeDue) return true;
    if (!this.#sending) return false;
    return this.#pingDue || this.#inbound.controlDue || this.#outbound.hasWork || this.#control.due;
  }

  /** Open or closing: data, credit, pings and writer timeouts still run (draining and closed only answer CLOSEs). */
  get #sending(): boolean {
    return this.#state === "open" || this.#state === "closing";
  }

  #assertOpen(): void {
    const reason = this.endReason;
    if (reason !== undefined) throw reason;
  }
}

/** A packet about to be sent, carrying nothing yet; `mtuProbe`: its probe number (0: not a probe). */
function newPacket(time: number, ackedUpTo: number, mtuProbe: number): SentPacket {
  return {
    time, bytes: 0, mtuProbe, data: NONE_SENT, messageCredit: false, streamsCredit: false, streamCredits: NONE_SENT, stops: NONE_SENT, refusals: NONE_SENT, resets: NONE_SENT, controls: NONE_SENT, close: false, ackedUpTo,
  };
}
