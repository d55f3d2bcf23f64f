// The listener: route() runs once per datagram, synchronously, and never throws out. The core
// classifies the datagram (assembly/wire.ts); the listener finds its queue by connection id (data,
// responses) or by source address (intros), and hands it over with a try-send that answers
// 'sent' | 'full' | 'closed' at once. Every datagram that goes nowhere is counted under one reason.
// Expensive work (X25519, AES-GCM, ChaCha20-Poly1305) happens in the queues' consumers, never here,
// and work for strangers is bounded: intro decryptions per address, the gateway's accept ramp, and
// the number of handshakes and connections.
import { addressKey } from "../wire/address.ts";
import { KIND_DATA, KIND_INTRO, KIND_RESPONSE, WIRE_UNKNOWN_VERSION } from "../wire/constants.ts";
import { PARSE_NO_FRAME, type Framer } from "../wire/framer.ts";
import { AcceptRamp } from "../handshake/admission.ts";
import type { Handshake, Handshakes } from "./handshakes.ts";
import type { Warnings } from "./log.ts";
import type { TransportConfig } from "./options.ts";
import { SessionDriver } from "./session-driver.ts";
import type { TransportCounters } from "./stats.ts";
import type { ConnectionTable } from "./table.ts";

/** What became of a datagram: handed to a queue ('sent'), refused by it ('full', 'closed'), or not routed at all. */
export type RouteOutcome = "sent" | "full" | "closed" | "dropped";

interface ListenerInit {
  config: TransportConfig;
  framer: Framer;
  table: ConnectionTable;
  handshakes: Handshakes;
  counters: TransportCounters;
  warnings: Warnings;
}

export class Listener {
  readonly #framer: Framer;
  readonly #byId: Map<number, SessionDriver | Handshake>;
  readonly #table: ConnectionTable;
  readonly #handshakes: Handshakes;
  readonly #counters: TransportCounters;
  readonly #warnings: Warnings;
  readonly #gateway: boolean;
  readonly #maxHandshakes: number;
  readonly #maxConnections: number;
  readonly #acceptRamp: AcceptRamp;
  #closed = false;

  constructor(init: ListenerInit) {
    this.#framer = init.framer;
    this.#table = init.table;
    this.#byId = init.table.byId;
    this.#handshakes = init.handshakes;
    this.#counters = init.counters;
    this.#warnings = init.warnings;
    this.#gateway = init.config.gateway;
    this.#maxHandshakes = init.config.maxHandshakes;
    this.#maxConnections = init.config.maxConnections;
    this.#acceptRamp = new AcceptRamp(init.config.acceptRamp, performance.now());
  }

  /** The socket's datagram handler. */
  readonly onDatagram = (datagram: Uint8Array, host: string, port: number): void => {
    try {
      this.route(datagram, host, port);
    } catch (error) {
      // A bug of ours, never a reason to stop routing for every other peer.
      this.#counters.listenerErrors++;
      this.#warnings.warn("listenerError", `listener error (datagram dropped): ${(error as Error).stack ?? String(error)}`);
    }
  };

  /** From now on every datagram is dropped (counted as for a recently closed connection). */
  close(): void {
    this.#closed = true;
  }

  /** Routes one datagram from host:port; what happened to it is counted. */
  route(datagram: Uint8Array, host: string, port: number): RouteOutcome {
    const counters = this.#counters;
    counters.datagramsReceived++;
    counters.bytesReceived += datagram.length;
    if (this.#closed) return counters.drop("recentlyClosed");
    const framer = this.#framer;
    const kind = framer.parse(datagram);
    if (kind < 0) return kind === PARSE_NO_FRAME ? this.#counted("full") : counters.drop(kind === WIRE_UNKNOWN_VERSION ? "versionMismatch" : "malformed");
    if (kind === KIND_INTRO) return this.#routeIntro(host, port);
    const id = framer.connection();
    const target = this.#byId.get(id);
    if (target === undefined) return counters.drop(this.#table.recentlyClosedIds.has(id, performance.now()) ? "recentlyClosed" : "unknownSender");
    if (target instanceof SessionDriver) {
      if (kind !== KIND_DATA) return counters.drop("unknownSender");
      return this.#counted(target.route(framer, host, port));
    }
    // A response belongs to an initiator, data to a responder awaiting its confirm.
    if ((kind === KIND_RESPONSE) !== (target.role === "initiator")) return counters.drop("unknownSender");
    return this.#counted(framer.handOver(target.inlet));
  }

  /** An intro parse() accepted: to its handshake, or (within the limits on strangers) to a new one. */
  #routeIntro(host: string, port: number): RouteOutcome {
    const table = this.#table;
    const counters = this.#counters;
    const key = addressKey(host, port);
    const handshake = table.handshakeByAddress.get(key);
    if (handshake !== undefined) return this.#counted(this.#framer.handOver(handshake.inlet));
    const now = performance.now();
    const introLimiter = this.#handshakes.introLimiter;
    const established = table.connectionByAddress.get(key);
    if (established === undefined) {
      // A stranger. Only a gateway talks to strangers; a recently closed peer waits out its grace.
      if (!this.#gateway) return counters.drop(table.recentlyClosedAddresses.has(key, now) ? "recentlyClosed" : "unknownSender");
      if (!introLimiter.tryTake(key, now) || !this.#acceptRamp.tryTake(now)) return counters.drop("rateLimited");
    } else if (!introLimiter.tryTake(key, now)) {
      return counters.drop("rateLimited"); // a restarted peer re-sends intros; one decryption per second
    }
    if (table.handshakeByAddress.size >= this.#maxHandshakes) return counters.drop("overCapacity");
    if (established === undefined && table.connectionByAddress.size >= this.#maxConnections) return counters.drop("overCapacity");
    const fresh = this.#handshakes.respond({ host, port }, key, established);
    return this.#counted(this.#framer.handOver(fresh.inlet));
  }

  #counted(outcome: "sent" | "full" | "closed"): "sent" | "full" | "closed" {
    if (outcome === "sent") this.#counters.datagramsRouted++;
    else if (outcome === "full") this.#counters.drop("queueFull");
    else this.#counters.drop("recentlyClosed");
    return outcome;
  }
}
