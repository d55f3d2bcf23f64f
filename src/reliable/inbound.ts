// The receiving half of a session: incoming messages (reassembled whole, delivered in order) and
// incoming byte streams, the credit that bounds both, and what this side tells the writer of them (a
// cancelled reader's STOP_SENDING, a refused message). Every frame is checked before it is stored;
// a message or stream the peer breaks fails alone, counted, with a reason. What is kept is copied out
// of the packet into memory this side owns, and memory is bounded by the credit granted
// (docs/design.md, "Flow control and memory bounds").

import { SluiceError } from "../errors/errors.ts";
import { DeliverySlab, type ReceivedBytes } from "../memory/delivery-slab.ts";
import { RESET_ABORTED, STOP_CANCELLED, type PacketWriter } from "./frames.ts";
import {
  INITIAL_MESSAGE_CREDIT_BYTES, INITIAL_STREAM_CREDIT_BYTES, INITIAL_STREAMS_CREDIT, MESSAGES_AHEAD, type ReliabilityConfig,
} from "./options.ts";
import { RangeSet } from "./range-set.ts";
import { MAX_GAPS, MAX_READ_BYTES, MESSAGE_BLOCK_BYTES, Reassembly } from "./reassembly.ts";
import { withSent } from "./sent-lists.ts";

/** Room a packet keeps for data after stream credits: a packet of credits alone would starve the data (16 streams × 13 B fit). */
const CREDIT_ROOM_BYTES = 600;
/**
 * Small messages waiting for recv() are carved, in arrival order, from slabs this side never hands
 * out: read in the same order, the unread ones pin at most their bytes and two slabs. (A fresh array
 * per message costs ~1.3 µs on Node 20, a carve ~0.2 µs; a slab shared with other connections would
 * let one unread byte pin all of it.) recv() then copies each into memory of the reader's
 * (memory/delivery-slab.ts), so what the application holds never shares a buffer with a message not
 * yet delivered; and since nothing else sees the slab, it is carved again from its start once every
 * message in it was read (a reader that keeps up allocates no ready slab at all).
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
  error: SluiceError | undefined;
}

/** The receiver's frames a packet carried, so a lost one is sent again: credit, stops, refusals. */
export interface InboundSent {
  messageCredit: boolean;
  streamsCredit: boolean;
  streamCredits: readonly InStream[];
  /** Streams whose STOP_SENDING it carried. */
  stops: readonly number[];
  /** Messages whose MESSAGE_REFUSED it carried: [sequence, declared length]. */
  refusals: ReadonlyArray<readonly [number, number]>;
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
  /** Messages that failed, not yet skipped in order: each with the bytes it counts as consumed when it is. */
  readonly #failedMessages = new Map<number, number>();
  /** Refused messages (over maxMessageBytes) whose MESSAGE_REFUSED is due (again, if one was lost): sequence → declared length. */
  readonly #refusalsDue = new Map<number, number>();
  #nextDeliverSequence = 0;
  readonly #ready: ReceivedBytes[] = [];
  #readyHead = 0;
  #readyBytes = 0;
  #readySlab: ArrayBuffer | undefined;
  #readySlabUsed = 0;
  /** Messages carved from #readySlab and not yet read: at 0 the slab is carved again from its start. */
  #readySlabPending = 0;
  #nextMessageBuffer: ReceivedBytes | undefined;
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
  /** Cancelled streams whose STOP_SENDING is due (again, if one was lost). */
  readonly #stopsDue = new Set<number>();
  /** What messages and stream pieces are copied into when handed to the application. */
  readonly #delivered = new DeliverySlab();
  #streamsLimit = INITIAL_STREAMS_CREDIT;
  /** Incoming streams done with (see #retireStream). */
  #streamsRetired = 0;
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

  /** The next whole message, in order, the caller's (see READY_SLAB_BYTES); undefined if none is ready. */
  readMessage(): ReceivedBytes | undefined {
    if (this.#readyHead === this.#ready.length) return undefined;
    let message = this.#ready[this.#readyHead++]!;
    // A message with a buffer of its own (a whole block, a large one) is handed over as it is; one
    // carved from a ready slab is copied out of it, and its room in the slab may be carved again.
    if (message.byteLength !== message.buffer.byteLength) {
      if (message.buffer === this.#readySlab) this.#readySlabPending--;
      message = this.#delivered.copy(message, 0, message.length);
    }
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

  /**
   * Whether the peer is part-way through sending: a message begun and not yet whole, or a stream whose
   * bytes up to its end have not all arrived.
   */
  get midTransfer(): boolean {
    if (this.#inMessages.size > 0) return true;
    for (const stream of this.#inStreams.values()) {
      if (stream.error === undefined && (stream.finalSize === undefined || stream.reassembly.contiguousEnd < stream.finalSize)) return true;
    }
    return false;
  }

  /** Whether the message credit moved far enough to be granted (readMessage() raises it now and then, not per message). */
  get messageCreditDue(): boolean {
    return this.#messageCreditDirty;
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
   * The next bytes of incoming stream `id`: data (as much as arrived in order, up to 64 KiB, in an
   * ArrayBuffer of its own: a byte stream's reader takes the buffer over; at most `maxBytes`), null
   * at its end, undefined if none yet; throws if it failed, or if `connectionEnd` says the connection
   * is over and it never will end.
   */
  readStream(id: number, connectionEnd: SluiceError | undefined, maxBytes: number): ReceivedBytes | null | undefined {
    return this.#readStream(id, connectionEnd, (reassembly) => reassembly.read(Math.min(maxBytes, MAX_READ_BYTES)));
  }

  /** As readStream, the data copied into the start of `target` instead: answers how many bytes. */
  readStreamInto(id: number, target: Uint8Array, connectionEnd: SluiceError | undefined): number | null | undefined {
    return this.#readStream(id, connectionEnd, (reassembly) => reassembly.readInto(target) || undefined);
  }

  #readStream<T>(id: number, connectionEnd: SluiceError | undefined, read: (reassembly: Reassembly) => T | undefined): T | null | undefined {
    const stream = this.#inStreams.get(id);
    if (stream === undefined) return null;
    if (stream.error !== undefined) {
      this.#retireStream(id);
      throw stream.error;
    }
    const piece = read(stream.reassembly);
    if (piece !== undefined) {
      const limit = stream.reassembly.readOffset + this.#config.streamWindowBytes;
      if (limit - stream.limit >= this.#config.streamWindowBytes / 4) this.#raiseStreamCredit(stream, limit);
      return piece;
    }
    if (stream.finalSize === stream.reassembly.readOffset) {
      this.#retireStream(id);
      return null;
    }
    if (connectionEnd !== undefined) {
      this.#retireStream(id);
      throw new SluiceError(connectionEnd.code, `stream ${id} ended early: ${connectionEnd.message}`, { cause: connectionEnd });
    }
    return undefined;
  }

  /** The reader gave up on incoming stream `id`: later data for it is dropped, and the writer is told to stop. */
  cancelStream(id: number): void {
    const stream = this.#inStreams.get(id);
    if (stream === undefined) return;
    this.#retireStream(id);
    // Nothing to stop once every byte and the end arrived, or when the writer itself gave up.
    if (stream.error === undefined && stream.finalSize !== stream.reassembly.contiguousEnd) this.#stopsDue.add(id);
  }

  /** A MESSAGE_DATA frame (the session passes them only while it is open). */
  messageData(sequence: number, total: number, offset: number, data: Uint8Array): void {
    if (sequence < this.#nextDeliverSequence || this.#failedMessages.has(sequence)) return; // a duplicate
    if (sequence >= this.#sequenceLimit) {
      this.#counters.flowControlViolations++;
      return;
    }
    if (total > this.#config.maxMessageBytes) {
      // Refused, and the sender told so: it stops sending it and reports it. It counts as consumed
      // once skipped, so the sender's message credit (over all messages' bytes) stays in step.
      this.#refusalsDue.set(sequence, total);
      this.#failMessage(sequence, `message ${sequence} declares ${total} bytes, over the ${this.#config.maxMessageBytes}-byte limit`, total);
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
        const whole = this.#readyCopyOf(total, data.byteOffset & 7);
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

  /**
   * `length` bytes for a message about to be queued for recv(): carved in delivery order (see
   * READY_SLAB_BYTES), `alignment` bytes past an 8-byte boundary, as its source lies: V8 copies out of
   * shared memory (a packet in the arena) word by word only between addresses aligned alike, and
   * byte by byte otherwise (a 1 KiB message after its frame header cost ~5k instructions).
   */
  #readyCopyOf(length: number, alignment: number): ReceivedBytes {
    if (length > LARGEST_READY_CARVE_BYTES) return new Uint8Array(length);
    if (this.#readySlabPending === 0) this.#readySlabUsed = 0; // every message carved from it was read: reuse it
    if (this.#readySlab === undefined || this.#readySlabUsed + alignment + length > READY_SLAB_BYTES) {
      this.#readySlab = new ArrayBuffer(READY_SLAB_BYTES);
      this.#readySlabUsed = 0;
      this.#readySlabPending = 0;
    }
    this.#readySlabPending++;
    const bytes = new Uint8Array(this.#readySlab, this.#readySlabUsed + alignment, length);
    this.#readySlabUsed += (alignment + length + 7) & ~7;
    return bytes;
  }

  #pushReady(message: ReceivedBytes): void {
    this.#ready.push(message);
    this.#readyBytes += message.length;
  }

  /** Moves complete messages, in order, to the ready queue; extends credit for the first incomplete one. */
  #deliverMessages(): void {
    for (;;) {
      const sequence = this.#nextDeliverSequence;
      const failed = this.#failedMessages.get(sequence);
      if (failed !== undefined) {
        this.#failedMessages.delete(sequence);
        this.#nextDeliverSequence++;
        this.#consumedMessages++; // a failed message is skipped: it takes its slot of the sequence credit
        this.#consumedBytes += failed;
        continue;
      }
      const message = this.#inMessages.get(sequence);
      if (message === undefined || message.reassembly.contiguousEnd < message.total) break;
      this.#inMessages.delete(sequence);
      const reassembly = message.reassembly;
      this.#messageBlockBytes -= reassembly.blockBytes;
      let whole = reassembly.wholeBlock; // a message of one block is that block: no copy
      if (whole === undefined) {
        whole = this.#readyCopyOf(message.total, 0);
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

  /** Message `sequence` fails: dropped, and skipped in order, counting `consumedBytes` as read then. */
  #failMessage(sequence: number, reason: string, consumedBytes = 0): void {
    const message = this.#inMessages.get(sequence);
    if (message !== undefined) {
      this.#messageBlockBytes -= message.reassembly.blockBytes;
      this.#inMessages.delete(sequence);
    }
    this.#failedMessages.set(sequence, consumedBytes);
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
      if (stream.finalSize !== undefined && stream.finalSize !== end) return this.#violation(stream, `stream ${id} ended at ${stream.finalSize}, then at ${end}`);
      if (stream.reassembly.highestReceived > end) return this.#violation(stream, `stream ${id} ends at ${end} but sent bytes up to ${stream.reassembly.highestReceived}`);
      stream.finalSize = end;
    } else if (stream.finalSize !== undefined && end > stream.finalSize) {
      return this.#violation(stream, `stream ${id} sent bytes up to ${end}, beyond its end at ${stream.finalSize}`);
    }
    if (end > stream.limit) {
      this.#counters.flowControlViolations++;
      return this.#violation(stream, `stream ${id} sent bytes up to ${end}, beyond the ${stream.limit} we allowed`);
    }
    stream.reassembly.insert(offset, data);
    if (stream.reassembly.gaps > MAX_GAPS) this.#violation(stream, `stream ${id} left more than ${MAX_GAPS} gaps in its data`);
  }

  /** A STREAM_RESET frame (only while the session is open). */
  streamReset(id: number, code: number): void {
    const stream = this.#incomingStream(id); // a reset before any data still reaches the reader, as a failure
    if (stream === undefined || stream.error !== undefined) return;
    this.#failStream(stream, new SluiceError("ERR_SLUICE_RESET", code === RESET_ABORTED
      ? `stream ${id} was aborted by its writer`
      : `stream ${id} was reset by its writer (code ${code})`));
  }

  /** The peer broke the rules on `stream`: it fails alone, with why. */
  #violation(stream: InStream, reason: string): void {
    this.#failStream(stream, new SluiceError("ERR_SLUICE_PROTOCOL_VIOLATION", reason));
  }

  #failStream(stream: InStream, error: SluiceError): void {
    stream.error = error;
    stream.reassembly.clear(); // what it buffered is released now
    this.#streamError(error.message);
  }

  #streamError(reason: string): void {
    this.#counters.streamErrors++;
    this.#lastStreamError = reason;
  }

  /**
   * The stream is done with (read to its end, failed and reported, or cancelled): forget it, and let
   * the peer open one more, whichever stream this was (QUIC's MAX_STREAMS counts streams alike, RFC
   * 9000 §4.6). The ids below the limit not yet done with stay maxIncomingStreams, so the streams open
   * at once do too, and #finishedStreamIds holds at most one range more than that. Counting only the
   * streams done with in order from the first kept every later stream out while a long-lived first
   * one stayed open.
   */
  #retireStream(id: number): void {
    this.#inStreams.delete(id);
    this.#finishedStreamIds.add(id, id + 1);
    this.#streamsRetired++;
    this.#streamsLimit = this.#streamsRetired + this.#config.maxIncomingStreams;
    this.#streamsCreditDirty = true;
  }

  #raiseStreamCredit(stream: InStream, limit: number): void {
    stream.limit = limit;
    stream.creditDirty = true;
  }

  /** Whether a frame of the receiver's is due: credit, a STOP_SENDING, a MESSAGE_REFUSED. */
  get controlDue(): boolean {
    if (this.#messageCreditDirty || this.#streamsCreditDirty || this.#stopsDue.size > 0 || this.#refusalsDue.size > 0) return true;
    for (const stream of this.#inStreams.values()) if (stream.creditDirty) return true;
    return false;
  }

  /** Writes the receiver's frames that are due into the packet (credit, stops, refusals), keeping room for data. */
  writeControl(writer: PacketWriter, packet: InboundSent): void {
    for (const id of this.#stopsDue) {
      if (writer.remaining < CREDIT_ROOM_BYTES) break;
      writer.stopSending(id, STOP_CANCELLED);
      this.#stopsDue.delete(id);
      packet.stops = withSent(packet.stops, id);
    }
    for (const [sequence, length] of this.#refusalsDue) {
      if (writer.remaining < CREDIT_ROOM_BYTES) break;
      writer.messageRefused(sequence, length, this.#config.maxMessageBytes);
      this.#refusalsDue.delete(sequence);
      packet.refusals = withSent(packet.refusals, [sequence, length] as const);
    }
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
      packet.streamCredits = withSent(packet.streamCredits, stream);
    }
  }

  /** A packet with frames of ours was lost: the latest credit goes again, and the stops and refusals. */
  onLost(packet: InboundSent): void {
    if (packet.messageCredit) this.#messageCreditDirty = true;
    if (packet.streamsCredit) this.#streamsCreditDirty = true;
    for (const stream of packet.streamCredits) stream.creditDirty = true;
    for (const id of packet.stops) this.#stopsDue.add(id);
    for (const [sequence, length] of packet.refusals) this.#refusalsDue.set(sequence, length);
  }

  /**
   * The connection is over (draining or failed): what was kept only for data to come goes, the
   * streams' spare blocks and the slab delivery carves from, so a closed connection pins no more
   * than what its reader has not read yet.
   */
  releaseSpareMemory(): void {
    for (const stream of this.#inStreams.values()) stream.reassembly.releaseSpare();
    this.#delivered.release();
  }

  /** We are closing: messages still incomplete will never be delivered; drop them. */
  discardIncomplete(): void {
    this.#inMessages.clear();
    this.#messageBlockBytes = 0;
  }
}
