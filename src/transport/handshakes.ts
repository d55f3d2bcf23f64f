// The handshakes in progress, and what drives them. Each handshake has its own bounded queue: the
// listener routes its packets there (intros, responses, the confirm), and one consumer takes them one
// at a time, opens and answers them with messages.ts, and ends the handshake with a connection of the
// same id, or a failure. Work for strangers stays bounded: one intro decryption per address per
// INTRO_DECRYPT_INTERVAL_MS (the listener spends from the same budget), and a responder that never
// hears the initiator's confirm gives up after RESPONDER_CONFIRM_TIMEOUT_MS.
//
// A handshake's consumer awaits its own queue's recv(): a receive, never a send. No await anywhere
// waits for a bounded queue to have room.
import type { Arena } from "../memory/arena.ts";
import { channel } from "../channel/channel.ts";
import type { Receiver } from "../channel/receiver.ts";
import type { Sender } from "../channel/sender.ts";
import type { Address } from "../wire/address.ts";
import { FRAME_CONFIRM, FRAME_CONFIRM_ACK, KIND_DATA, KIND_INTRO, KIND_RESPONSE, MAX_DATAGRAM_BYTES } from "../wire/constants.ts";
import type { Framer } from "../wire/framer.ts";
import type { PacketAead } from "../wire/packet-aead.ts";
import { compatible, describeVersion } from "../wire/version.ts";
import { PerKeyInterval } from "../handshake/admission.ts";
import type { PublicKey } from "../handshake/crypto.ts";
import {
  buildIntro, buildResponse, openIntro, openResponse, STATUS_OK, STATUS_VERSION_MISMATCH,
  type Identity, type IntroState, type OpenedIntro, type SessionKeys,
} from "../handshake/messages.ts";
import { RetrySchedule, type RetryOptions } from "../handshake/retry.ts";
import type { Connection } from "./connection.ts";
import type { Warnings } from "./log.ts";
import type { TransportConfig, TransportSeams } from "./options.ts";
import { SessionDriver, type ConnectionHost, type SessionDriverInit } from "./session-driver.ts";
import type { TransportCounters } from "./stats.ts";
import type { ConnectionTable } from "./table.ts";

/** One intro decryption per source address per this interval (freenet: 1 s). */
export const INTRO_DECRYPT_INTERVAL_MS = 1000;
/** Source addresses the intro limiter remembers at once. */
const MAX_TRACKED_ADDRESSES = 65536;
/** A responder waits this long for the initiator's confirm (freenet: 5 s). */
export const RESPONDER_CONFIRM_TIMEOUT_MS = 5000;

interface Settle {
  resolve(connection: Connection): void;
  reject(error: Error): void;
}

/** A handshake in progress: the listener sends its packets into `inlet`; its consumer receives them from `outlet`. */
export interface Handshake {
  role: "initiator" | "responder";
  localId: number;
  address: Address;
  key: string;
  inlet: Sender;
  outlet: Receiver;
  done: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** connect()'s promise (both roles: a connecting side may become the responder in a simultaneous open). */
  settle?: Settle;
  // initiator
  remoteStatic?: Uint8Array;
  intro?: IntroState;
  schedule?: RetrySchedule;
  // responder
  opened?: OpenedIntro;
  response?: Uint8Array;
  keys?: SessionKeys;
  /** The connection a restarted peer's new handshake will replace once it confirms. */
  replacing?: SessionDriver;
}

interface HandshakesInit {
  identity: Identity;
  config: TransportConfig;
  seams: TransportSeams;
  arena: Arena;
  framer: Framer;
  aead: PacketAead;
  table: ConnectionTable;
  counters: TransportCounters;
  warnings: Warnings;
  /** What the connections the handshakes make need from the transport. */
  host: ConnectionHost;
  send(chunks: readonly Uint8Array[], to: Address): void;
  /** A connection a peer started is established: for accept(). */
  accepted(connection: SessionDriver): void;
  /** A gateway told us our address as it sees it. */
  observed(address: Address): void;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export class Handshakes {
  /** One intro decryption per source address per INTRO_DECRYPT_INTERVAL_MS, shared with the listener. */
  readonly introLimiter = new PerKeyInterval(INTRO_DECRYPT_INTERVAL_MS, MAX_TRACKED_ADDRESSES);
  readonly #identity: Identity;
  readonly #config: TransportConfig;
  readonly #seams: TransportSeams;
  readonly #arena: Arena;
  readonly #framer: Framer;
  readonly #aead: PacketAead;
  readonly #table: ConnectionTable;
  readonly #counters: TransportCounters;
  readonly #warnings: Warnings;
  readonly #host: ConnectionHost;
  readonly #send: (chunks: readonly Uint8Array[], to: Address) => void;
  readonly #accepted: (connection: SessionDriver) => void;
  readonly #observed: (address: Address) => void;

  constructor(init: HandshakesInit) {
    this.#identity = init.identity;
    this.#config = init.config;
    this.#seams = init.seams;
    this.#arena = init.arena;
    this.#framer = init.framer;
    this.#aead = init.aead;
    this.#table = init.table;
    this.#counters = init.counters;
    this.#warnings = init.warnings;
    this.#host = init.host;
    this.#send = init.send;
    this.#accepted = init.accepted;
    this.#observed = init.observed;
  }

  /**
   * Starts a handshake as the initiator with the peer at `address` (map key `key`) whose static key
   * is `remoteStatic`. Throws at once if one with that address is in progress or the limits are reached.
   */
  connect(address: Address, key: string, remoteStatic: Uint8Array, remoteStaticKey: PublicKey, retry: Required<RetryOptions>): Promise<Connection> {
    const table = this.#table;
    const { maxHandshakes, maxConnections } = this.#config;
    if (table.handshakeByAddress.has(key)) throw new Error(`a handshake with ${key} is already in progress`);
    if (table.handshakeByAddress.size >= maxHandshakes) throw new RangeError(`too many handshakes in progress (options.maxHandshakes = ${maxHandshakes})`);
    if (table.connectionByAddress.size >= maxConnections && !table.connectionByAddress.has(key)) {
      throw new RangeError(`too many connections (options.maxConnections = ${maxConnections})`);
    }
    return new Promise<Connection>((resolve, reject) => {
      const now = performance.now();
      const handshake = this.#new("initiator", address, key);
      handshake.settle = { resolve, reject };
      handshake.remoteStatic = remoteStatic;
      handshake.intro = buildIntro(this.#framer, this.#identity, remoteStatic, remoteStaticKey, handshake.localId, this.#config.version);
      handshake.schedule = new RetrySchedule(retry, now, this.#config.random);
      this.#resendIntro(handshake);
    });
  }

  /** A responder for a new intro from `address` (the listener checked the limits), replacing `replacing` once it confirms. */
  respond(address: Address, key: string, replacing: SessionDriver | undefined): Handshake {
    const handshake = this.#new("responder", address, key);
    handshake.replacing = replacing;
    handshake.timer = setTimeout(() => this.#fail(handshake, new Error("no confirm from the initiator")), RESPONDER_CONFIRM_TIMEOUT_MS);
    return handshake;
  }

  /** Fails every handshake in progress with `error` (the transport is closing). */
  failAll(error: Error): void {
    for (const handshake of [...this.#table.handshakeByAddress.values()]) this.#fail(handshake, error);
  }

  #new(role: "initiator" | "responder", address: Address, key: string): Handshake {
    const [inlet, outlet] = channel(this.#config.handshakeQueuePackets, { arena: this.#arena, maxPacketSize: MAX_DATAGRAM_BYTES, maxLanes: 1 });
    const handshake: Handshake = { role, localId: this.#table.newConnectionId(), address, key, inlet, outlet, done: false };
    this.#table.byId.set(handshake.localId, handshake);
    this.#table.handshakeByAddress.set(key, handshake);
    void this.#run(handshake);
    return handshake;
  }

  /** The handshake's consumer: one packet at a time, until the handshake ends (its queue closes). */
  async #run(handshake: Handshake): Promise<void> {
    for (;;) {
      const packet = await handshake.outlet.recv();
      if (packet === undefined || handshake.done) return;
      try {
        this.#packet(handshake, packet);
      } catch (error) {
        this.#counters.listenerErrors++;
        this.#warnings.warn("handshakeError", `handshake error (packet dropped): ${(error as Error).stack ?? String(error)}`);
      }
    }
  }

  #packet(handshake: Handshake, packet: Uint8Array): void {
    const kind = this.#framer.parse(packet);
    if (kind === KIND_INTRO) this.#intro(handshake, packet);
    else if (kind === KIND_RESPONSE) this.#response(handshake, packet);
    else if (kind === KIND_DATA) this.#confirm(handshake, packet, this.#framer.packetNumber());
  }

  #intro(handshake: Handshake, packet: Uint8Array): void {
    const counters = this.#counters;
    if (handshake.role === "responder" && handshake.opened !== undefined) {
      // The initiator did not get our response and repeats its intro: repeat the same response.
      if (equalBytes(packet, handshake.opened.datagram) && handshake.response) this.#send([handshake.response], handshake.address);
      else counters.dropAfterRouting("handshakeRedundant");
      return;
    }
    if (handshake.role === "initiator") {
      // Simultaneous open: both sides sent intros. The side with the higher static key answers; the
      // other keeps its own intro going and ignores the peer's (without spending a decryption on it).
      if (compareBytes(this.#identity.publicKey, handshake.remoteStatic!) < 0) {
        counters.dropAfterRouting("handshakeRedundant");
        return;
      }
      if (!this.introLimiter.tryTake(handshake.key, performance.now())) {
        counters.dropAfterRouting("rateLimited");
        return;
      }
    }
    const opened = openIntro(this.#identity, packet);
    if (opened === undefined) {
      counters.dropAfterRouting("decryptFailed");
      if (handshake.role === "responder") this.#fail(handshake);
      return;
    }
    // Who may connect: a gateway takes anyone; otherwise the peer we are connecting to, or the peer
    // of an established connection that restarted (same static key).
    const expected = handshake.remoteStatic ?? handshake.replacing?.remotePublicKey;
    if (!this.#config.gateway && (expected === undefined || !equalBytes(expected, opened.initiatorStatic))) {
      counters.dropAfterRouting("unknownSender");
      if (handshake.role === "responder") this.#fail(handshake);
      return;
    }
    const version = this.#config.version;
    const agreed = compatible(version, opened.version);
    const built = buildResponse(this.#framer, this.#identity, opened, {
      status: agreed ? STATUS_OK : STATUS_VERSION_MISMATCH,
      version,
      responderConnection: handshake.localId,
      observedAddress: handshake.address,
    });
    if (built === undefined || built.datagram.length > packet.length) {
      // An unusable initiator key (or a response larger than the intro: never amplify).
      counters.dropAfterRouting("decryptFailed");
      if (handshake.role === "responder") this.#fail(handshake);
      return;
    }
    this.#send([built.datagram], handshake.address);
    if (!agreed) {
      counters.dropAfterRouting("versionMismatch");
      this.#fail(handshake, new Error(`protocol version mismatch: ${handshake.key} speaks ${describeVersion(opened.version)}, this node ${describeVersion(version)}`));
      return;
    }
    // Now (or from now on, for a connecting side that lost the tie-break) the responder.
    handshake.role = "responder";
    clearTimeout(handshake.timer);
    handshake.timer = setTimeout(() => this.#fail(handshake, new Error(`no confirm from ${handshake.key} within ${RESPONDER_CONFIRM_TIMEOUT_MS} ms of our response`)), RESPONDER_CONFIRM_TIMEOUT_MS);
    handshake.opened = opened;
    handshake.response = built.datagram;
    handshake.keys = built.keys;
  }

  #response(handshake: Handshake, packet: Uint8Array): void {
    const counters = this.#counters;
    const opened = openResponse(this.#identity, handshake.intro!, packet);
    if (opened === undefined) {
      counters.dropAfterRouting("decryptFailed");
      return;
    }
    const version = this.#config.version;
    if (opened.status === STATUS_VERSION_MISMATCH || !compatible(version, opened.version)) {
      counters.dropAfterRouting("versionMismatch");
      this.#fail(handshake, new Error(`protocol version mismatch: ${handshake.key} speaks ${describeVersion(opened.version)}, this node ${describeVersion(version)}`));
      return;
    }
    if (opened.status !== STATUS_OK || opened.responderConnection === 0) {
      counters.dropAfterRouting("malformed");
      return;
    }
    if (opened.observedAddress) this.#observed(opened.observedAddress);
    const connection = this.#newConnection(handshake, {
      remoteId: opened.responderConnection,
      remotePublicKey: handshake.remoteStatic!,
      keys: opened.keys,
      observedAddress: opened.observedAddress,
      confirm: { options: this.#config.retry, random: this.#config.random },
    });
    this.#establish(handshake, connection);
  }

  /** A data packet to a responder: the initiator's confirm (or its first message, if the confirm was lost). */
  #confirm(handshake: Handshake, packet: Uint8Array, packetNumber: number): void {
    if (handshake.keys === undefined) {
      this.#counters.dropAfterRouting("unknownSender");
      return;
    }
    const plaintext = this.#aead.open(handshake.keys.receive, packet);
    if (plaintext === undefined) {
      this.#counters.dropAfterRouting("decryptFailed");
      return;
    }
    const opened = handshake.opened!;
    const connection = this.#newConnection(handshake, { remoteId: opened.initiatorConnection, remotePublicKey: opened.initiatorStatic, keys: handshake.keys });
    // The confirm (answered inside), or the initiator's first data if the confirm was lost: either proves its keys.
    connection.deliverOpened(plaintext, packetNumber);
    if (plaintext[0] !== FRAME_CONFIRM) connection.sendFrame(FRAME_CONFIRM_ACK);
    this.#establish(handshake, connection);
  }

  /** The connection `handshake` completes: same id, same address, this transport's queue size and reliability. */
  #newConnection(handshake: Handshake, peer: Pick<SessionDriverInit, "remoteId" | "remotePublicKey" | "keys" | "observedAddress" | "confirm">): SessionDriver {
    return new SessionDriver({
      host: this.#host,
      localId: handshake.localId,
      remoteAddress: handshake.address,
      inboundQueuePackets: this.#config.inboundQueuePackets,
      reliability: this.#config.reliability,
      stalled: this.#seams.stallConsumersOf?.(peer.remotePublicKey),
      ...peer,
    });
  }

  /** The handshake becomes a connection: same id, packets queued meanwhile move over. */
  #establish(handshake: Handshake, connection: SessionDriver): void {
    const table = this.#table;
    this.#end(handshake);
    this.#counters.handshakesCompleted++;
    handshake.replacing?.abort(); // the restarted peer's old connection
    const previous = table.connectionByAddress.get(handshake.key);
    if (previous !== undefined && previous !== handshake.replacing) previous.abort(); // a fresh connect supersedes
    table.byId.set(connection.localId, connection);
    table.connectionByAddress.set(handshake.key, connection);
    table.recentlyClosedAddresses.delete(handshake.key);
    for (let packet = handshake.outlet.tryRecv(); packet instanceof Uint8Array; packet = handshake.outlet.tryRecv()) {
      if (this.#framer.parse(packet) === KIND_DATA) connection.route(this.#framer, handshake.address.host, handshake.address.port);
    }
    handshake.outlet.close();
    if (handshake.settle) handshake.settle.resolve(connection.connection);
    else this.#accepted(connection);
  }

  #resendIntro(handshake: Handshake): void {
    if (handshake.done || handshake.role !== "initiator") return;
    const schedule = handshake.schedule!;
    const now = performance.now();
    const due = schedule.poll(now);
    if (due === "expired") {
      this.#fail(handshake, new Error(
        `connect to ${handshake.key} failed: no valid answer after ${schedule.attempts} intros within ${Math.round(schedule.deadlineAt - schedule.startedAt)} ms ` +
        "(the peer is down, is not a gateway and not connecting to us, or its public key is not the one given)",
      ));
      return;
    }
    if (due === "send") this.#send([handshake.intro!.datagram], handshake.address);
    handshake.timer = setTimeout(() => this.#resendIntro(handshake), Math.max(0, schedule.nextDeadline() - now));
  }

  #end(handshake: Handshake): void {
    const table = this.#table;
    handshake.done = true;
    clearTimeout(handshake.timer);
    if (table.byId.get(handshake.localId) === handshake) table.byId.delete(handshake.localId);
    if (table.handshakeByAddress.get(handshake.key) === handshake) table.handshakeByAddress.delete(handshake.key);
    handshake.inlet.close();
  }

  #fail(handshake: Handshake, error?: Error): void {
    if (handshake.done) return;
    this.#end(handshake);
    handshake.outlet.close();
    handshake.outlet.drain(() => {});
    this.#counters.handshakesFailed++;
    if (handshake.settle && error) handshake.settle.reject(error);
  }
}
