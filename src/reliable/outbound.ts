// The sending half of a session: outgoing messages (numbered, counted against the peer's message
// credit) and byte streams (each against its own credit), what they have in flight, what was lost and
// goes again, resets, and the writer-side inactivity timeout. It fills a packet's data frames in turn
// between the messages and each stream, so none starves.

import { MESSAGE_DATA_HEADER_BYTES, RESET_ABORTED, RESET_IDLE, STREAM_DATA_HEADER_BYTES, type PacketWriter } from "./frames.ts";
import { INITIAL_MESSAGE_CREDIT_BYTES, INITIAL_STREAM_CREDIT_BYTES, INITIAL_STREAMS_CREDIT, MESSAGES_AHEAD, type ReliabilityConfig } from "./options.ts";
import { SendStream } from "./send-stream.ts";

/** Resets are written while this much room is left, so a packet of control frames still carries data. */
const RESET_ROOM_BYTES = 600;
/** Reasons kept for reset outgoing streams (the oldest dropped beyond this). */
const MAX_RESET_REASONS = 64;
/**
 * Messages queued and not yet acknowledged, before writers wait: bytes alone would not bound a queue
 * of empty messages. Four times the 1024 the peer lets ahead of its reader.
 */
export const MAX_QUEUED_MESSAGES = 4 * MESSAGES_AHEAD;
/** Outgoing streams open at once (not yet delivered or reset); openStream() beyond is a RangeError. */
export const MAX_OPEN_STREAMS = 1024;

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
  data: SentData[];
  resets: OutStream[];
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
  /** When the application last wrote (or opened it): the writer's inactivity clock. */
  lastWrite: number;
  /** Why it was reset (then its RESET frame is due or sent), else undefined. */
  reset: { reason: string; code: number } | undefined;
}

/** The session's counters this side keeps up to date. */
export interface OutboundCounters {
  messagesSent: number;
  streamsOpened: number;
}

export class Outbound {
  readonly #config: ReliabilityConfig;
  readonly #counters: OutboundCounters;
  readonly #messages: OutMessage[] = [];
  /** Index in #messages of the first message with bytes never sent. */
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
  /** Why outgoing streams were reset, for the application (the last MAX_RESET_REASONS). */
  readonly #resetReasons = new Map<number, string>();
  #buffered = 0;
  #rotation = 0;

  constructor(config: ReliabilityConfig, counters: OutboundCounters) {
    this.#config = config;
    this.#counters = counters;
  }

  /** Bytes written and not yet acknowledged, across messages and streams. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Whether a writer may add more (the send buffer and the message queue are under their bounds). */
  get hasRoom(): boolean {
    return this.#buffered < this.#config.sendBufferBytes && this.#messages.length < MAX_QUEUED_MESSAGES;
  }

  /** Everything written was acknowledged (a graceful close may go). */
  get delivered(): boolean {
    return this.#buffered === 0 && this.#streams.length === 0 && this.#messages.length === 0;
  }

  // ---------------------------------------------------------------- the application's writes

  /** Queues one message (the caller checked its size and the room, and hands over `bytes`). */
  sendMessage(bytes: Uint8Array): void {
    const stream = new SendStream();
    stream.write(bytes);
    stream.finish();
    this.#messages.push({ sequence: this.#nextMessageSequence++, start: this.#messageBytesQueued, stream });
    this.#messageBytesQueued += bytes.length;
    this.#buffered += bytes.length;
    this.#counters.messagesSent++;
  }

  /** A new outgoing stream's id. Its data waits for the peer's stream credit. */
  openStream(now: number): number {
    if (this.#streams.length >= MAX_OPEN_STREAMS) {
      throw new RangeError(`${MAX_OPEN_STREAMS} outgoing streams are open already: close or abort one before opening another`);
    }
    const out: OutStream = { id: this.#nextStreamId++, stream: new SendStream(), limit: INITIAL_STREAM_CREDIT_BYTES, lastWrite: now, reset: undefined };
    this.#streams.push(out);
    this.#streamById.set(out.id, out);
    this.#counters.streamsOpened++;
    return out.id;
  }

  writeStream(id: number, bytes: Uint8Array, now: number): void {
    const out = this.#writable(id);
    out.stream.write(bytes);
    out.lastWrite = now;
    this.#buffered += bytes.length;
  }

  finishStream(id: number): void {
    this.#writable(id).stream.finish();
  }

  /**
   * Outgoing stream `id`: "delivered" once the peer acknowledged every byte and the end, the reason
   * if it was reset (remembered for the last MAX_RESET_REASONS resets), else "sending".
   */
  streamState(id: number): "sending" | "delivered" | { reset: string } {
    const reason = this.#resetReasons.get(id);
    if (reason !== undefined) return { reset: reason };
    return this.#streamById.has(id) ? "sending" : "delivered";
  }

  /**
   * Gives up on outgoing stream `id`: its unsent bytes are dropped and the peer is told (a STREAM_RESET,
   * retransmitted until acknowledged), so its reader fails with a clear error instead of waiting.
   */
  resetStream(id: number, reason: string, code = RESET_ABORTED): void {
    const out = this.#streamById.get(id);
    if (out === undefined || out.reset !== undefined) return;
    out.reset = { reason, code };
    this.#buffered -= out.stream.abandon();
    this.#resetsDue.add(out);
    this.#resetReasons.set(id, reason);
    if (this.#resetReasons.size > MAX_RESET_REASONS) this.#resetReasons.delete(this.#resetReasons.keys().next().value!);
  }

  /** Drops everything not yet delivered (the peer closed, or the connection failed). */
  discard(): void {
    this.#messages.length = 0;
    this.#nextNewMessage = 0;
    this.#lostMessages.clear();
    this.#streams.length = 0;
    this.#streamById.clear();
    this.#buffered = 0;
  }

  // ---------------------------------------------------------------- the writer-side inactivity timeout

  /** When the next idle writer's timeout falls due (Infinity: none). */
  idleDeadline(): number {
    let deadline = Infinity;
    for (const out of this.#streams) if (idleWriter(out)) deadline = Math.min(deadline, out.lastWrite + this.#config.streamInactivityMs);
    return deadline;
  }

  /** Resets every stream whose writer has been idle for the inactivity timeout. */
  resetIdle(now: number): void {
    for (const out of this.#streams) {
      if (idleWriter(out) && now >= out.lastWrite + this.#config.streamInactivityMs) {
        this.resetStream(out.id, `stream ${out.id}: its writer wrote nothing for ${this.#config.streamInactivityMs} ms`, RESET_IDLE);
      }
    }
  }

  // ---------------------------------------------------------------- the peer's credit

  onMessageCredit(byteLimit: number, sequenceLimit: number): void {
    this.#peerMessageLimit = Math.max(this.#peerMessageLimit, byteLimit);
    this.#peerSequenceLimit = Math.max(this.#peerSequenceLimit, sequenceLimit);
  }

  onStreamCredit(id: number, limit: number): void {
    const out = this.#streamById.get(id);
    if (out !== undefined) out.limit = Math.max(out.limit, limit);
  }

  onStreamsCredit(idLimit: number): void {
    this.#peerStreamsLimit = Math.max(this.#peerStreamsLimit, idLimit);
  }

  // ---------------------------------------------------------------- packets

  /** Whether there is something to send now: lost data, new data within credit, or a reset. */
  get hasWork(): boolean {
    if (this.#resetsDue.size > 0) return true;
    for (const message of this.#lostMessages) if (message.stream.hasLost) return true;
    const next = this.#firstUnsentMessage();
    if (next !== undefined && next.sequence < this.#peerSequenceLimit && next.stream.hasSendable(this.#peerMessageLimit - next.start)) return true;
    for (const out of this.#streams) {
      if (out.id < this.#peerStreamsLimit && out.stream.hasSendable(out.limit)) return true;
    }
    return false;
  }

  /** The RESET frames that are due. */
  writeResets(writer: PacketWriter, packet: OutboundSent): void {
    for (const out of this.#resetsDue) {
      if (writer.remaining < RESET_ROOM_BYTES) break;
      writer.streamReset(out.id, out.reset!.code);
      this.#resetsDue.delete(out);
      packet.resets.push(out);
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
    this.#buffered -= data.stream.onAcked(data.offset, data.length, data.fin);
    if (!data.stream.complete) return;
    if (data.message === undefined) {
      const out = this.#streams.find((candidate) => candidate.stream === data.stream);
      if (out !== undefined) this.#forget(out);
      return;
    }
    // Retire completed messages from the front (later ones wait their turn: the array stays ordered).
    while (this.#messages.length > 0 && this.#messages[0]!.stream.complete) {
      this.#lostMessages.delete(this.#messages.shift()!);
      if (this.#nextNewMessage > 0) this.#nextNewMessage--;
    }
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
      const range = message.stream.take(Math.min(0xffff, writer.remaining - MESSAGE_DATA_HEADER_BYTES), limit);
      if (range === undefined) return; // waiting for credit
      writer.messageData(message.sequence, message.stream.written, range.offset, range.data);
      packet.data.push({ stream: message.stream, message, offset: range.offset, length: range.data.length, fin: range.fin });
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
    if (out.id >= this.#peerStreamsLimit || out.reset !== undefined) return;
    while (writer.remaining > STREAM_DATA_HEADER_BYTES) {
      const range = out.stream.take(Math.min(0xffff, writer.remaining - STREAM_DATA_HEADER_BYTES), out.limit);
      if (range === undefined) return;
      writer.streamData(out.id, range.offset, range.fin, range.data);
      packet.data.push({ stream: out.stream, message: undefined, offset: range.offset, length: range.data.length, fin: range.fin });
    }
  }

  /** Stream `id`, still writable: throws if it is unknown or was reset. */
  #writable(id: number): OutStream {
    const out = this.#streamById.get(id);
    if (out === undefined) throw new Error(`stream ${id} is not open for writing`);
    if (out.reset !== undefined) throw new Error(out.reset.reason);
    return out;
  }
}

/**
 * An outgoing stream whose writer, not the path or the reader, is the reason nothing moves: open,
 * not finished, every byte written already acknowledged. A stream with bytes in flight or waiting
 * for credit is not idle, however long loss or a slow reader holds it.
 */
function idleWriter(out: OutStream): boolean {
  return out.reset === undefined && !out.stream.finished && out.stream.bufferedBytes === 0;
}
