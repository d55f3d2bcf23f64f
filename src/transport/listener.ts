// The listener: route() runs once per datagram, synchronously, and never throws out. The core
// classifies the datagram (assembly/wire.ts); a DATA packet goes to its connection's queue by
// connection id (handed over with a try-send that answers 'sent' | 'full' | 'closed' at once), and a
// handshake packet to the handshake endpoint, which checks it cheaply here (mac1, budgets, cookies)
// and queues only what earned its X25519 for later. A RELAY datagram is forwarded (a gateway's relay)
// or unwrapped and routed as coming from its relay (a peer's). Every datagram that goes nowhere is
// counted under one reason.
import type { Address } from "../wire/address.ts";
import { KIND_DATA, KIND_RELAY, RELAY_HEADER_BYTES, WIRE_UNKNOWN_VERSION } from "../wire/constants.ts";
import { PARSE_NO_FRAME, type Framer } from "../wire/framer.ts";
import type { Handshakes } from "./handshakes.ts";
import type { Warnings } from "./log.ts";
import type { Relays } from "./relays.ts";
import type { SessionDriver } from "./session-driver.ts";
import type { TransportCounters } from "./stats.ts";
import type { ConnectionTable } from "./table.ts";

/** What became of a datagram: handed to a queue ('sent'), refused by it ('full', 'closed'), or not routed at all. */
export type RouteOutcome = "sent" | "full" | "closed" | "dropped";

interface ListenerInit {
  framer: Framer;
  relays: Relays;
  table: ConnectionTable;
  handshakes: Handshakes;
  counters: TransportCounters;
  warnings: Warnings;
}

export class Listener {
  readonly #framer: Framer;
  readonly #relays: Relays;
  readonly #byId: Map<number, SessionDriver>;
  readonly #table: ConnectionTable;
  readonly #handshakes: Handshakes;
  readonly #counters: TransportCounters;
  readonly #warnings: Warnings;
  #closed = false;

  constructor(init: ListenerInit) {
    this.#framer = init.framer;
    this.#relays = init.relays;
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
    if (kind < 0) return this.#refused(kind);
    if (kind === KIND_RELAY) return this.#relay(host, port);
    return this.#routeParsed(kind, host, port, undefined);
  }

  /** A datagram parse() accepted (a DATA or handshake kind), from host:port (through relay `relay`, if set). */
  #routeParsed(kind: number, host: string, port: number, relay: number | undefined): RouteOutcome {
    const counters = this.#counters;
    const framer = this.#framer;
    if (kind !== KIND_DATA) {
      counters.datagramsRouted++; // to the endpoint, which counts its own drops as after routing
      this.#handshakes.handle(kind, framer.landed(), from(host, port, relay));
      return "sent";
    }
    const id = framer.connection();
    const target = this.#byId.get(id);
    if (target !== undefined) return this.#counted(target.route(framer, host, port, relay));
    if (this.#handshakes.owns(id)) {
      counters.datagramsRouted++;
      this.#handshakes.handleData(id, framer.landed(), from(host, port, relay));
      return "sent";
    }
    return counters.drop(this.#table.recentlyClosedIds.has(id, performance.now()) ? "recentlyClosed" : "unknownSender");
  }

  /** A RELAY datagram: forwarded (a gateway's relay), or what it carries routed as coming from its relay. */
  #relay(host: string, port: number): RouteOutcome {
    const framer = this.#framer;
    const landed = framer.landed();
    const outcome = this.#relays.receive(framer.connection(), landed, { host, port }, performance.now());
    if ("drop" in outcome) return this.#counters.drop(outcome.drop);
    if ("relayed" in outcome) return "sent";
    const kind = framer.parse(landed.subarray(RELAY_HEADER_BYTES));
    if (kind < 0) return this.#refused(kind);
    if (kind === KIND_RELAY) return this.#counters.drop("malformed"); // a relay inside a relay: never ours
    return this.#routeParsed(kind, host, port, outcome.unwrap.relay);
  }

  #refused(kind: number): RouteOutcome {
    return kind === PARSE_NO_FRAME ? this.#counted("full") : this.#counters.drop(kind === WIRE_UNKNOWN_VERSION ? "versionMismatch" : "malformed");
  }

  #counted(outcome: "sent" | "full" | "closed"): "sent" | "full" | "closed" {
    if (outcome === "sent") this.#counters.datagramsRouted++;
    else if (outcome === "full") this.#counters.drop("queueFull");
    else this.#counters.drop("recentlyClosed");
    return outcome;
  }
}

function from(host: string, port: number, relay: number | undefined): Address {
  return relay === undefined ? { host, port } : { host, port, relay };
}
