// The sending half of a session: outgoing messages (numbered, counted against the peer's message
// credit) and byte streams (each against its own credit), what they have in flight, what was lost and
// goes again, resets, and what the peer said of them (a reader's STOP_SENDING, a refused message). It
// fills a packet's data frames in turn between the messages and each stream, so none starves.

import { internalAssertion, limitReached, SluiceError } from "../errors/errors.ts";
import { MESSAGE_DATA_HEADER_BYTES, RESET_ABORTED, STREAM_DATA_HEADER_BYTES, type PacketWriter } from "./frames.ts";
import { INITIAL_MESSAGE_CREDIT_BYTES, INITIAL_STREAM_CREDIT_BYTES, INITIAL_STREAMS_CREDIT, MESSAGES_AHEAD, type ReliabilityConfig } from "./options.ts";
import { RangeSet } from "./range-set.ts";
import { SendStream } from "./send-stream.ts";
import { DATA_HEADER_BYTES } from "../wire/constants.ts";
import { withSent } from "./sent-lists.ts";

/** Resets are written while this much room is left, so a packet of control frames still carries data. */
const RESET_ROOM_BYTES = 600;
/**
 * Where data that a packet's room cuts short ends, mod 8 (up to 7 bytes sooner): at the offset that,
 * as the next packet's first frame, lies in the receiver's queue frame (8-byte aligned, the datagram 8
 * bytes in) at the same address mod 8 as in the buffer it is copied to there (stream blocks start at
 * multiples of 4 KiB and a message's buffer at its offset 0). V8 copies out of shared memory word by
 * word only between addresses aligned alike, byte by byte otherwise: 1,150 bytes in ~170 ns against
 * ~900 (measured on the 2-core VM); without the cut, 7 of 8 full packets' data was copied bytewise.
 */
const STREAM_CUT_RESIDUE = (DATA_HEADER_BYTES + STREAM_DATA_HEADER_BYTES) % 8;
const MESSAGE_CUT_RESIDUE = (DATA_HEADER_BYTES + MESSAGE_DATA_HEADER_BYTES) % 8;
/** Why outgoing streams ended early (reset by us, stopped by the reader): the last this many are kept. */
const MAX_END_REASONS = 64;
/**
 * Messages queued and not yet acknowledged, before writers wait: bytes alone would not bound a queue
 * of empty messages. Four times the 1024 the peer lets ahead of its reader.
 */
export const MAX_QUEUED_MESSAGES = 4 * MESSAGES_AHEAD;
/** Outgoing streams open at once (not yet delivered or reset); openStream() beyond is a RangeError ERR_SLUICE_LIMIT_REACHED. */
export const MAX_OPEN_STREAMS = 1024;
/**
 * The part of the send buffer messages, and streams, may each fill whatever the other kind holds.
 * Without it the turn went by the buffer's bound alone: a stream opened behind 12 MiB of un-awaited
 * sends took its first write after the last of them was queued (1.6 s on loopback, growing with the
 * backlog), and messages the peer had not read yet kept its stream's writer waiting for ever.
 */
const RESERVED_SHARE_OF_SEND_BUFFER = 1 / 4;

/** A range of a stream (or message) a packet carried. */
export interface SentData {
  stream: SendStream;
  /** The message it belongs to, if it is one (so a loss or an ACK finds it without a search). */
  message: OutMessage | undefined;
  offset: number;
  length: number;
  fin: boolean;
}

/** What a packet carried of this side's: data ranges and stream resets. */
export interface OutboundSent {
  data: readonly SentData[];
  resets: readonly OutStream[];
}

export interface OutMessage {
  sequence: number;
  /** Where the message starts in the concatenation of all messages: what message credit counts. */
  start: number;
  stream: SendStream;
}

export interface OutStream {
  id: number;
  stream: SendStream;
  /** The peer's credit: data bytes below this offset may go. */
  limit: number;
  /** Bytes written past `limit` (one write at most): they count against no send buffer until credited. */
  pastCredit: number;
  /** The code of its reset, once it was reset (then its RESET frame is due or sent), else undefined. */
  resetCode: number | undefined;
}

/**
 * Everything written up to a moment (flush()): the messages numbered below `messages`, and for each
 * stream open then, its bytes (and end, if finished) up to `end`.
 */
export interface WrittenMark {
  messages: number;
  streams: Array<{ out: OutStream; end: number }>;
}

/** The session's counters this side keeps up to date. */
export interface OutboundCounters {
  messagesSent: number;
  streamsOpened: number;
}

/** Retired message slots at the front of the queue before it is compacted (see Outbound's #messages). */
const RETIRED_BEFORE_COMPACTING = 1024;

export class Outbound {
  readonly #config: ReliabilityConfig;
  readonly #counters: OutboundCounters;
  /**
   * The messages not yet settled, oldest first, from #messagesHead on: a retired message's slot is
   * emptied and the head moves past it, and the array is compacted once the retired slots are at least
   * RETIRED_BEFORE_COMPACTING and half of it. Array.shift() on the 4,096 queued messages copied the
   * whole array whenever V8 could not trim it in place (during a collection's marking): 4.8% of the
   * CPU of a run of 1100 B messages (docs/benchmarks.md, "The delivery path, third pass").
   */
  #messages: Array<OutMessage | undefined> = [];
  #messagesHead = 0;
  /** Index in #messages of the first message with bytes never sent (at or after the head). */
  #nextNewMessage = 0;
  readonly #lostMessages = new Set<OutMessage>();
  #nextMessageSequence = 0;
  #messageBytesQueued = 0;
  #peerMessageLimit = INITIAL_MESSAGE_CREDIT_BYTES;
  #peerSequenceLimit = MESSAGES_AHEAD;
  readonly #streams: OutStream[] = [];
  readonly #streamById = new Map<number, OutStream>();
  #nextStreamId = 0;
  #peerStreamsLimit = INITIAL_STREAMS_CREDIT;
  /** Reset streams whose RESET frame is due (again, if one was lost). */
  readonly #resetsDue = new Set<OutStream>();
  /** Why outgoing streams ended early, for the application (the last MAX_END_REASONS). */
  readonly #endReasons = new Map<number, SluiceError>();
  /** The largest message the peer accepts, once a refusal told us (Infinity until then). */
  #peerMaxMessageBytes = Infinity;
  /** Messages the peer refused (the latest ranges): a repeated MESSAGE_REFUSED is heard once. */
  readonly #refusedSequences = new RangeSet();
  /** The peer refused a message; not yet reported to the application. */
  #unreportedRefusal: SluiceError | undefined;
  /** Message bytes written and not yet acknowledged (or refused). */
  #messageBytes = 0;
  /** Stream bytes written and not yet acknowledged (or given up), those past their credit among them. */
  #streamBytes = 0;
  /** Stream bytes past their stream's credit: what streamHasRoom() leaves out (see there). */
  #streamBytesPastCredit = 0;
  #rotation = 0;

  constructor(config: ReliabilityConfig, counters: OutboundCounters) {
    this.#config = config;
    this.#counters = counters;
  }

  /** Bytes written and not yet acknowledged, across messages and streams. */
  get bufferedBytes(): number {
    return this.#messageBytes + this.#streamBytes;
  }

  /** Whether a message may be added: the message queue is under its bound, and the send buffer has room for messages (#hasRoom). */
  get messagesHaveRoom(): boolean {
    return this.#messages.length - this.#messagesHead < MAX_QUEUED_MESSAGES && this.#hasRoom(this.#messageBytes, this.#streamBytesWithinCredit);
  }

  /** Stream bytes below their stream's credit: what streams hold of the send buffer. */
  get #streamBytesWithinCredit(): number {
    return this.#streamBytes - this.#streamBytesPastCredit;
  }

  /**
   * Whether one kind of data (messages, or streams), holding `own` bytes of the send buffer beside
   * the other's `other`, may add more: while the buffer is under its bound, or while the kind holds
   * less than its reserved share of it, so a backlog of one kind never keeps the other waiting for
   * its turn. What is counted stays within the bound and a share, plus the one write taken past
   * them; a stream's bytes past its credit (its last write's, one write per stream) are not counted.
   */
  #hasRoom(own: number, other: number): boolean {
    const bound = this.#config.sendBufferBytes;
    return own + other < bound || own < bound * RESERVED_SHARE_OF_SEND_BUFFER;
  }

  /**
   * Whether outgoing stream `id`'s writer may add more: the peer admitted the stream (its id is below
   * the peer's streams credit), the stream has credit left, so what it holds can go at once (a write
   * can take it past its credit: by that one write at most), and the send buffer has room for streams
   * (#hasRoom). As QUIC's writers wait on stream credit, bytes that cannot go yet never take the
   * shared buffer from streams whose bytes can: bytes of streams the peer had not admitted filled it,
   * and the writers of the streams the peer was reading waited for ever. For the same reason the
   * bytes of a write past its stream's credit are not counted against the buffer until the credit
   * reaches them: three streams written in 3 MiB writes and read one after the other held 4 MiB past
   * the unread ones' credit, and the second write of the stream being read waited for ever.
   * A stream that ended early answers true: its write fails, with why.
   */
  streamHasRoom(id: number): boolean {
    const out = this.#streamById.get(id);
    if (out === undefined || out.resetCode !== undefined) return true;
    return out.id < this.#peerStreamsLimit && out.stream.written < out.limit && this.#hasRoom(this.#streamBytesWithinCredit, this.#messageBytes);
  }

  /**
   * Everything written was acknowledged (a graceful close may go): every message, and every stream's
   * bytes; a finished stream's end and a reset stream's RESET too. A stream left open (not finished)
   * with every byte acknowledged does not hold the close: its reader learns the connection closed first.
   */
  get delivered(): boolean {
    if (this.bufferedBytes !== 0 || this.#messages.length !== this.#messagesHead) return false;
    for (const out of this.#streams) if (out.stream.finished || out.resetCode !== undefined) return false;
    return true;
  }

  // ---------------------------------------------------------------- the application's writes

  /** Queues one message (the caller checked its size and the room, and hands over `bytes`). */
  sendMessage(bytes: Uint8Array): void {
    const stream = new SendStream();
    stream.write(bytes);
    stream.finish();
    this.#messages.push({ sequence: this.#nextMessageSequence++, start: this.#messageBytesQueued, stream });
    this.#messageBytesQueued += bytes.length;
    this.#messageBytes += bytes.length;
    this.#counters.messagesSent++;
  }

  /** A new outgoing stream's id. Its writes wait until the peer admits it (streamHasRoom). */
  openStream(): number {
    if (this.#streams.length >= MAX_OPEN_STREAMS) {
      throw limitReached(`${MAX_OPEN_STREAMS} outgoing streams are open already: close or abort one before opening another`, this.openStream);
    }
    const out: OutStream = { id: this.#nextStreamId++, stream: new SendStream(), limit: INITIAL_STREAM_CREDIT_BYTES, pastCredit: 0, resetCode: undefined };
    this.#streams.push(out);
    this.#streamById.set(out.id, out);
    this.#counters.streamsOpened++;
    return out.id;
  }

  writeStream(id: number, bytes: Uint8Array): void {
    const out = this.#writable(id);
    out.stream.write(bytes);
    this.#streamBytes += bytes.length;
    this.#countPastCredit(out, Math.max(0, out.stream.written - out.limit));
  }

  finishStream(id: number): void {
    this.#writable(id).stream.finish();
  }

  /**
   * Outgoing stream `id`: "delivered" once the peer acknowledged every byte and the end, why it ended
   * early if it was reset or its reader cancelled it (remembered for the last MAX_END_REASONS), else
   * "sending".
   */
  streamState(id: number): "sending" | "delivered" | SluiceError {
    const reason = this.#endReasons.get(id);
    if (reason !== undefined) return reason;
    return this.#streamById.has(id) ? "sending" : "delivered";
  }

  /**
   * Gives up on outgoing stream `id`: its unsent bytes are dropped and the peer is told (a STREAM_RESET,
   * retransmitted until acknowledged, once the peer admitted the stream), so its reader fails with a
   * clear error instead of waiting.
   */
  resetStream(id: number, reason: SluiceError, code = RESET_ABORTED): void {
    const out = this.#streamById.get(id);
    if (out === undefined || out.resetCode !== undefined) return;
    out.resetCode = code;
    this.#abandon(out);
    this.#resetsDue.add(out);
    this.#endedEarly(id, reason);
  }

  /** The peer's reader cancelled stream `id` (STOP_SENDING): nothing more goes, and its writer is told why. */
  onStopSending(id: number): void {
    const out = this.#streamById.get(id);
    if (out === undefined) return; // delivered, or never opened: nothing to stop
    this.#abandon(out);
    this.#forget(out);
    if (out.resetCode === undefined) {
      this.#endedEarly(id, new SluiceError("ERR_SLUICE_STREAM_CANCELLED", `stream ${id} was cancelled by its reader`));
    }
  }

  /** Drops stream `out`'s bytes: nothing of it is held any more. */
  #abandon(out: OutStream): void {
    this.#streamBytes -= out.stream.abandon();
    this.#countPastCredit(out, 0);
  }

  /** Stream `out` now holds `bytes` past its credit. */
  #countPastCredit(out: OutStream, bytes: number): void {
    this.#streamBytesPastCredit += bytes - out.pastCredit;
    out.pastCredit = bytes;
  }

  #endedEarly(id: number, reason: SluiceError): void {
    this.#endReasons.set(id, reason);
    if (this.#endReasons.size > MAX_END_REASONS) this.#endReasons.delete(this.#endReasons.keys().next().value!);
  }

  /**
   * The peer refused message `sequence` (its declared `length` is over the peer's `limit`): nothing
   * more of it goes, later messages go on, and the application hears of it (takeRefusal()). It may
   * have been acknowledged whole already (the peer acknowledges packets, not what it kept).
   */
  onMessageRefused(sequence: number, length: number, limit: number): void {
    if (sequence >= this.#nextMessageSequence || this.#refusedSequences.has(sequence)) return; // never sent, or heard already
    this.#refusedSequences.add(sequence, sequence + 1);
    this.#refusedSequences.limitRanges(MAX_END_REASONS);
    this.#peerMaxMessageBytes = Math.min(this.#peerMaxMessageBytes, limit);
    this.#unreportedRefusal ??= messageTooLarge(`message ${sequence} (${length} bytes) was refused by the peer`, limit);
    const head = this.#messages[this.#messagesHead];
    const message = head === undefined ? undefined : this.#messages[this.#messagesHead + sequence - head.sequence];
    if (message === undefined || message.stream.settled) return;
    this.#messageBytes -= message.stream.abandon();
    this.#lostMessages.delete(message);
    this.#retireSettledMessages();
  }

  /** The largest message the peer accepts, as far as it told us (Infinity until a refusal did). */
  get peerMaxMessageBytes(): number {
    return this.#peerMaxMessageBytes;
  }

  /** A refusal not yet reported (once: the next call takes it). */
  takeRefusal(): SluiceError | undefined {
    const refusal = this.#unreportedRefusal;
    this.#unreportedRefusal = undefined;
    return refusal;
  }

  /** What has been written until now, to tell later whether the peer acknowledged all of it (flushed()). */
  writtenMark(): WrittenMark {
    return {
      messages: this.#nextMessageSequence,
      streams: this.#streams.filter((out) => out.resetCode === undefined).map((out) => ({ out, end: out.stream.writtenEnd })),
    };
  }

  /** Whether everything `mark` covers was acknowledged (a stream that ended early counts as done with). */
  flushed(mark: WrittenMark): boolean {
    const head = this.#messages[this.#messagesHead];
    if (head !== undefined && head.sequence < mark.messages) return false;
    for (const { out, end } of mark.streams) {
      if (this.#streamById.get(out.id) === out && out.resetCode === undefined && out.stream.acknowledged < end) return false;
    }
    return true;
  }

  /** Drops everything not yet delivered (the peer closed, or the connection ended). */
  discard(): void {
    this.#messages.length = 0;
    this.#messagesHead = 0;
    this.#nextNewMessage = 0;
    this.#lostMessages.clear();
    this.#streams.length = 0;
    this.#streamById.clear();
    this.#messageBytes = 0;
    this.#streamBytes = 0;
    this.#streamBytesPastCredit = 0;
  }

  // ---------------------------------------------------------------- the peer's credit

  onMessageCredit(byteLimit: number, sequenceLimit: number): void {
    this.#peerMessageLimit = Math.max(this.#peerMessageLimit, byteLimit);
    this.#peerSequenceLimit = Math.max(this.#peerSequenceLimit, sequenceLimit);
  }

  onStreamCredit(id: number, limit: number): void {
    const out = this.#streamById.get(id);
    if (out === undefined) return;
    out.limit = Math.max(out.limit, limit);
    if (out.pastCredit > 0) this.#countPastCredit(out, Math.max(0, out.stream.written - out.limit));
  }

  onStreamsCredit(idLimit: number): void {
    this.#peerStreamsLimit = Math.max(this.#peerStreamsLimit, idLimit);
  }

  // ---------------------------------------------------------------- packets

  /** Whether there is something to send now: lost data, new data within credit, or a reset. */
  get hasWork(): boolean {
    for (const out of this.#resetsDue) if (out.id < this.#peerStreamsLimit) return true;
    for (const message of this.#lostMessages) if (message.stream.hasLost) return true;
    const next = this.#firstUnsentMessage();
    if (next !== undefined && next.sequence < this.#peerSequenceLimit && next.stream.hasSendable(this.#peerMessageLimit - next.start)) return true;
    for (const out of this.#streams) {
      if (out.id < this.#peerStreamsLimit && out.stream.hasSendable(out.limit)) return true;
    }
    return false;
  }

  /**
   * The RESET frames that are due, of streams the peer admitted: a stream past its streams credit is
   * reset once it is admitted. (Sent before, the reset was dropped as past the credit and the
   * peer never heard of the stream, whose id then held one of its maxIncomingStreams for ever.)
   */
  writeResets(writer: PacketWriter, packet: OutboundSent): void {
    for (const out of this.#resetsDue) {
      if (writer.remaining < RESET_ROOM_BYTES) break;
      if (out.id >= this.#peerStreamsLimit) continue;
      writer.streamReset(out.id, out.resetCode!);
      this.#resetsDue.delete(out);
      packet.resets = withSent(packet.resets, out);
    }
  }

  /**
   * Fills the packet with data, taking turns between the messages and each stream: the next packet
   * starts with the source after the last one that wrote here, so none starves.
   */
  writeData(writer: PacketWriter, packet: OutboundSent): void {
    const sources = 1 + this.#streams.length;
    const first = this.#rotation % sources;
    for (let k = 0; k < sources && writer.remaining > STREAM_DATA_HEADER_BYTES; k++) {
      const source = (first + k) % sources;
      const before = packet.data.length;
      if (source === 0) this.#writeMessages(writer, packet);
      else this.#writeStream(writer, packet, this.#streams[source - 1]!);
      if (packet.data.length > before) this.#rotation = source + 1;
    }
  }

  /** The packet arrived: its data is acknowledged; its resets are done with. */
  onAcked(packet: OutboundSent): void {
    for (const data of packet.data) this.#onDataAcked(data);
    for (const out of packet.resets) this.#forget(out);
  }

  /** The packet is lost: its data and resets go again (in new packets). */
  onLost(packet: OutboundSent): void {
    for (const data of packet.data) {
      data.stream.onLost(data.offset, data.length, data.fin);
      if (data.message !== undefined && data.stream.hasLost) this.#lostMessages.add(data.message);
    }
    for (const out of packet.resets) if (this.#streamById.has(out.id)) this.#resetsDue.add(out);
  }

  #onDataAcked(data: SentData): void {
    const released = data.stream.onAcked(data.offset, data.length, data.fin);
    if (data.message === undefined) this.#streamBytes -= released;
    else this.#messageBytes -= released;
    if (!data.stream.complete) return;
    if (data.message === undefined) {
      const out = this.#streams.find((candidate) => candidate.stream === data.stream);
      if (out !== undefined) this.#forget(out);
      return;
    }
    this.#retireSettledMessages();
  }

  /** Retires completed (or refused) messages from the front: later ones wait their turn, so the array stays ordered. */
  #retireSettledMessages(): void {
    const messages = this.#messages;
    let head = this.#messagesHead;
    for (let message = messages[head]; message !== undefined && message.stream.settled; message = messages[head]) {
      this.#lostMessages.delete(message);
      messages[head++] = undefined; // its bytes go now, not at the next compaction
    }
    this.#nextNewMessage = Math.max(this.#nextNewMessage, head);
    if (head === messages.length || (head >= RETIRED_BEFORE_COMPACTING && 2 * head >= messages.length)) {
      if (head === messages.length) messages.length = 0;
      else messages.splice(0, head);
      this.#nextNewMessage -= head;
      head = 0;
    }
    this.#messagesHead = head;
  }

  /** The stream is done with: delivered whole, or its reset was acknowledged. */
  #forget(out: OutStream): void {
    const at = this.#streams.indexOf(out);
    if (at >= 0) this.#streams.splice(at, 1);
    this.#streamById.delete(out.id);
    this.#resetsDue.delete(out);
  }

  #writeMessages(writer: PacketWriter, packet: OutboundSent): void {
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
      const range = message.stream.take(Math.min(0xffff, writer.remaining - MESSAGE_DATA_HEADER_BYTES), limit, MESSAGE_CUT_RESIDUE);
      if (range === undefined) return; // waiting for credit
      writer.messageData(message.sequence, message.stream.written, range.offset, range.data);
      packet.data = withSent(packet.data, { stream: message.stream, message, offset: range.offset, length: range.data.length, fin: range.fin });
      if (!message.stream.hasLost) this.#lostMessages.delete(message);
    }
  }

  /** The first message with bytes never sent (the index moves past messages sent whole). */
  #firstUnsentMessage(): OutMessage | undefined {
    let message = this.#messages[this.#nextNewMessage];
    while (message !== undefined && message.stream.allSent) message = this.#messages[++this.#nextNewMessage];
    return message;
  }

  #writeStream(writer: PacketWriter, packet: OutboundSent, out: OutStream): void {
    if (out.id >= this.#peerStreamsLimit || out.resetCode !== undefined) return;
    while (writer.remaining > STREAM_DATA_HEADER_BYTES) {
      const range = out.stream.take(Math.min(0xffff, writer.remaining - STREAM_DATA_HEADER_BYTES), out.limit, STREAM_CUT_RESIDUE);
      if (range === undefined) return;
      writer.streamData(out.id, range.offset, range.fin, range.data);
      packet.data = withSent(packet.data, { stream: out.stream, message: undefined, offset: range.offset, length: range.data.length, fin: range.fin });
    }
  }

  /** Stream `id`, still writable: throws why it is not (it ended early), or an assertion if it never was open. */
  #writable(id: number): OutStream {
    const out = this.#streamById.get(id);
    const ended = this.#endReasons.get(id);
    if (ended !== undefined) throw ended;
    if (out === undefined) throw internalAssertion(`stream ${id} is not open for writing`);
    return out;
  }
}

/** ERR_SLUICE_MESSAGE_TOO_LARGE: `what`, naming the peer's limit. */
export function messageTooLarge(what: string, limit: number): SluiceError {
  return new SluiceError("ERR_SLUICE_MESSAGE_TOO_LARGE", `${what}: the peer accepts messages of at most ${limit} bytes (its reliability.maxMessageBytes)`);
}
