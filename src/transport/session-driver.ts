// The driver of an established connection's reliable-delivery Session (reliable/session.ts). It is
// the consumer of the queue the listener routes the connection's datagrams to: it opens each one
// (replay window, then ChaCha20-Poly1305), answers the handshake's confirm, feeds the rest to the
// Session with the time, seals and sends what the Session answers, and keeps one timer at the
// Session's next deadline. A Connection (connection.ts) is its face to the application, whose calls
// wait on the Session's state through until(), never on the socket.
import { abortErrorOf, type SluiceError } from "../errors/errors.ts";
import type { Arena } from "../memory/arena.ts";
import { channel } from "../channel/channel.ts";
import type { Receiver } from "../channel/receiver.ts";
import type { Sender } from "../channel/sender.ts";
import { addressKey, type Address } from "../wire/address.ts";
import { DATA_HEADER_BYTES, FRAME_CONFIRM, FRAME_CONFIRM_ACK, MAX_DATAGRAM_BYTES, TAG_BYTES } from "../wire/constants.ts";
import type { Framer } from "../wire/framer.ts";
import type { PacketAead } from "../wire/packet-aead.ts";
import { ReplayWindow } from "../wire/replay-window.ts";
import type { SessionKeys } from "../handshake/messages.ts";
import { RetrySchedule, type RetryOptions } from "../handshake/retry.ts";
import type { ReliabilityConfig } from "../reliable/options.ts";
import { Session, type Transmit } from "../reliable/session.ts";
import type { Trace } from "./log.ts";
import type { ConnectionStats, DropReason } from "./stats.ts";

/** What a connection needs from its transport. */
export interface ConnectionHost {
  readonly arena: Arena;
  readonly aead: PacketAead;
  sendDatagram(chunks: readonly Uint8Array[], to: Address): void;
  /** Counts a drop of a routed datagram in the transport's totals (the connection counts its own as well). */
  countDrop(reason: DropReason): void;
  connectionClosed(connection: SessionDriver): void;
  now(): number;
  /** The debug trace (log.ts), undefined when off: every trace site tests it first. */
  readonly trace?: Trace | undefined;
}

/** Datagrams opened per look at the queue before the Session's answers are sent. */
const OPEN_BATCH = 32;
/** Unconfirmed new addresses remembered per connection (path migration candidates). */
const MAX_PATH_CANDIDATES = 4;
/** Packet numbers are doubles: the connection closes before one could repeat. */
const LAST_PACKET_NUMBER = 2 ** 53 - 1;
/**
 * The first packet number of a benchmark's sealed flood: far above the Session's own, so the peer's
 * replay window moves past the Session's packets sent meanwhile instead of refusing the flood.
 */
const BENCHMARK_FIRST_PACKET_NUMBER = 2 ** 40;

/** A datagram (or, opened, its plaintext) as the queue's consumer sees it: bytes[at, at + length). */
export type DatagramVisitor = (bytes: Uint8Array, at: number, length: number) => void;

/** What an until() attempt answers while its condition does not hold yet. */
export const WAIT: unique symbol = Symbol("wait");

/** Attached to promises whose rejection is reported elsewhere too: they never count as unhandled. */
export const ignore = (): void => {};

export interface SessionDriverInit {
  host: ConnectionHost;
  localId: number;
  remoteId: number;
  remoteAddress: Address;
  remotePublicKey: Uint8Array;
  keys: SessionKeys;
  inboundQueuePackets: number;
  reliability: ReliabilityConfig;
  /** Initiator side: our address as the responder saw it. */
  observedAddress?: Address | undefined;
  /** Initiator side: repeat the confirm on this schedule until the responder acknowledges it. */
  confirm?: { options: Required<RetryOptions>; random: () => number };
  /** For tests: nothing consumes the inbound queue, as if its consumer had stalled, so the listener finds it full. */
  stalled?: boolean;
}

export class SessionDriver {
  /** The peer's static X25519 public key (32 bytes), authenticated by the handshake. */
  readonly remotePublicKey: Uint8Array;
  /** The id the peer puts on packets to us (chosen by us). */
  readonly localId: number;
  /** Our own address as the peer observed it (initiator side; undefined on the responder's). */
  readonly observedAddress: Address | undefined;
  readonly session: Session;
  readonly config: ReliabilityConfig;
  /** close() was called: recv() ends here, whatever the peer still sends. */
  closing = false;
  readonly #remoteId: number;
  #remoteAddress: Address;
  readonly #host: ConnectionHost;
  readonly #keys: SessionKeys;
  /** The inbound queue's two ends: the listener sends into the inlet, #pump receives from the outlet. */
  readonly #inlet: Sender;
  readonly #outlet: Receiver;
  readonly #window = new ReplayWindow();
  #ended = false;
  /** Settles when the connection is over and drained: resolved, or rejected with why it failed. */
  readonly whenEnded: Promise<void>;
  #settleEnded!: (error: SluiceError | undefined) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #driveScheduled = false;
  /** Wakes everything waiting on the Session (senders, receivers, readers); each re-checks its condition. */
  #waiters: Array<() => void> = [];
  #confirm: RetrySchedule | undefined;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  /** Packet number → the new address it came from; adopted once that packet authenticates. */
  readonly #pathCandidates = new Map<number, Address>();
  /** For benchmarks: when set, the queue's datagrams (or their plaintexts) go here instead of to the Session. */
  #bypass: DatagramVisitor | undefined;
  #bypassOpens = false;
  #benchmarkPacketNumber = BENCHMARK_FIRST_PACKET_NUMBER;

  /** With the trace on: the loss counters last traced (so each new loss event is traced once). */
  #tracedLosses = { packetsLost: 0, tailLossProbes: 0, retransmissionTimeouts: 0 };

  #routed = 0;
  #datagramsSent = 0;
  readonly #drops = { queueFull: 0, decryptFailed: 0, replayed: 0, malformed: 0 };

  constructor(init: SessionDriverInit) {
    this.#host = init.host;
    this.localId = init.localId;
    this.#remoteId = init.remoteId;
    this.#remoteAddress = init.remoteAddress;
    this.remotePublicKey = init.remotePublicKey;
    this.observedAddress = init.observedAddress;
    this.#keys = init.keys;
    this.config = init.reliability;
    this.session = new Session(init.reliability, init.host.now());
    this.whenEnded = new Promise<void>((resolve, reject) => {
      this.#settleEnded = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.whenEnded.catch(ignore); // the same reason reaches recv(), close() and `error`
    [this.#inlet, this.#outlet] = channel(init.inboundQueuePackets, { arena: init.host.arena, maxPacketSize: MAX_DATAGRAM_BYTES, maxLanes: 1 });
    if (init.confirm) {
      this.#confirm = new RetrySchedule(init.confirm.options, init.host.now(), init.confirm.random);
      this.#repeatConfirm();
    }
    if (init.stalled !== true) void this.#pump();
    this.scheduleDrive(); // the Session may have credit to grant at once
    this.#host.trace?.(`connection ${this.localId} established with ${describe(this.#remoteAddress)} (${init.confirm ? "initiator" : "responder"}, peer id ${init.remoteId})`);
  }

  /** Where the peer's packets come from now. It changes only after a packet from the new address authenticates. */
  get remoteAddress(): Address {
    return { ...this.#remoteAddress };
  }

  /** Whether the connection is over (closed either way, or failed). */
  get ended(): boolean {
    return this.#ended;
  }

  now(): number {
    return this.#host.now();
  }

  /** Closes gracefully (connection.close()): the Session sends its CLOSE once everything written was acknowledged. */
  close(): void {
    if (!this.closing && !this.#ended) this.#host.trace?.(`connection ${this.localId} closing`);
    this.closing = true;
    this.session.close();
    this.scheduleDrive();
  }

  /**
   * Closes at once (connection.abort(), transport.close(), a replaced connection): one CLOSE is sent,
   * nothing waits. `error` (ERR_SLUICE_ABORTED) is why, for the application's pending calls; without
   * it the connection counts as closed by this side.
   */
  abort(error?: SluiceError): void {
    if (this.#ended) return;
    this.#host.trace?.(`connection ${this.localId} aborted${error === undefined ? "" : `: ${error.message}`}`);
    this.closing = true;
    const transmit = this.session.abort(this.#host.now(), error);
    if (transmit !== undefined) this.#transmit(transmit);
    this.#end();
  }

  stats(): ConnectionStats {
    const delivery = this.session.stats();
    return {
      id: this.localId,
      remoteAddress: this.remoteAddress,
      routed: this.#routed,
      delivered: delivery.messagesReceived,
      sent: this.#datagramsSent,
      drops: { ...this.#drops },
      delivery,
    };
  }

  /** The listener's synchronous hand-off of the datagram `framer` parsed last, which came from host:port. */
  route(framer: Framer, host: string, port: number): "sent" | "full" | "closed" {
    const packetNumber = host !== this.#remoteAddress.host || port !== this.#remoteAddress.port ? framer.packetNumber() : -1;
    const outcome = framer.handOver(this.#inlet);
    if (outcome === "sent") {
      this.#routed++;
      if (packetNumber >= 0 && this.#pathCandidates.size < MAX_PATH_CANDIDATES) this.#pathCandidates.set(packetNumber, { host, port });
    } else if (outcome === "full") this.#drops.queueFull++;
    return outcome;
  }

  /** A packet the handshake already opened (it arrived before the connection existed). */
  deliverOpened(plaintext: Uint8Array, packetNumber: number): void {
    this.#window.record(packetNumber);
    this.#dispatch(plaintext, packetNumber);
    this.scheduleDrive();
  }

  /** Seals and sends one handshake frame outside the Session (a fresh packet number all the same). */
  sendFrame(frame: number): void {
    frameByte[0] = frame;
    this.#transmit({ packetNumber: this.session.allocatePacketNumber(), parts: [frameByte] });
  }

  /**
   * For benchmarks: the queue's datagrams go to `visit` instead of to the Session, unopened (the
   * listener's cost alone) or, with `opened`, as plaintexts after the replay window and the AEAD.
   */
  bypassForBenchmark(visit: DatagramVisitor, opened: boolean): void {
    this.#bypass = visit;
    this.#bypassOpens = opened;
  }

  /**
   * For benchmarks: `count` data packets sealed as this side would send them, each carrying
   * `plaintext`, back to back in one buffer (each `plaintext.length` + 29 bytes). Their packet numbers
   * run from BENCHMARK_FIRST_PACKET_NUMBER up, never reused.
   */
  sealForBenchmark(plaintext: Uint8Array, count: number): Uint8Array {
    const stride = DATA_HEADER_BYTES + plaintext.length + TAG_BYTES;
    const packets = new Uint8Array(stride * count);
    for (let i = 0; i < count; i++) {
      packets.set(this.#host.aead.seal(this.#keys.send, this.#remoteId, this.#benchmarkPacketNumber++, [plaintext]), i * stride);
    }
    return packets;
  }

  // ------------------------------------------------------------------ receiving

  /**
   * The queue's consumer. It awaits only its own queue's receive, which is fed by the listener's
   * try-send: nothing here ever waits for room on a bounded queue.
   */
  async #pump(): Promise<void> {
    while ((await this.#outlet.recvBatch(this.#visit, OPEN_BATCH)) > 0) this.#drive();
  }

  // The queue's visitor: `bytes` is the arena; the datagram is bytes[at, at + length).
  readonly #visit = (bytes: Uint8Array, at: number, length: number): void => {
    if (this.#bypass !== undefined && !this.#bypassOpens) return this.#bypass(bytes, at, length);
    const { core } = this.#host.arena;
    const packetNumber = core.wirePacketNumberHigh(at) * 2 ** 32 + (core.wirePacketNumberLow(at) >>> 0);
    const plaintext = this.#open(at, length, packetNumber);
    if (plaintext === undefined) return;
    if (this.#bypass !== undefined) this.#bypass(plaintext, 0, plaintext.length);
    else this.#dispatch(plaintext, packetNumber);
  };

  #dispatch(plaintext: Uint8Array, packetNumber: number): void {
    const frame = plaintext[0];
    if (frame === FRAME_CONFIRM) this.sendFrame(FRAME_CONFIRM_ACK);
    else if (frame === FRAME_CONFIRM_ACK) this.#stopConfirm();
    else if (this.session.handlePacket(plaintext, packetNumber, this.#host.now()) !== undefined) this.#drop("malformed");
  }

  #drop(reason: "decryptFailed" | "replayed" | "malformed"): void {
    this.#drops[reason]++;
    this.#host.countDrop(reason);
  }

  /** The plaintext of an authenticated, new packet (opened in place in the arena, copied out); undefined (counted) otherwise. */
  #open(at: number, length: number, packetNumber: number): Uint8Array | undefined {
    if (!this.#window.check(packetNumber)) {
      this.#drop("replayed");
      return undefined;
    }
    const plaintext = this.#host.aead.openInPlace(this.#keys.receive, at, length);
    if (plaintext === undefined || plaintext.length === 0) {
      this.#drop(plaintext === undefined ? "decryptFailed" : "malformed");
      return undefined;
    }
    this.#window.record(packetNumber);
    if (this.#pathCandidates.size > 0) this.#adoptPath(packetNumber);
    return plaintext;
  }

  /** Packet `packetNumber` authenticated: if it came from a new address, the peer moved there (NAT rebinding). */
  #adoptPath(packetNumber: number): void {
    const moved = this.#pathCandidates.get(packetNumber);
    if (moved !== undefined) {
      this.#host.trace?.(`connection ${this.localId}: the peer moved from ${describe(this.#remoteAddress)} to ${describe(moved)}`);
      this.#remoteAddress = moved;
    }
    if (moved !== undefined || this.#pathCandidates.size === MAX_PATH_CANDIDATES) this.#pathCandidates.clear();
  }

  // ------------------------------------------------------------------ driving the Session

  /** Runs due timers, sends what the Session has, re-arms the timer and wakes the application. */
  #drive(): void {
    this.#driveScheduled = false;
    if (this.#ended) return;
    const session = this.session;
    const now = this.#host.now();
    if (session.nextDeadline() <= now) session.handleTimeout(now);
    for (let transmit = session.pollTransmit(now); transmit !== undefined; transmit = session.pollTransmit(now)) this.#transmit(transmit);
    if (this.#host.trace !== undefined) this.#traceLosses(this.#host.trace);
    if (session.state === "closed") this.#end();
    else this.#arm(session.nextDeadline(), now);
    this.#wake();
  }

  /** Traces the loss events since the last drive: packets declared lost, tail-loss probes, retransmission timeouts. */
  #traceLosses(trace: Trace): void {
    const { packetsLost, tailLossProbes, retransmissionTimeouts, rttMs, rtoMs, congestionWindowBytes } = this.session.stats();
    const last = this.#tracedLosses;
    if (packetsLost === last.packetsLost && tailLossProbes === last.tailLossProbes && retransmissionTimeouts === last.retransmissionTimeouts) return;
    const events = [
      packetsLost > last.packetsLost ? `${packetsLost - last.packetsLost} packets lost` : "",
      tailLossProbes > last.tailLossProbes ? `${tailLossProbes - last.tailLossProbes} tail-loss probes` : "",
      retransmissionTimeouts > last.retransmissionTimeouts ? `${retransmissionTimeouts - last.retransmissionTimeouts} retransmission timeouts` : "",
    ].filter((event) => event !== "");
    trace(`connection ${this.localId}: ${events.join(", ")} (RTT ${rttMs.toFixed(1)} ms, RTO ${rtoMs.toFixed(0)} ms, window ${congestionWindowBytes} B)`);
    this.#tracedLosses = { packetsLost, tailLossProbes, retransmissionTimeouts };
  }

  /** Application calls batch their effect: one drive per turn of the event loop, not one per call. */
  scheduleDrive(): void {
    if (this.#driveScheduled || this.#ended) return;
    this.#driveScheduled = true;
    queueMicrotask(() => this.#drive());
  }

  #arm(deadline: number, now: number): void {
    if (deadline === Infinity || (this.#timer !== undefined && this.#timerAt <= deadline)) return;
    clearTimeout(this.#timer);
    this.#timerAt = deadline;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#drive();
    }, Math.max(0, Math.ceil(deadline - now)));
    // The socket keeps the process alive while the transport is open; this timer must not on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #transmit(transmit: Transmit): void {
    if (transmit.packetNumber >= LAST_PACKET_NUMBER) {
      this.abort(); // 2^53 packets: unreachable in practice, but a nonce must never repeat
      return;
    }
    this.#datagramsSent++;
    this.#host.sendDatagram([this.#host.aead.seal(this.#keys.send, this.#remoteId, transmit.packetNumber, transmit.parts)], this.#remoteAddress);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#host.trace !== undefined) {
      const { error, endReason } = this.session;
      const how = error !== undefined ? `failed: ${error.code} (${error.message})` : `closed by ${endReason?.code === "ERR_SLUICE_PEER_CLOSED" ? "the peer" : "this side"}`;
      this.#host.trace(`connection ${this.localId} with ${describe(this.#remoteAddress)} ended: ${how}`);
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopConfirm();
    this.#inlet.close();
    this.#outlet.close();
    // Packets still queued are released unread; drain them so their frames go back to the pool.
    this.#outlet.drain(() => {});
    this.#host.connectionClosed(this);
    this.#settleEnded(this.session.error);
    this.#wake();
  }

  // ------------------------------------------------------------------ waiting

  /** Resolves at the next change of the Session's state (after a drive), or at the end. */
  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Runs `attempt` now and after every change of the Session until it answers something other than
   * WAIT (or throws); `attempt` must answer (or throw) once the connection has ended. Rejects with
   * Node's AbortError if `signal` fired already (before any attempt, as Node's APIs do) or fires
   * first; its listener goes when the wait does.
   */
  async until<T>(attempt: () => T | typeof WAIT, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw abortErrorOf(signal);
    let result = attempt();
    if (result !== WAIT) return result;
    if (signal === undefined) {
      do await this.#changed();
      while ((result = attempt()) === WAIT);
      return result;
    }
    const onAbort = () => this.#wake();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        await this.#changed();
        if (signal.aborted) throw abortErrorOf(signal);
        if ((result = attempt()) !== WAIT) return result;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  // ------------------------------------------------------------------ the handshake's confirm

  #repeatConfirm(): void {
    const schedule = this.#confirm;
    if (schedule === undefined || this.#ended) return;
    const now = this.#host.now();
    const due = schedule.poll(now);
    if (due === "expired") {
      this.#confirm = undefined;
      return;
    }
    if (due === "send") this.sendFrame(FRAME_CONFIRM);
    this.#confirmTimer = setTimeout(() => this.#repeatConfirm(), Math.max(0, schedule.nextDeadline() - now));
    (this.#confirmTimer as { unref?: () => void }).unref?.();
  }

  #stopConfirm(): void {
    this.#confirm = undefined;
    clearTimeout(this.#confirmTimer);
  }
}

const frameByte = new Uint8Array(1);

/** host:port, as a trace line names an address. */
function describe(address: Address): string {
  return addressKey(address.host, address.port);
}
