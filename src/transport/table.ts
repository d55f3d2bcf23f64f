// Whom the listener routes to: connections and handshakes by the connection id their packets carry,
// and by address (an intro names no id: it comes from an address); and the ids and addresses closed
// a moment ago, whose late packets are dropped without crypto.
import { RecentlyClosed } from "../handshake/admission.ts";
import type { Handshake } from "./handshakes.ts";
import type { SessionDriver } from "./session-driver.ts";

/** Late packets for a closed connection are dropped without crypto for this long. */
export const RECENTLY_CLOSED_MS = 2000;
/**
 * Random draws for a free connection id. At most ~6 × 65,536 of 2^31 ids are ever taken (connections,
 * handshakes, recently closed), so 16 taken draws in a row has a chance below 10^-58.
 */
const CONNECTION_ID_DRAWS = 16;

export class ConnectionTable {
  /** Connections and handshakes by the connection id the peer sends to (chosen by us). */
  readonly byId = new Map<number, SessionDriver | Handshake>();
  readonly handshakeByAddress = new Map<string, Handshake>();
  readonly connectionByAddress = new Map<string, SessionDriver>();
  readonly recentlyClosedIds: RecentlyClosed<number>;
  readonly recentlyClosedAddresses: RecentlyClosed<string>;

  constructor(maxConnections: number) {
    this.recentlyClosedIds = new RecentlyClosed(RECENTLY_CLOSED_MS, 4 * maxConnections);
    this.recentlyClosedAddresses = new RecentlyClosed(RECENTLY_CLOSED_MS, 4 * maxConnections);
  }

  /** A random id not in use. Throws after CONNECTION_ID_DRAWS taken ones (never, in practice: see there). */
  newConnectionId(): number {
    const now = performance.now();
    const draw = new Uint32Array(1);
    for (let attempt = 0; attempt < CONNECTION_ID_DRAWS; attempt++) {
      // 31 bits: V8 keeps such a number a small integer, so the listener's lookup by id allocates
      // nothing (ids of 2^31 and up cost each datagram ~12 ns more, measured).
      const id = crypto.getRandomValues(draw)[0]! >>> 1;
      if (id !== 0 && !this.byId.has(id) && !this.recentlyClosedIds.has(id, now)) return id;
    }
    throw new RangeError(`no free connection id after ${CONNECTION_ID_DRAWS} random draws`);
  }

  /** A connection ended: its id and address are recently closed from now on. */
  forget(connection: SessionDriver): void {
    const now = performance.now();
    if (this.byId.get(connection.localId) === connection) this.byId.delete(connection.localId);
    this.recentlyClosedIds.add(connection.localId, now);
    for (const [key, known] of this.connectionByAddress) {
      if (known !== connection) continue;
      this.connectionByAddress.delete(key);
      this.recentlyClosedAddresses.add(key, now);
    }
  }
}
