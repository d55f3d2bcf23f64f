// An established connection: the consumer of the queue the listener routes its datagrams to. It
// opens each datagram (replay window first, then AES-GCM), handles the handshake's confirm frames,
// and hands messages to recv(). One datagram carries one message in this version (docs/wire.md).
import type { Address } from "./address.ts";
import { channel } from "./channel.ts";
import { open, seal, type SealKey } from "./crypto.ts";
import type { Framer } from "./framer.ts";
import type { SessionKeys } from "./handshake.ts";
import { RetrySchedule, type RetryOptions } from "./limits.ts";
import type { Receiver } from "./receiver.ts";
import { ReplayWindow } from "./replay-window.ts";
import type { Sender } from "./sender.ts";
import type { ConnectionStats, DropReason } from "./transport-stats.ts";
import type { Arena } from "./arena.ts";
import { DATA_HEADER_BYTES, FRAME_CONFIRM, FRAME_CONFIRM_ACK, FRAME_MESSAGE, MAX_DATAGRAM_BYTES, MAX_MESSAGE_BYTES, TAG_BYTES } from "./wire.ts";

/** What a connection needs from its transport. */
export interface ConnectionHost {
  readonly arena: Arena;
  readonly framer: Framer;
  sendDatagram(chunks: readonly Uint8Array[], to: Address): void;
  /** Counts a drop of a routed datagram in the transport's totals (the connection counts its own as well). */
  countDrop(reason: DropReason): void;
  connectionClosed(connection: Connection): void;
  now(): number;
}

/** Messages opened per look at the queue; recv() hands them out one by one. */
const OPEN_BATCH = 32;
/** Unconfirmed new addresses remembered per connection (path migration candidates). */
const MAX_PATH_CANDIDATES = 4;
/** Packet numbers are doubles: the connection closes before one could repeat. */
const LAST_PACKET_NUMBER = 2 ** 53 - 1;

export interface ConnectionInit {
  host: ConnectionHost;
  localId: number;
  remoteId: number;
  remoteAddress: Address;
  remotePublicKey: Uint8Array;
  keys: SessionKeys;
  inboundQueuePackets: number;
  /** Initiator side: our address as the responder saw it. */
  observedAddress?: Address | undefined;
  /** Initiator side: repeat the confirm on this schedule until the responder acknowledges it. */
  confirm?: { options: Required<RetryOptions>; random: () => number };
}

export class Connection {
  /** The peer's static X25519 public key (32 bytes), authenticated by the handshake. */
  readonly remotePublicKey: Uint8Array;
  /** @internal The id the peer puts on packets to us (chosen by us). */
  readonly localId: number;
  readonly #remoteId: number;
  #remoteAddress: Address;
  /** Our own address as the peer observed it (initiator side; undefined on the responder's). */
  readonly observedAddress: Address | undefined;
  readonly #host: ConnectionHost;
  readonly #keys: SessionKeys;
  /** @internal The listener's end of the inbound queue. */
  readonly inbound: Sender;
  readonly #queue: Receiver;
  readonly #window = new ReplayWindow();
  readonly #sendNonce = new Uint8Array(12);
  readonly #receiveNonce = new Uint8Array(12);
  #nextPacketNumber = 0;
  /** Opened messages not yet handed out, oldest first (at most OPEN_BATCH + what the handshake buffered). */
  #opened: Uint8Array[] = [];
  #openedHead = 0;
  #closed = false;
  #confirm: RetrySchedule | undefined;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  /** Packet number → the new address it came from; adopted once that packet authenticates. */
  readonly #pathCandidates = new Map<number, Address>();
  #routed = 0;
  #delivered = 0;
  #sent = 0;
  readonly #drops = { queueFull: 0, decryptFailed: 0, replayed: 0, malformed: 0 };

  /** @internal Made by a Transport. */
  constructor(init: ConnectionInit) {
    this.#host = init.host;
    this.localId = init.localId;
    this.#remoteId = init.remoteId;
    this.#remoteAddress = init.remoteAddress;
    this.remotePublicKey = init.remotePublicKey;
    this.observedAddress = init.observedAddress;
    this.#keys = init.keys;
    [this.inbound, this.#queue] = channel(init.inboundQueuePackets, { arena: init.host.arena, maxPacketSize: MAX_DATAGRAM_BYTES, maxLanes: 1 });
    if (init.confirm) {
      this.#confirm = new RetrySchedule(init.confirm.options, init.host.now(), init.confirm.random);
      this.#repeatConfirm();
    }
  }

  /** Where the peer's packets come from now. It changes only after a packet from the new address authenticates. */
  get remoteAddress(): Address {
    return { ...this.#remoteAddress };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one message in one datagram (unreliable in this version: it may be lost, as UDP is).
   * Rejects with a RangeError above MAX_MESSAGE_BYTES (1170 bytes).
   */
  async send(message: Uint8Array): Promise<void> {
    if (!(message instanceof Uint8Array)) throw new TypeError(`message must be a Uint8Array, got ${message === null ? "null" : typeof message}`);
    if (message.length > MAX_MESSAGE_BYTES) {
      throw new RangeError(`message of ${message.length} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit of one datagram (streams of larger messages are not implemented yet)`);
    }
    if (this.#closed) throw new Error("send on a closed connection");
    this.#sendFrame(FRAME_MESSAGE, message);
  }

  /** The next message, or undefined once the connection is closed. */
  async recv(): Promise<Uint8Array | undefined> {
    for (;;) {
      const ready = this.#takeOpened();
      if (ready !== undefined) return ready;
      if (this.#closed) return undefined;
      const count = await this.#queue.recvBatch(this.#openPacket, OPEN_BATCH);
      if (count === 0 && this.#opened.length === this.#openedHead) return undefined; // the queue ended: closed
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const message = await this.recv();
      if (message === undefined) return;
      yield message;
    }
  }

  /** Closes this end at once: recv() ends, later packets from the peer are dropped. (No close message yet.) */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#confirmTimer);
    this.#confirm = undefined;
    this.inbound.close();
    this.#queue.close();
    // Packets still queued are released unread; drain them so their frames go back to the pool.
    this.#queue.drain(() => {});
    this.#host.connectionClosed(this);
  }

  stats(): ConnectionStats {
    return {
      id: this.localId,
      remoteAddress: this.remoteAddress,
      routed: this.#routed,
      delivered: this.#delivered,
      sent: this.#sent,
      drops: { ...this.#drops },
    };
  }

  /** @internal The listener's synchronous hand-off. */
  route(datagram: Uint8Array, host: string, port: number, packetNumber: number): "sent" | "full" | "closed" {
    const outcome = this.inbound.trySend(datagram);
    if (outcome === "sent") {
      this.#routed++;
      if ((host !== this.#remoteAddress.host || port !== this.#remoteAddress.port) && this.#pathCandidates.size < MAX_PATH_CANDIDATES) {
        this.#pathCandidates.set(packetNumber, { host, port });
      }
    } else if (outcome === "full") this.#drops.queueFull++;
    return outcome;
  }

  /**
   * @internal For benchmarks: waits for queued datagrams and hands them to `visit` unopened (the
   * listener's cost without the consumer's). Answers how many; 0 once the connection is closed.
   */
  drainUnopened(visit: (bytes: Uint8Array, at: number, length: number) => void): Promise<number> {
    return this.#queue.recvBatch(visit, OPEN_BATCH);
  }

  /** @internal A message the handshake already opened (it arrived before the connection existed). */
  deliverOpened(message: Uint8Array): void {
    this.#opened.push(message);
  }

  /** @internal The handshake opened the confirm with this packet number. */
  recordPacket(packetNumber: number): void {
    this.#window.record(packetNumber);
  }

  #takeOpened(): Uint8Array | undefined {
    if (this.#openedHead === this.#opened.length) return undefined;
    const message = this.#opened[this.#openedHead++]!;
    if (this.#openedHead === this.#opened.length) {
      this.#opened = [];
      this.#openedHead = 0;
    }
    this.#delivered++;
    return message;
  }

  #drop(reason: "decryptFailed" | "replayed" | "malformed"): void {
    this.#drops[reason]++;
    this.#host.countDrop(reason);
  }

  // The queue's visitor: `bytes` is the arena; the datagram is bytes[at, at + length).
  readonly #openPacket = (bytes: Uint8Array, at: number, length: number): void => {
    const plaintext = this.#open(bytes, at, length);
    if (plaintext === undefined) return;
    const frame = plaintext[0];
    if (frame === FRAME_MESSAGE) this.#opened.push(plaintext.subarray(1));
    else if (frame === FRAME_CONFIRM) this.#sendFrame(FRAME_CONFIRM_ACK);
    else if (frame === FRAME_CONFIRM_ACK) this.#stopConfirm();
    else this.#drop("malformed");
  };

  /** The plaintext of an authenticated, new packet; undefined (counted) otherwise. */
  #open(bytes: Uint8Array, at: number, length: number): Buffer | undefined {
    const { core } = this.#host.arena;
    const packetNumber = core.wirePacketNumberHigh(at) * 2 ** 32 + (core.wirePacketNumberLow(at) >>> 0);
    if (!this.#window.check(packetNumber)) {
      this.#drop("replayed");
      return undefined;
    }
    const plaintext = openDataPacket(this.#keys.receive, this.#receiveNonce, bytes, at, length);
    if (plaintext === undefined || plaintext.length === 0) {
      this.#drop(plaintext === undefined ? "decryptFailed" : "malformed");
      return undefined;
    }
    this.#window.record(packetNumber);
    const moved = this.#pathCandidates.get(packetNumber);
    if (moved !== undefined) this.#remoteAddress = moved; // authenticated from there: the peer moved (NAT rebinding)
    if (this.#pathCandidates.size > 0 && (moved !== undefined || this.#pathCandidates.size === MAX_PATH_CANDIDATES)) this.#pathCandidates.clear();
    return plaintext;
  }

  /** @internal Seals and sends one frame: a fresh packet number (so a fresh nonce) every time. */
  sendFrame(frame: number, payload?: Uint8Array): void {
    this.#sendFrame(frame, payload);
  }

  #sendFrame(frame: number, payload?: Uint8Array): void {
    const packetNumber = this.#nextPacketNumber++;
    if (packetNumber >= LAST_PACKET_NUMBER) {
      this.close(); // 2^53 packets: unreachable in practice, but a nonce must never repeat
      return;
    }
    const header = this.#host.framer.dataHeader(this.#remoteId, packetNumber);
    const nonce = this.#sendNonce;
    nonce.set(header.subarray(5, DATA_HEADER_BYTES), 4);
    const chunks = sealFrame(this.#keys.send, nonce, header, frame, payload);
    this.#sent++;
    this.#host.sendDatagram(chunks, this.#remoteAddress);
  }

  #repeatConfirm(): void {
    const schedule = this.#confirm;
    if (schedule === undefined || this.#closed) return;
    const now = this.#host.now();
    const due = schedule.poll(now);
    if (due === "expired") {
      this.#confirm = undefined;
      return;
    }
    if (due === "send") this.#sendFrame(FRAME_CONFIRM);
    this.#confirmTimer = setTimeout(() => this.#repeatConfirm(), Math.max(0, schedule.nextDeadline() - now));
    // The socket keeps the process alive while the transport is open; this timer must not on its own.
    (this.#confirmTimer as { unref?: () => void }).unref?.();
  }

  #stopConfirm(): void {
    this.#confirm = undefined;
    clearTimeout(this.#confirmTimer);
  }
}

const frameByte = new Uint8Array(1);

/** [header, sealed frame byte, sealed payload?, tag]: gathered by the socket into one datagram, no concatenation. */
function sealFrame(key: SealKey, nonce: Uint8Array, header: Uint8Array, frame: number, payload: Uint8Array | undefined): Uint8Array[] {
  frameByte[0] = frame;
  return [header, ...seal(key, nonce, header, payload === undefined || payload.length === 0 ? [frameByte] : [frameByte, payload])];
}

/**
 * Opens the data packet bytes[at, at + length) (already classified by the core) under `key`. `nonce`
 * is 12 bytes of scratch whose first 4 stay zero. The plaintext, or undefined if it does not authenticate.
 */
export function openDataPacket(key: SealKey, nonce: Uint8Array, bytes: Uint8Array, at: number, length: number): Buffer | undefined {
  nonce.set(bytes.subarray(at + 5, at + DATA_HEADER_BYTES), 4);
  const tagAt = at + length - TAG_BYTES;
  return open(key, nonce, bytes.subarray(at, at + DATA_HEADER_BYTES), bytes.subarray(at + DATA_HEADER_BYTES, tagAt), bytes.subarray(tagAt, tagAt + TAG_BYTES));
}
