// The listener: route() runs once per datagram, synchronously, and never throws out. The core
// classifies the datagram (assembly/wire.ts); a DATA packet goes to its connection's queue by
// connection id (handed over with a try-send that answers 'sent' | 'full' | 'closed' at once), and a
// handshake packet to the handshake endpoint, which checks it cheaply here (mac1, budgets, cookies)
// and queues only what earned its X25519 for later. Every datagram that goes nowhere is counted
// under one reason.
import { KIND_DATA, WIRE_UNKNOWN_VERSION } from "../wire/constants.ts";
import { PARSE_NO_FRAME, type Framer } from "../wire/framer.ts";
import type { Handshakes } from "./handshakes.ts";
import type { Warnings } from "./log.ts";
import type { SessionDriver } from "./session-driver.ts";
import type { TransportCounters } from "./stats.ts";
import type { ConnectionTable } from "./table.ts";

/** What became of a datagram: handed to a queue ('sent'), refused by it ('full', 'closed'), or not routed at all. */
export type RouteOutcome = "sent" | "full" | "closed" | "dropped";

interface ListenerInit {
  framer: Framer;
  table: ConnectionTable;
  handshakes: Handshakes;
  counters: TransportCounters;
  warnings: Warnings;
}

export class Listener {
  readonly #framer: Framer;
  readonly #byId: Map<number, SessionDriver>;
  readonly #table: ConnectionTable;
  readonly #handshakes: Handshakes;
  readonly #counters: TransportCounters;
  readonly #warnings: Warnings;
  #closed = false;

  constructor(init: ListenerInit) {
    this.#framer = init.framer;
    this.#table = init.table;
    this.#byId = init.table.byId;
    this.#handshakes = init.handshakes;
    this.#counters = init.counters;
    this.#warnings = init.warnings;
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
    if (kind !== KIND_DATA) {
      counters.datagramsRouted++; // to the endpoint, which counts its own drops as after routing
      this.#handshakes.handle(kind, framer.landed(), { host, port });
      return "sent";
    }
    const id = framer.connection();
    const target = this.#byId.get(id);
    if (target !== undefined) return this.#counted(target.route(framer, host, port));
    if (this.#handshakes.owns(id)) {
      counters.datagramsRouted++;
      this.#handshakes.handleData(id, framer.landed(), { host, port });
      return "sent";
    }
    return counters.drop(this.#table.recentlyClosedIds.has(id, performance.now()) ? "recentlyClosed" : "unknownSender");
  }

  #counted(outcome: "sent" | "full" | "closed"): "sent" | "full" | "closed" {
    if (outcome === "sent") this.#counters.datagramsRouted++;
    else if (outcome === "full") this.#counters.drop("queueFull");
    else this.#counters.drop("recentlyClosed");
    return outcome;
  }
}
