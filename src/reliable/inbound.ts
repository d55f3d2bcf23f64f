// The receiving half of a session: incoming messages (reassembled whole, delivered in order) and
// incoming byte streams, and the credit that bounds both. Every frame is checked before it is stored;
// a message or stream the peer breaks fails alone, counted, with a reason. What is kept is copied out
// of the packet into memory this side owns, and memory is bounded by the credit granted
// (docs/design.md, "Flow control and memory bounds").

import { RESET_IDLE, type PacketWriter } from "./frames.ts";
import {
  INITIAL_MESSAGE_CREDIT_BYTES, INITIAL_STREAM_CREDIT_BYTES, INITIAL_STREAMS_CREDIT, MESSAGES_AHEAD, type ReliabilityConfig,
} from "./options.ts";
import { RangeSet } from "./range-set.ts";
import { MAX_GAPS, MAX_READ_BYTES, MESSAGE_BLOCK_BYTES, Reassembly } from "./reassembly.ts";

/** Room a packet keeps for data after stream credits: a packet of credits alone would starve the data (16 streams × 13 B fit). */
const CREDIT_ROOM_BYTES = 600;
/**
 * Messages handed to recv() are carved, in delivery order, from slabs of this side's own: read in the
 * same order, the unread ones pin at most their bytes and two slabs. (A fresh array per message costs
 * ~1.3 µs on Node 20, a carve ~0.2 µs; a slab shared with other connections would let one unread byte
 * pin all of it.)
 */
const READY_SLAB_BYTES = 16 * 1024;
/** Larger messages get an exact allocation of their own. */
const LARGEST_READY_CARVE_BYTES = READY_SLAB_BYTES / 8;
/** A stream's largest block: 64 KiB (a full read), or an eighth of its window if that is less. */
function largestStreamBlock(windowBytes: number): number {
  return Math.min(MAX_READ_BYTES, 2 ** Math.floor(Math.log2(windowBytes / 8)));
}

interface InMessage {
  total: number;
  reassembly: Reassembly;
}

export interface InStream {
  readonly reassembly: Reassembly;
  finalSize: number | undefined;
  /** The credit we granted: bytes below this offset may arrive. */
  limit: number;
  creditDirty: boolean;
  error: string | undefined;
}

/** The credit frames a packet carried (so a lost one is sent again). */
export interface CreditsSent {
  messageCredit: boolean;
  streamsCredit: boolean;
  streamCredits: InStream[];
}

/** The session's counters this side keeps up to date. */
export interface InboundCounters {
  messagesReceived: number;
  streamsAccepted: number;
  streamErrors: number;
  flowControlViolations: number;
}

export class Inbound {
  readonly #config: ReliabilityConfig;
  readonly #counters: InboundCounters;
  readonly #inMessages = new Map<number, InMessage>();
  readonly #failedMessages = new Set<number>();
  #nextDeliverSequence = 0;
  readonly #ready: Uint8Array[] = [];
  #readyHead = 0;
  #readyBytes = 0;
  #readySlab: ArrayBuffer | undefined;
  #readySlabUsed = 0;
  #nextMessageBuffer: Uint8Array | undefined;
  /** Block bytes held by incomplete messages: what they are charged against the message credit. */
  #messageBlockBytes = 0;
  #consumedBytes = 0;
  #consumedMessages = 0;
  #messageLimit = INITIAL_MESSAGE_CREDIT_BYTES;
  #sequenceLimit = MESSAGES_AHEAD;
  #messageCreditDirty = false;
  readonly #inStreams = new Map<number, InStream>();
  readonly #finishedStreamIds = new RangeSet();
  readonly #acceptQueue: number[] = [];
  #streamsLimit = INITIAL_STREAMS_CREDIT;
  #streamsCreditDirty = false;
  #lastStreamError: string | undefined;
  readonly #streamBlockBytes: number;

  constructor(config: ReliabilityConfig, counters: InboundCounters) {
    this.#config = config;
    this.#counters = counters;
    // Grant the windows we are configured for at once, where they exceed what the protocol assumes.
    this.#messageLimit = Math.max(INITIAL_MESSAGE_CREDIT_BYTES, config.messageWindowBytes);
    this.#messageCreditDirty = this.#messageLimit > INITIAL_MESSAGE_CREDIT_BYTES;
    this.#streamsLimit = config.maxIncomingStreams;
    this.#streamsCreditDirty = this.#streamsLimit > INITIAL_STREAMS_CREDIT;
    this.#streamBlockBytes = largestStreamBlock(config.streamWindowBytes);
  }

  /** The last incoming message or stream the peer broke, and why. */
  get lastStreamError(): string | undefined {
    return this.#lastStreamError;
  }

  /** The next whole message, in order; undefined if none is ready. */
  readMessage(): Uint8Array | undefined {
    if (this.#readyHead === this.#ready.length) return undefined;
    const message = this.#ready[this.#readyHead++]!;
    if (this.#readyHead === this.#ready.length) {
      this.#ready.length = 0;
      this.#readyHead = 0;
    }
    this.#readyBytes -= message.length;
    this.#consumedBytes += message.length;
    this.#consumedMessages++;
    this.#counters.messagesReceived++;
    this.#updateMessageCredit(false);
    return message;
  }

  /** Whether a whole message waits for readMessage(). */
  get hasReadyMessage(): boolean {
    return this.#readyHead < this.#ready.length;
  }

  /** The id of the next incoming stream, if one arrived. */
  acceptStream(): number | undefined {
    const id = this.#acceptQueue.shift();
    if (id !== undefined) this.#counters.streamsAccepted++;
    return id;
  }

  /**
   * The next bytes of incoming stream `id`: data (as much as arrived in order, up to 64 KiB), null at
   * its end, undefined if none yet; throws if it failed, or if `connectionOver` and it never will end
   * (with `connectionError`'s message if any).
   */
  readStream(id: number, connectionOver: boolean, connectionError: Error | undefined): Uint8Array | null | undefined {
    const stream = this.#inStreams.get(id);
    if (stream === undefined) return null;
    if (stream.error !== undefined) {
      this.#retireStream(id);
      throw new Error(stream.error);
    }
    const piece = stream.reassembly.read(MAX_READ_BYTES);
    if (piece !== undefined) {
      const limit = stream.reassembly.readOffset + this.#config.streamWindowBytes;
      if (limit - stream.limit >= this.#config.streamWindowBytes / 4) this.#raiseStreamCredit(stream, limit);
      return piece;
    }
    if (stream.finalSize === stream.reassembly.readOffset) {
      this.#retireStream(id);
      return null;
    }
    if (connectionOver) {
      this.#retireStream(id);
      throw new Error(connectionError?.message ?? `stream ${id} ended early: the connection closed before its end`);
    }
    return undefined;
  }

  /** The reader gave up on incoming stream `id`: later data for it is dropped. */
  cancelStream(id: number): void {
    if (this.#inStreams.has(id)) this.#retireStream(id);
  }

  /** A MESSAGE_DATA frame (the session passes them only while it is open). */
  messageData(sequence: number, total: number, offset: number, data: Uint8Array): void {
    if (sequence < this.#nextDeliverSequence || this.#failedMessages.has(sequence)) return; // a duplicate
    if (sequence >= this.#sequenceLimit) {
      this.#counters.flowControlViolations++;
      return;
    }
    if (total > this.#config.maxMessageBytes) {
      this.#failMessage(sequence, `message ${sequence} declares ${total} bytes, over the ${this.#config.maxMessageBytes}-byte limit`);
      return;
    }
    if (offset + data.length > total) {
      this.#failMessage(sequence, `message ${sequence}: bytes [${offset}, ${offset + data.length}) lie beyond its declared ${total} bytes`);
      return;
    }
    let message = this.#inMessages.get(sequence);
    if (message === undefined) {
      if (sequence === this.#nextDeliverSequence && data.length === total) {
        // Whole and next in order (most messages): straight to recv(), copied once.
        if (!this.#withinMessageCredit(sequence, total)) return;
        const whole = this.#readyCopyOf(total);
        whole.set(data);
        this.#pushReady(whole);
        this.#nextDeliverSequence++;
        this.#deliverMessages();
        return;
      }
      // The next message, small but in pieces (most often: it straddled two packets), is put together in a
      // buffer this side reuses, then carved out whole: an array of its own would cost ~1.3 µs. Only the
      // next message in order uses it, and it stays the next until delivered or failed.
      const lent = sequence === this.#nextDeliverSequence && total <= LARGEST_READY_CARVE_BYTES
        ? (this.#nextMessageBuffer ??= new Uint8Array(LARGEST_READY_CARVE_BYTES))
        : undefined;
      message = { total, reassembly: Reassembly.forMessage(total, lent) };
      this.#inMessages.set(sequence, message);
    } else if (message.total !== total) {
      this.#failMessage(sequence, `message ${sequence} declared ${message.total} bytes, then ${total}`);
      return;
    }
    // Charged at the blocks it occupies, before any is made: a byte alone in a block costs the whole block.
    const blockBytes = message.reassembly.newBlockBytes(offset, offset + data.length);
    if (!this.#withinMessageCredit(sequence, blockBytes)) return;
    message.reassembly.insert(offset, data);
    this.#messageBlockBytes += blockBytes;
    if (message.reassembly.gaps > MAX_GAPS) {
      this.#failMessage(sequence, `message ${sequence} left more than ${MAX_GAPS} gaps in its data`);
      return;
    }
    this.#deliverMessages();
  }

  /**
   * Whether `bytes` more fit the message credit; if not, message `sequence` fails. A sender keeps all it
   * sends below the credit, so its blocks lie below it but for the one block the credit's end cuts:
   * that block is the slack.
   */
  #withinMessageCredit(sequence: number, bytes: number): boolean {
    if (this.#messageBlockBytes + this.#readyBytes + bytes <= this.#messageLimit - this.#consumedBytes + MESSAGE_BLOCK_BYTES) return true;
    this.#counters.flowControlViolations++;
    this.#failMessage(sequence, `message ${sequence} overran the message credit`);
    return false;
  }

  /** `length` bytes for a message about to be queued for recv(): carved in delivery order (see READY_SLAB_BYTES). */
  #readyCopyOf(length: number): Uint8Array {
    if (length > LARGEST_READY_CARVE_BYTES) return new Uint8Array(length);
    if (this.#readySlab === undefined || this.#readySlabUsed + length > READY_SLAB_BYTES) {
      this.#readySlab = new ArrayBuffer(READY_SLAB_BYTES);
      this.#readySlabUsed = 0;
    }
    const bytes = new Uint8Array(this.#readySlab, this.#readySlabUsed, length);
    this.#readySlabUsed += (length + 7) & ~7; // 8-byte aligned: V8 copies aligned runs word by word
    return bytes;
  }

  #pushReady(message: Uint8Array): void {
    this.#ready.push(message);
    this.#readyBytes += message.length;
  }

  /** Moves complete messages, in order, to the ready queue; extends credit for the first incomplete one. */
  #deliverMessages(): void {
    for (;;) {
      const sequence = this.#nextDeliverSequence;
      if (this.#failedMessages.delete(sequence)) {
        this.#nextDeliverSequence++;
        this.#consumedMessages++; // a failed message is skipped: it takes its slot of the sequence credit
        continue;
      }
      const message = this.#inMessages.get(sequence);
      if (message === undefined || message.reassembly.contiguousEnd < message.total) break;
      this.#inMessages.delete(sequence);
      const reassembly = message.reassembly;
      this.#messageBlockBytes -= reassembly.blockBytes;
      let whole = reassembly.wholeBlock; // a message of one block is that block: no copy
      if (whole === undefined) {
        whole = this.#readyCopyOf(message.total);
        reassembly.copyTo(whole);
      }
      this.#pushReady(whole);
      this.#nextDeliverSequence++;
    }
    this.#updateMessageCredit(true);
  }

  #updateMessageCredit(extendForHead: boolean): void {
    const window = this.#config.messageWindowBytes;
    let limit = this.#consumedBytes + window;
    if (extendForHead) {
      // The first incomplete message may be larger than the window: let all of it in, or it could never complete.
      const head = this.#inMessages.get(this.#nextDeliverSequence);
      if (head !== undefined) limit = Math.max(limit, this.#consumedBytes + this.#readyBytes + head.total);
    }
    if (limit - this.#messageLimit >= window / 4 || (extendForHead && limit > this.#messageLimit && limit - this.#consumedBytes > window)) {
      this.#messageLimit = limit;
      this.#messageCreditDirty = true;
    }
    const sequenceLimit = this.#consumedMessages + MESSAGES_AHEAD;
    if (sequenceLimit - this.#sequenceLimit >= MESSAGES_AHEAD / 4) {
      this.#sequenceLimit = sequenceLimit;
      this.#messageCreditDirty = true;
    }
  }

  #failMessage(sequence: number, reason: string): void {
    const message = this.#inMessages.get(sequence);
    if (message !== undefined) {
      this.#messageBlockBytes -= message.reassembly.blockBytes;
      this.#inMessages.delete(sequence);
    }
    this.#failedMessages.add(sequence);
    this.#streamError(reason);
    this.#deliverMessages();
  }

  /**
   * Incoming stream `id`, made (and queued for acceptStream) on its first frame; undefined when its
   * frames are to be dropped: already finished, or beyond the streams we allowed (counted).
   */
  #incomingStream(id: number): InStream | undefined {
    if (this.#finishedStreamIds.has(id)) return undefined;
    let stream = this.#inStreams.get(id);
    if (stream === undefined) {
      if (id >= this.#streamsLimit) {
        this.#counters.flowControlViolations++;
        return undefined;
      }
      stream = { reassembly: Reassembly.forStream(this.#streamBlockBytes), finalSize: undefined, limit: INITIAL_STREAM_CREDIT_BYTES, creditDirty: false, error: undefined };
      if (this.#config.streamWindowBytes > INITIAL_STREAM_CREDIT_BYTES) this.#raiseStreamCredit(stream, this.#config.streamWindowBytes);
      this.#inStreams.set(id, stream);
      this.#acceptQueue.push(id);
    }
    return stream;
  }

  /** A STREAM_DATA frame (only while the session is open). */
  streamData(id: number, offset: number, fin: boolean, data: Uint8Array): void {
    const stream = this.#incomingStream(id);
    if (stream === undefined || stream.error !== undefined) return;
    const end = offset + data.length;
    if (fin) {
      if (stream.finalSize !== undefined && stream.finalSize !== end) return this.#failStream(stream, `stream ${id} ended at ${stream.finalSize}, then at ${end}`);
      if (stream.reassembly.highestReceived > end) return this.#failStream(stream, `stream ${id} ends at ${end} but sent bytes up to ${stream.reassembly.highestReceived}`);
      stream.finalSize = end;
    } else if (stream.finalSize !== undefined && end > stream.finalSize) {
      return this.#failStream(stream, `stream ${id} sent bytes up to ${end}, beyond its end at ${stream.finalSize}`);
    }
    if (end > stream.limit) {
      this.#counters.flowControlViolations++;
      return this.#failStream(stream, `stream ${id} sent bytes up to ${end}, beyond the ${stream.limit} we allowed`);
    }
    stream.reassembly.insert(offset, data);
    if (stream.reassembly.gaps > MAX_GAPS) this.#failStream(stream, `stream ${id} left more than ${MAX_GAPS} gaps in its data`);
  }

  /** A STREAM_RESET frame (only while the session is open). */
  streamReset(id: number, code: number): void {
    const stream = this.#incomingStream(id); // a reset before any data still reaches the reader, as a failure
    if (stream === undefined || stream.error !== undefined) return;
    this.#failStream(stream, code === RESET_IDLE
      ? `stream ${id} was reset by its writer: it wrote nothing for its inactivity timeout`
      : `stream ${id} was aborted by its writer`);
  }

  #failStream(stream: InStream, reason: string): void {
    stream.error = reason;
    stream.reassembly.clear(); // what it buffered is released now
    this.#streamError(reason);
  }

  #streamError(reason: string): void {
    this.#counters.streamErrors++;
    this.#lastStreamError = reason;
  }

  /** The stream is done with (read to its end, failed and reported, or cancelled): forget it, grant another. */
  #retireStream(id: number): void {
    this.#inStreams.delete(id);
    this.#finishedStreamIds.add(id, id + 1);
    const limit = this.#finishedStreamIds.contiguousEnd(0) + this.#config.maxIncomingStreams;
    if (limit > this.#streamsLimit) {
      this.#streamsLimit = limit;
      this.#streamsCreditDirty = true;
    }
  }

  #raiseStreamCredit(stream: InStream, limit: number): void {
    stream.limit = limit;
    stream.creditDirty = true;
  }

  /** Whether a credit frame is due. */
  get creditDue(): boolean {
    if (this.#messageCreditDirty || this.#streamsCreditDirty) return true;
    for (const stream of this.#inStreams.values()) if (stream.creditDirty) return true;
    return false;
  }

  /** Writes the credit frames that are due into the packet, keeping room for data. */
  writeCredits(writer: PacketWriter, packet: CreditsSent): void {
    if (this.#messageCreditDirty) {
      writer.messageCredit(this.#messageLimit, this.#sequenceLimit);
      this.#messageCreditDirty = false;
      packet.messageCredit = true;
    }
    if (this.#streamsCreditDirty) {
      writer.streamsCredit(this.#streamsLimit);
      this.#streamsCreditDirty = false;
      packet.streamsCredit = true;
    }
    for (const [id, stream] of this.#inStreams) {
      if (!stream.creditDirty || writer.remaining < CREDIT_ROOM_BYTES) continue;
      writer.streamCredit(id, stream.limit);
      stream.creditDirty = false;
      packet.streamCredits.push(stream);
    }
  }

  /** A packet with credit frames was lost: the latest values go again. */
  onCreditsLost(packet: CreditsSent): void {
    if (packet.messageCredit) this.#messageCreditDirty = true;
    if (packet.streamsCredit) this.#streamsCreditDirty = true;
    for (const stream of packet.streamCredits) stream.creditDirty = true;
  }

  /** We are closing: messages still incomplete will never be delivered; drop them. */
  discardIncomplete(): void {
    this.#inMessages.clear();
    this.#messageBlockBytes = 0;
  }
}
