// Counters a transport keeps, and what its stats() and a connection's answer. Every datagram that is
// not delivered is counted under exactly one reason.
import type { DeliveryStats } from "../reliable/session.ts";
import type { IntroductionStats } from "../rendezvous/rendezvous.ts";

export interface DropCounts {
  /** The connection's (or handshake's) inbound queue was full: its consumer is behind. */
  queueFull: number;
  /** Not a datagram of ours: bad kind, bad length, zero connection id... (checked in wasm). */
  malformed: number;
  /** Failed authentication: a forged, corrupted or misdirected packet. */
  decryptFailed: number;
  /** A handshake packet whose mac1 is wrong: random bytes, or a sender that does not know our public key. */
  badMac: number;
  /** An intro without a valid cookie while under load: answered with a COOKIE (smaller) and nothing else. */
  cookieRequired: number;
  /** A handshake packet over its source IP's budget (intros per second, responses per connect). */
  rateLimited: number;
  /** No connection or handshake for it (a non-gateway drops strangers' intros too). */
  unknownSender: number;
  /** For a connection closed in the last 2 s. */
  recentlyClosed: number;
  /** An unknown wire version, or a handshake whose protocol versions are incompatible. */
  versionMismatch: number;
  /** A data packet number seen before or older than the replay window, or an intro not newer than one already accepted from its key. */
  replayed: number;
  /** A new inbound connection arrived while the accept queue was full: it was refused. */
  acceptQueueFull: number;
  /** A handshake packet that changes nothing: a repeated intro, the loser's intros in a simultaneous open. */
  handshakeRedundant: number;
  /** A limit on handshakes or connections (in all, or per IP) or the gateway's accept ramp was reached. */
  overCapacity: number;
  /** A datagram a relay would have forwarded past its byte budget (per relay, or in all). */
  relayBudget: number;
}

function noDrops(): DropCounts {
  return {
    queueFull: 0, malformed: 0, decryptFailed: 0, badMac: 0, cookieRequired: 0, rateLimited: 0, unknownSender: 0, recentlyClosed: 0,
    versionMismatch: 0, replayed: 0, acceptQueueFull: 0, handshakeRedundant: 0, overCapacity: 0, relayBudget: 0,
  };
}

export type DropReason = keyof DropCounts;

export interface ConnectionStats {
  id: number;
  remoteAddress: { host: string; port: number };
  /** Datagrams the listener queued for this connection. */
  routed: number;
  /** Messages handed to recv(). */
  delivered: number;
  /** Datagrams sent. */
  sent: number;
  drops: Pick<DropCounts, "queueFull" | "decryptFailed" | "replayed" | "malformed">;
  /** Reliable delivery: RTT, congestion window, losses, retransmissions, stream errors... */
  delivery: DeliveryStats;
}

export interface TransportStats {
  /** Which receive path the socket uses ("node:dgram" or "Deno.listenDatagram"). */
  socket: string;
  datagramsReceived: number;
  bytesReceived: number;
  /**
   * Datagrams that reached their connection or handshake and took effect: authenticated data, or a
   * handshake packet acted on. A forged, replayed or refused one is never here, only in `drops`
   * (failed authentication in drops.decryptFailed). Once the queues have drained,
   * datagramsReceived = datagramsRouted + Σ drops.
   */
  datagramsRouted: number;
  handshakesCompleted: number;
  handshakesFailed: number;
  /** COOKIE replies sent: intros refused under load until their sender proves its address. */
  cookiesSent: number;
  /** Datagrams (and their bytes) this gateway forwarded between two peers of a relay. */
  datagramsRelayed: number;
  bytesRelayed: number;
  /** Relays open now. */
  relays: number;
  datagramsSent: number;
  bytesSent: number;
  sendErrors: number;
  drops: DropCounts;
  /** Errors the listener caught from its own code (a bug if ever non-zero; never thrown out of the handler). */
  listenerErrors: number;
  /** Connections held: open ones, and closed ones still draining (3 RTOs, answering the peer's late packets). */
  connections: number;
  handshakes: number;
  perConnection: ConnectionStats[];
  /** The rendezvous: requests sent and served, refusals by reason, introductions acted on or declined. */
  introductions: IntroductionStats & {
    /** Connects an introduction started (asked for or not) that failed: no direct path opened. */
    connectsFailed: number;
  };
}

/** The transport's counters, written by its listener, its handshakes and itself. */
export class TransportCounters {
  datagramsReceived = 0;
  bytesReceived = 0;
  datagramsRouted = 0;
  datagramsSent = 0;
  bytesSent = 0;
  sendErrors = 0;
  listenerErrors = 0;
  droppedAfterRouting = 0;
  readonly drops = noDrops();
  /** The last send that failed (a connect that times out names it: see Handshakes). */
  #lastSendError: Error | undefined;

  get lastSendError(): Error | undefined {
    return this.#lastSendError;
  }

  /** A send failed: counted, and kept as the last. */
  sendFailed(error: Error): void {
    this.sendErrors++;
    this.#lastSendError = error;
  }

  /** A datagram that goes nowhere, for `reason`. */
  drop(reason: DropReason): "dropped" {
    this.drops[reason]++;
    return "dropped";
  }

  /** A datagram the listener handed on and its connection or handshake then dropped: it comes off datagramsRouted. */
  dropAfterRouting(reason: DropReason): void {
    this.drops[reason]++;
    this.droppedAfterRouting++;
  }

  /** The counters now, for TransportStats (the handshake endpoint keeps the handshakes' own). */
  snapshot(): Omit<TransportStats, "socket" | "connections" | "handshakes" | "perConnection" | "handshakesCompleted" | "handshakesFailed" | "cookiesSent" | "datagramsRelayed" | "bytesRelayed" | "relays" | "introductions"> {
    const { droppedAfterRouting, datagramsRouted, ...counts } = this;
    return { ...counts, datagramsRouted: datagramsRouted - droppedAfterRouting, drops: { ...this.drops } };
  }
}
