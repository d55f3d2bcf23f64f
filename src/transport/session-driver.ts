// The driver of an established connection's reliable-delivery Session (reliable/session.ts). It is
// the consumer of the queue the listener routes the connection's datagrams to: it opens each one
// (replay window, then ChaCha20-Poly1305 under the key its key phase names: wire/packet-keys.ts),
// answers the handshake's confirm, feeds the rest to the Session with the time, seals and sends what
// the Session answers to the address the path state allows (wire/path.ts: an unvalidated address gets
// at most 3× what it sent), and keeps its earliest deadline in the transport's one timer structure
// (deadlines.ts). A Connection (connection.ts)
// is its face to the application, whose calls wait on the Session's state through until(), never on
// the socket.
import { abortErrorOf, SluiceError } from "../errors/errors.ts";
import type { Arena } from "../memory/arena.ts";
import { channel } from "../channel/channel.ts";
import type { Receiver } from "../channel/receiver.ts";
import type { Sender } from "../channel/sender.ts";
import { addressKey, sameAddress, unmapped, type Address } from "../wire/address.ts";
import { FRAME_DATA } from "../memory/core.ts";
import { randomBytes } from "../memory/random-pool.ts";
import { DATA_HEADER_BYTES, FRAME_CONFIRM, FRAME_CONFIRM_ACK, MAX_DATAGRAM_BYTES, MAX_SEND_DATAGRAM_BYTES, RESPONSE_BYTES, TAG_BYTES } from "../wire/constants.ts";
import type { Framer } from "../wire/framer.ts";
import type { PacketAead } from "../wire/packet-aead.ts";
import { DEFAULT_KEY_PHASE_LIMITS, KeyPhases, type KeyPhaseLimits } from "../wire/packet-keys.ts";
import { PathState } from "../wire/path.ts";
import { ReplayWindow } from "../wire/replay-window.ts";
import type { CoreCrypto } from "../handshake/core-crypto.ts";
import type { TrafficSecrets } from "../handshake/noise.ts";
import { RetrySchedule, type RetryOptions } from "../handshake/retry.ts";
import type { ReliabilityConfig } from "../reliable/options.ts";
import { isProbing } from "../reliable/frames.ts";
import { IPV6_EXTRA_HEADER_BYTES } from "../reliable/path-mtu.ts";
import { Session, type Transmit } from "../reliable/session.ts";
import { AddressChangeFeed, type AddressChange } from "./address-changes.ts";
import type { Trace } from "./log.ts";
import { Deadline, type Deadlines } from "./deadlines.ts";
import type { ConnectionStats, DropReason } from "./stats.ts";

/** What a connection needs from its transport. */
export interface ConnectionHost {
  readonly arena: Arena;
  readonly aead: PacketAead;
  /** The handshake's symmetric crypto (BLAKE2s, HMAC, ChaCha20-Poly1305 in the core): HMAC for key updates. */
  readonly crypto: CoreCrypto;
  sendDatagram(chunks: readonly Uint8Array[], to: Address): void;
  /** Counts a drop of a routed datagram in the transport's totals (the connection counts its own as well). */
  countDrop(reason: DropReason): void;
  connectionClosed(connection: SessionDriver): void;
  /** A control frame (0x20 to 0x2f) the peer sent, delivered once, in its order. */
  controlFrame(connection: SessionDriver, type: number, body: Uint8Array): void;
  /** The connection's direct path is silent and it has an introducer: ask that one to re-punch it (wire/path.ts). */
  repunch(connection: SessionDriver): void;
  /** The connection's path moved to a new address of the peer's, and it is validated: the peer is told where we see it now. */
  pathValidated(connection: SessionDriver): void;
  now(): number;
  /** The transport's timer structure: every connection's next deadline, behind one host timer. */
  readonly deadlines: Deadlines;
  /** The debug trace (log.ts), undefined when off: every trace site tests it first. */
  readonly trace?: Trace | undefined;
}

/** Datagrams opened per look at the queue before the Session's answers are sent. */
const OPEN_BATCH = 32;
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
  /** Where the handshake went: validated by it (the intro's source, or where the intros went). */
  remoteAddress: Address;
  /** Where the packet that completed the handshake came from (the initiator's RESPONSE; the responder's is its first data packet, deliverOpened). */
  arrivedFrom: Address;
  remotePublicKey: Uint8Array;
  secrets: TrafficSecrets;
  inboundQueuePackets: number;
  reliability: ReliabilityConfig;
  /** Uniform in [0, 1): the Session's skipped packet numbers. */
  random: () => number;
  /** When keys move on (tests shorten it). Default: 2^30 packets, an hour, 2^20 forgeries. */
  keyPhaseLimits?: KeyPhaseLimits | undefined;
  /** Initiator side: our address as the responder saw it. */
  observedAddress?: Address | undefined;
  /** Initiator side: the responder said it is a gateway. */
  remoteIsGateway?: boolean;
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
  /**
   * Our own address as the peer observed it: from its RESPONSE (initiator), or from the initiator's
   * OBSERVED_ADDRESS frame (responder; undefined until it arrives).
   */
  observedAddress: Address | undefined;
  /** The peer said it is a gateway (in its RESPONSE: we initiated). */
  readonly remoteIsGateway: boolean;
  /** The peer's local addresses, if it told us (LOCAL_ADDRESSES: peers tell their gateways). */
  remoteLocalAddresses: readonly Address[] = [];
  /**
   * The connection to the node that introduced us to this peer (connectVia, or an introduction we
   * acted on): asked for the peer again when the direct path goes silent (wire/path.ts, re-punching);
   * once it ended, the open connection with the same node's key is asked instead (and kept here).
   */
  introducer: SessionDriver | undefined;
  /** Where the connection sends, as it changes (moved, validated, reverted). */
  readonly addressChanges: AddressChangeFeed = new AddressChangeFeed();
  readonly session: Session;
  readonly config: ReliabilityConfig;
  /** close() or abort() was called: nothing more the peer sends is delivered. */
  closing = false;
  /** abort() was called (or the transport closed): recv() ends at once, even with messages that had arrived. */
  aborted = false;
  readonly #remoteId: number;
  readonly #path: PathState;
  readonly #host: ConnectionHost;
  readonly #keys: KeyPhases;
  /** The inbound queue's two ends: the listener sends into the inlet, #drainQueue receives from the outlet. */
  readonly #inlet: Sender;
  readonly #outlet: Receiver;
  readonly #window = new ReplayWindow();
  #ended = false;
  /** Settles when the connection is over and drained: resolved, or rejected with why it failed. */
  readonly whenEnded: Promise<void>;
  #settleEnded!: (error: SluiceError | undefined) => void;
  /** The Session's and the path's next deadline, in the transport's deadlines. */
  readonly #deadline = new Deadline(() => this.#drive());
  #driveScheduled = false;
  /** An answer put off to the end of the turn (#answerAtTurnEnd): the drain's look again drives. */
  #answerDue = false;
  /** A drain of the queue is scheduled: in this turn's microtasks, or lingering until the turn's end. */
  #drainScheduled = false;
  /** For tests: the queue is never drained (a stalled consumer). */
  readonly #stalled: boolean;
  /** Wakes everything waiting on the Session (senders, receivers, readers); each re-checks its condition. */
  #waiters: Array<() => void> = [];
  #confirm: RetrySchedule | undefined;
  /** While close() waits: the timer that checks the peer still takes what is left (#watchClose). */
  #closeWatch: ReturnType<typeof setTimeout> | undefined;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Frame → the address its datagram came from, for datagrams not from the current address: when one
   * authenticates, the path state decides whether the connection follows it. One entry per queued
   * frame at most (taken when the frame is opened), so forged packets cannot crowd out a real move.
   */
  readonly #fromElsewhere = new Map<number, Address>();
  /** For benchmarks: when set, the queue's datagrams (or their plaintexts) go here instead of to the Session. */
  #bypass: DatagramVisitor | undefined;
  /** The last validated address while the path moves (for the "validated" change's `previous`). */
  #moveStart: Address | undefined;
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
    this.#path = new PathState(init.remoteAddress, randomBytes);
    this.remotePublicKey = init.remotePublicKey;
    this.observedAddress = init.observedAddress;
    this.remoteIsGateway = init.remoteIsGateway === true;
    this.#keys = new KeyPhases(init.host.crypto, init.secrets, init.host.now(), init.keyPhaseLimits ?? DEFAULT_KEY_PHASE_LIMITS);
    this.config = init.reliability;
    this.session = new Session(init.reliability, init.host.now(), init.random);
    this.#pathChanged();
    if (init.confirm !== undefined) {
      // The RESPONSE from elsewhere than the intros went: unvalidated there, ≤ 3× its bytes until a PATH_RESPONSE.
      this.#pathMoved(init.remoteAddress, this.#path.onResponseFrom(init.arrivedFrom, RESPONSE_BYTES, init.host.now(), this.session.rto));
    }
    this.whenEnded = new Promise<void>((resolve, reject) => {
      this.#settleEnded = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.whenEnded.catch(ignore); // the same reason reaches recv(), close() and `error`
    [this.#inlet, this.#outlet] = channel(init.inboundQueuePackets, { arena: init.host.arena, maxPacketSize: MAX_DATAGRAM_BYTES, maxLanes: 1 });
    this.#stalled = init.stalled === true;
    if (init.confirm) this.#confirm = new RetrySchedule(init.confirm.options, init.host.now(), init.confirm.random);
    else {
      // The responder's first packet goes at the end of this turn, with what the turn queued: the
      // ACK, its rendezvous frames and the application's first answer; it tells the initiator that
      // this end is established (no lone CONFIRM_ACK first). The initiator's goes at once
      // (sendFirstPacket), before connect() resolves.
      this.#driveScheduled = true;
      setImmediate(this.#firstDrive);
    }
    this.#host.trace?.(`connection ${this.localId} established with ${describe(this.#path.address)} (${init.confirm ? "initiator" : "responder"}, peer id ${init.remoteId})`);
  }

  /**
   * Where the connection sends: the peer's address. It changes only when a packet newer than any
   * before authenticates from another address; that address is validated (PATH_CHALLENGE) before
   * it gets more than 3× what it sent.
   */
  get remoteAddress(): Address {
    return { ...this.#path.address };
  }

  /** Whether the peer has proven it receives at remoteAddress (the handshake there, or a PATH_RESPONSE). */
  get pathValidated(): boolean {
    return this.#path.validated;
  }

  /** Key updates so far (this side's key phase). */
  get keyPhase(): number {
    return this.#keys.phase;
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
    if (!this.closing && !this.#ended) {
      this.#host.trace?.(`connection ${this.localId} closing`);
      const { sendBufferedBytes, packetsReceived } = this.session.stats();
      this.#watchClose(sendBufferedBytes, packetsReceived);
    }
    this.closing = true;
    this.session.close();
    this.scheduleDrive();
  }

  /**
   * Bounds a graceful close by the peer's progress: a peer that acknowledges but stopped reading grants
   * no credit, so what is left to deliver would wait forever. Every deadPeerTimeoutMs the bytes not yet
   * acknowledged are compared with the last look: none taken while the peer was heard from (it is
   * alive: a silent one is the dead-peer timeout's; with nothing to send either way, its keep-alives
   * are what is heard, so the bound is about max(deadPeerTimeoutMs, keepAliveMs) to twice that), and
   * the close gives up (ERR_SLUICE_CLOSE_TIMEOUT, one CLOSE to the peer). A slow peer that still reads is waited for. Once nothing is left but the
   * CLOSE itself, the dead-peer timeout bounds the rest.
   */
  #watchClose(unacknowledgedBefore: number, packetsBefore: number): void {
    const timeoutMs = this.config.deadPeerTimeoutMs;
    this.#closeWatch = setTimeout(() => {
      this.#closeWatch = undefined;
      if (this.#ended || this.session.state !== "closing") return;
      const { sendBufferedBytes: unacknowledged, packetsReceived } = this.session.stats();
      if (unacknowledged === 0) return;
      if (unacknowledged < unacknowledgedBefore || packetsReceived === packetsBefore) return this.#watchClose(unacknowledged, packetsReceived);
      this.abort(new SluiceError("ERR_SLUICE_CLOSE_TIMEOUT",
        `close() gave up: the peer took none of the ${unacknowledged} bytes still to deliver for ${timeoutMs} ms (reliability.deadPeerTimeoutMs): it is not reading`));
    }, timeoutMs);
    (this.#closeWatch as { unref?: () => void }).unref?.();
  }

  /**
   * Closes at once (connection.abort(), transport.close(), a replaced connection): one CLOSE is sent
   * (once the peer closed: the ACK of its CLOSE, if still owed), nothing waits. `error`
   * (ERR_SLUICE_ABORTED) is why, for the application's pending calls; without it the connection
   * counts as closed by this side.
   */
  abort(error?: SluiceError): void {
    if (this.#ended) return;
    this.#host.trace?.(`connection ${this.localId} aborted${error === undefined ? "" : `: ${error.message}`}`);
    this.closing = true;
    this.aborted = true;
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
  route(framer: Framer, host: string, port: number, relay: number | undefined): "sent" | "full" | "closed" {
    const current = this.#path.address;
    const elsewhere = host !== current.host || port !== current.port || relay !== current.relay;
    const frame = framer.landingFrame;
    const outcome = framer.handOver(this.#inlet);
    if (outcome === "sent") {
      this.#routed++;
      if (!this.#drainScheduled && !this.#stalled) {
        this.#drainScheduled = true;
        queueMicrotask(this.#drainAfterQuiet); // the first datagram after a quiet spell: at once
      }
      if (elsewhere) this.#fromElsewhere.set(frame, relay === undefined ? { host, port } : { host, port, relay });
    } else if (outcome === "full") this.#drops.queueFull++;
    return outcome;
  }

  /** A packet the handshake already opened (it arrived before the connection existed), from `from`. */
  deliverOpened(plaintext: Uint8Array, packetNumber: number, from: Address): void {
    const now = this.#host.now();
    const rto = this.session.rto;
    this.#window.record(packetNumber);
    this.#keys.authenticated(0, now, rto);
    const before = this.#path.address;
    this.#pathMoved(before, this.#path.onAuthenticated(from, packetNumber, plaintext.length + DATA_HEADER_BYTES + TAG_BYTES, now, rto, isProbing(plaintext)));
    this.#dispatch(plaintext, packetNumber);
    this.scheduleDrive();
  }

  /**
   * Whether the peer is still there: it acknowledges a PING sent now within two probe timeouts (see
   * Session.checkAlive; calls while a check runs share it). False once the connection has ended.
   */
  answersPing(): Promise<boolean> {
    this.session.checkAlive(this.#host.now());
    this.scheduleDrive();
    return this.until(() => {
      const check = this.session.aliveCheck;
      return this.#ended || check === undefined ? false : check === "pending" ? WAIT : check === "answered";
    });
  }

  /** Queues a control frame for the peer (false when its queue is full: see Session.sendControl). */
  sendControl(type: number, body: Uint8Array): boolean {
    const queued = this.session.sendControl(type, body);
    if (queued) this.scheduleDrive();
    return queued;
  }

  /**
   * While the connection runs over a relay: probe these direct addresses of the peer (RFC 9000 §9.1,
   * a PATH_CHALLENGE each, every PROBE_INTERVAL_MS); the first that answers becomes the path, proven
   * both ways, and the relay is left (an address change of kind "direct").
   */
  probeDirect(candidates: readonly Address[]): void {
    this.#path.probe(candidates, this.#host.now());
    this.scheduleDrive();
  }

  /**
   * An introducer says the peer is at `address`: if the direct path is elsewhere, send challenges
   * there (wire/path.ts, re-punching); the first answered moves the connection there. Answers
   * whether it punches.
   */
  punch(address: Address): boolean {
    if (this.#ended || !this.#path.punch(address, this.#host.now())) return false;
    this.#host.trace?.(`connection ${this.localId}: punching ${describe(address)} (the introducer sees the peer there)`);
    this.scheduleDrive();
    return true;
  }

  /** Whether the peer has acknowledged nothing for REPUNCH_AFTER_MS (tracked for connections with an introducer). */
  get silent(): boolean {
    return this.#path.silent(this.#host.now());
  }

  /**
   * Seals and sends one handshake frame outside the Session (a fresh packet number all the same),
   * unless an unvalidated address has had its 3× already: the CONFIRM goes again on its schedule,
   * the CONFIRM_ACK at the next CONFIRM (which adds to the allowance). The CONFIRM repeated every
   * ~200 ms for connect()'s 3 s whatever the path allowed: 567 B to a victim whose address a
   * captured RESPONSE was re-sent from, for 114 B from it.
   */
  sendFrame(frame: number): void {
    if (this.#path.allowance < FRAME_DATAGRAM_BYTES) return;
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
    const { key, phaseBit } = this.#keys.sealKey(this.#host.now());
    for (let i = 0; i < count; i++) {
      packets.set(this.#host.aead.seal(key, phaseBit, this.#remoteId, this.#benchmarkPacketNumber++, [plaintext]), i * stride);
    }
    return packets;
  }

  // ------------------------------------------------------------------ receiving

  /**
   * The queue's consumer, scheduled by the listener's hand-off (this thread): it drains the queue,
   * OPEN_BATCH datagrams between drives, and when it took any, looks again once at the end of the
   * turn (setImmediate), so the datagrams of a busy turn are opened and answered in one batch; a
   * look that finds none leaves it unscheduled until the next hand-off. Nothing parks on the queue:
   * the park safety net re-checks a parked receiver every second, which with 10,000 idle
   * connections was 10,000 wake-ups and Atomics.waitAsync calls a second for nothing.
   */
  readonly #drainQueue = (): void => this.#drain(false);

  /** The first look after a quiet spell (see #answerAtTurnEnd). */
  readonly #drainAfterQuiet = (): void => this.#drain(true);

  #drain(afterQuiet: boolean): void {
    let taken = 0;
    for (let batch = 0; !this.#ended && (batch = this.#outlet.drain(this.#visit, OPEN_BATCH)) > 0; taken += batch) {
      if (afterQuiet && taken === 0 && batch < OPEN_BATCH) this.#answerAtTurnEnd();
      else this.#drive();
    }
    // The look again at the end of the turn (it always follows an answer put off to then) gives it.
    if (!afterQuiet && this.#answerDue) this.#drive();
    if (taken > 0 && !this.#ended) setImmediate(this.#drainQueue);
    else this.#drainScheduled = false;
  }

  /**
   * After a quiet spell, a few datagrams (a request): wakes the application now and answers at the
   * end of the turn, so that what it sends in answer carries the acknowledgement, one datagram where
   * a lone ACK went first (the first 100 packets are acknowledged one by one) and the application
   * heard of its data only after that send. A busy queue is answered as it is read: deferring its
   * answers cost a stream ~10% of its throughput (16 MiB between processes, two runs each).
   */
  #answerAtTurnEnd(): void {
    this.#wake();
    this.#answerDue = true;
    this.#driveScheduled = true; // the application's answer waits for that drive rather than going alone
  }

  // The queue's visitor: `bytes` is the arena; the datagram is bytes[at, at + length).
  readonly #visit = (bytes: Uint8Array, at: number, length: number): void => {
    const from = this.#fromElsewhere.size === 0 ? undefined : this.#takeFrom(at - FRAME_DATA);
    if (this.#bypass !== undefined && !this.#bypassOpens) return this.#bypass(bytes, at, length);
    const { core } = this.#host.arena;
    const packetNumber = core.wirePacketNumberHigh(at) * 2 ** 32 + (core.wirePacketNumberLow(at) >>> 0);
    const plaintext = this.#open(at, length, packetNumber, core.wireKeyPhase(at), from);
    if (plaintext === undefined) return;
    if (this.#bypass !== undefined) this.#bypass(plaintext, 0, plaintext.length);
    else this.#dispatch(plaintext, packetNumber, from);
  };

  /** An authenticated packet's frames, which came from `from` (undefined: the current address). */
  #dispatch(plaintext: Uint8Array, packetNumber: number, from?: Address): void {
    const frame = plaintext[0];
    const session = this.session;
    if (frame === FRAME_CONFIRM) this.sendFrame(FRAME_CONFIRM_ACK);
    else if (frame === FRAME_CONFIRM_ACK) this.#stopConfirm();
    else if (session.handlePacket(plaintext, packetNumber, this.#host.now()) !== undefined) this.#drop("malformed");
    else {
      // Any packet of the responder's says it is established, as a CONFIRM_ACK does.
      if (this.#confirm !== undefined) this.#stopConfirm();
      for (let control = session.pollControl(); control !== undefined; control = session.pollControl()) this.#host.controlFrame(this, control.type, control.body);
      // A challenge on the path is answered on the path; one from elsewhere is the peer probing a
      // direct path, answered there alone, and only the first of its packet: one PATH_RESPONSE is
      // no larger than the packet that asked, several would be (an amplifier toward that address).
      let answeredElsewhere = false;
      for (let data = session.pollPathChallenge(); data !== undefined; data = session.pollPathChallenge()) {
        if (from === undefined || sameAddress(from, this.#path.address)) {
          session.answerChallenge(data);
          // On a silent path it is the peer's punch coming through (wire/path.ts): what is in flight went
          // while the path was cut, so it goes again now, not at the backed-off RTO (~0.5 s later, measured).
          if (this.#path.silent(this.#host.now())) session.onPathValidated(this.#host.now());
        } else if (!answeredElsewhere) {
          answeredElsewhere = true;
          this.#transmit(session.probePacket("response", data), from);
        }
      }
    }
  }

  #drop(reason: "decryptFailed" | "replayed" | "malformed"): void {
    this.#drops[reason]++;
    this.#host.countDrop(reason);
  }

  /** The address the datagram in `frame` came from, if not the current one (the entry is used up). */
  #takeFrom(frame: number): Address | undefined {
    const from = this.#fromElsewhere.get(frame);
    if (from !== undefined) this.#fromElsewhere.delete(frame);
    return from;
  }

  /**
   * The plaintext of an authenticated, new packet (opened in place: a view of the arena, valid until
   * the visit returns), which came from `from` (undefined: the current address); undefined (counted)
   * otherwise.
   */
  #open(at: number, length: number, packetNumber: number, phaseBit: number, from: Address | undefined): Uint8Array | undefined {
    if (!this.#window.check(packetNumber)) {
      this.#drop("replayed");
      return undefined;
    }
    const now = this.#host.now();
    const keys = this.#keys;
    const candidate = keys.openKey(phaseBit, packetNumber, this.#path.largestAuthenticated, now);
    const plaintext = candidate === undefined ? undefined : this.#host.aead.openInPlace(candidate.key, at, length);
    if (plaintext === undefined || plaintext.length === 0) {
      if (plaintext === undefined) keys.failedOpen();
      this.#drop(plaintext === undefined ? "decryptFailed" : "malformed");
      return undefined;
    }
    this.#window.record(packetNumber);
    const rto = this.session.rto;
    keys.authenticated(candidate!.phase, now, rto);
    const before = this.#path.address;
    this.#pathMoved(before, this.#path.onAuthenticated(from ?? before, packetNumber, length, now, rto, isProbing(plaintext)));
    return plaintext;
  }

  /** After a packet from elsewhere: if the path `moved` from `before`, a challenge is due there. */
  #pathMoved(before: Address, moved: "moved" | undefined): void {
    if (moved === undefined) return;
    this.#host.trace?.(`connection ${this.localId}: the peer moved from ${describe(before)} to ${describe(this.#path.address)} (not yet validated)`);
    this.#addressChanged("moved", before);
    this.scheduleDrive();
  }

  // ------------------------------------------------------------------ driving the Session

  /** Runs due timers, sends what the Session has, re-arms the timer and wakes the application. */
  #drive(): void {
    this.#driveScheduled = false;
    this.#answerDue = false;
    if (this.#ended) return;
    const session = this.session;
    const path = this.#path;
    const now = this.#host.now();
    if (session.nextDeadline() <= now) session.handleTimeout(now);
    const unvalidated = path.validated ? undefined : path.address;
    if (path.nextDeadline() <= now && path.handleTimeout(now) === "reverted") {
      this.#host.trace?.(`connection ${this.localId}: ${describe(unvalidated!)} was not validated; back to ${describe(path.address)}`);
      this.#addressChanged("reverted", unvalidated!);
    }
    for (let data = session.pollPathResponse(); data !== undefined; data = session.pollPathResponse()) {
      const relayed = path.address;
      const outcome = path.onPathResponse(data, now);
      if (outcome === undefined) continue;
      session.onPathValidated(now);
      if (outcome === "validated") {
        this.#host.trace?.(`connection ${this.localId}: the path to ${describe(path.address)} is validated`);
        this.#addressChanged("validated", this.#moveStart ?? path.address);
      } else if (relayed.relay === undefined) {
        // A punch was answered: the peer is there (it moved, and the move is proven both ways). Its
        // packets may have moved the path there already, unvalidated: then this validates that move.
        this.#host.trace?.(`connection ${this.localId}: ${describe(path.address)} answered a punch; moved there from ${describe(relayed)}`);
        if (!sameAddress(relayed, path.address)) this.#addressChanged("moved", relayed);
        this.#addressChanged("validated", this.#moveStart ?? relayed);
      } else {
        this.#host.trace?.(`connection ${this.localId}: ${describe(path.address)} answered a probe; left the relay ${describe(relayed)} for it`);
        this.#addressChanged("direct", relayed);
      }
    }
    const challenge = path.takeChallenge(now);
    if (challenge !== undefined) session.sendPathChallenge(challenge);
    for (const probe of path.takeProbes(now)) this.#transmit(session.probePacket("challenge", probe.data), probe.address);
    for (let transmit = session.pollTransmit(now, path.allowance); transmit !== undefined; transmit = session.pollTransmit(now, path.allowance)) this.#transmit(transmit);
    if (this.introducer !== undefined && !this.closing) {
      path.noteUnanswered(session.unansweredSince);
      if (path.takeRepunch(now)) this.#host.repunch(this);
    }
    if (this.#host.trace !== undefined) this.#traceLosses(this.#host.trace);
    if (session.state === "closed") this.#end();
    else this.#arm(Math.min(session.nextDeadline(), path.nextDeadline()));
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

  #arm(deadline: number): void {
    if (deadline !== this.#deadline.at) this.#host.deadlines.schedule(this.#deadline, deadline);
  }

  /** Seals and sends `transmit` to the path (or, for a probe, to `to`). */
  #transmit(transmit: Transmit, to?: Address): void {
    if (transmit.packetNumber >= LAST_PACKET_NUMBER) {
      this.abort(); // 2^53 packets: unreachable in practice, but a nonce must never repeat
      return;
    }
    this.#datagramsSent++;
    const { key, phaseBit } = this.#keys.sealKey(this.#host.now());
    const datagram = this.#host.aead.seal(key, phaseBit, this.#remoteId, transmit.packetNumber, transmit.parts);
    if (to !== undefined) return this.#host.sendDatagram([datagram], to);
    this.#path.onSent(datagram.length);
    this.#host.sendDatagram([datagram], this.#path.address);
  }

  /** Tells the address-change subscribers; `previous` is where the connection sent before. */
  #addressChanged(kind: AddressChange["kind"], previous: Address): void {
    // A validation reports the address before the move (the last validated one), however many moves it took.
    if (kind === "moved") this.#moveStart ??= previous;
    else this.#moveStart = undefined;
    this.addressChanges.emit({ kind, address: this.remoteAddress, previous: { ...previous } });
    this.#pathChanged();
    if (kind === "validated" || kind === "direct") this.#host.pathValidated(this);
  }

  /** The path changed: path MTU discovery starts again, and an unreachable peer's error names a relayed path's gateway. */
  #pathChanged(): void {
    this.session.restartPathMtu(this.#pathMtuCeiling());
    const { address } = this.#path;
    this.session.notePath(address.relay === undefined ? "" : `; the path was the relay at ${describe(address)} ` +
      "(a gateway that restarted, or closed the relay, forwards nothing more: connect to it again and connectVia() again)");
  }

  /**
   * The largest datagram path MTU discovery may try on the path now. An unvalidated address gets no
   * probe (1200: none), nor does a relay: its datagrams cross two paths behind a 6-byte header, and
   * the relay's own budget is counted in 1200-byte datagrams; a relayed connection stays at the
   * base until it moves to a direct path. Over IPv6 the ceiling is 20 bytes less (a longer header).
   */
  #pathMtuCeiling(): number {
    const { address, validated } = this.#path;
    if (!validated || address.relay !== undefined) return MAX_SEND_DATAGRAM_BYTES;
    const ipv6 = unmapped(address.host).includes(":");
    return this.config.maxDatagramBytes - (ipv6 ? IPV6_EXTRA_HEADER_BYTES : 0);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#host.trace !== undefined) {
      const { error, endReason } = this.session;
      const how = error !== undefined ? `failed: ${error.code} (${error.message})` : `closed by ${endReason?.code === "ERR_SLUICE_PEER_CLOSED" ? "the peer" : "this side"}`;
      this.#host.trace(`connection ${this.localId} with ${describe(this.#path.address)} ended: ${how}`);
    }
    this.addressChanges.end();
    this.#host.deadlines.cancel(this.#deadline);
    clearTimeout(this.#closeWatch);
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

  /** The responder's first drive: a CONFIRM_ACK of its own only if nothing else went. */
  readonly #firstDrive = (): void => {
    this.#drive();
    if (!this.#ended && this.#datagramsSent === 0) this.sendFrame(FRAME_CONFIRM_ACK);
  };

  /**
   * The initiator's first packet, which proves its keys and establishes the responder's end: what
   * the handshake's completion queued (the rendezvous' frames), or a lone CONFIRM if nothing. Sent
   * before connect() resolves, so that a peer told "connected" finds this end known to the other
   * (a gateway asked to introduce it). A later packet would have carried the application's first
   * message too, one datagram fewer, but then connect() resolved before the gateway could know:
   * the relay bench's introductions failed "the introducer has no connection with" the peer.
   */
  sendFirstPacket(): void {
    this.#drive();
    this.#repeatConfirm(this.#datagramsSent > 0);
  }

  /** Sends a CONFIRM when one is due (unless a packet just `carried` the proof), until the CONFIRM_ACK. */
  #repeatConfirm(carried = false): void {
    const schedule = this.#confirm;
    if (schedule === undefined || this.#ended) return;
    const now = this.#host.now();
    const due = schedule.poll(now);
    if (due === "expired") {
      this.#confirm = undefined;
      return;
    }
    if (due === "send" && !carried) this.sendFrame(FRAME_CONFIRM);
    this.#confirmTimer = setTimeout(() => this.#repeatConfirm(), Math.max(0, schedule.nextDeadline() - now));
    (this.#confirmTimer as { unref?: () => void }).unref?.();
  }

  #stopConfirm(): void {
    this.#confirm = undefined;
    clearTimeout(this.#confirmTimer);
  }
}

const frameByte = new Uint8Array(1);
/** A handshake frame's datagram (sendFrame): the frame's byte, sealed. */
const FRAME_DATAGRAM_BYTES = DATA_HEADER_BYTES + 1 + TAG_BYTES;

/** host:port, as a trace line names an address. */
function describe(address: Address): string {
  return addressKey(address.host, address.port);
}
