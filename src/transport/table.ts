// Whom the listener routes to: connections by the connection id their packets carry (handshakes keep
// their own ids in the handshake endpoint), one connection per peer static key, and the ids closed a
// moment ago, whose late packets are dropped without crypto.
import { limitReached } from "../errors/errors.ts";
import { RecentlyClosed } from "../handshake/admission.ts";
import { randomUint32 } from "../memory/random-pool.ts";
import type { SessionDriver } from "./session-driver.ts";

/** Late packets for a closed connection are dropped without crypto for this long. */
export const RECENTLY_CLOSED_MS = 2000;
/**
 * Random draws for a free connection id. At most ~6 × 65,536 of 2^31 ids are ever taken (connections,
 * handshakes, recently closed), so 16 taken draws in a row has a chance below 10^-58.
 */
const CONNECTION_ID_DRAWS = 16;

const keyOf = (publicKey: Uint8Array): string => Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString("hex");

export class ConnectionTable {
  /** Connections by the connection id the peer sends to (chosen by us). */
  readonly byId = new Map<number, SessionDriver>();
  /** Connections by the peer's static key: at most one each (a newer one replaces it). */
  readonly #byKey = new Map<string, SessionDriver>();
  readonly recentlyClosedIds: RecentlyClosed<number>;
  /** Ids handshakes hold (they are not in byId), so a new id is never one of theirs. */
  readonly #takenElsewhere: (id: number) => boolean;

  constructor(maxConnections: number, takenElsewhere: (id: number) => boolean) {
    this.recentlyClosedIds = new RecentlyClosed(RECENTLY_CLOSED_MS, 4 * maxConnections);
    this.#takenElsewhere = takenElsewhere;
  }

  get size(): number {
    return this.#byKey.size;
  }

  connections(): IterableIterator<SessionDriver> {
    return this.#byKey.values();
  }

  /** The live connection with the peer whose static key is `publicKey`, if any. */
  byKey(publicKey: Uint8Array): SessionDriver | undefined {
    return this.#byKey.get(keyOf(publicKey));
  }

  /** A random id not in use. Throws after CONNECTION_ID_DRAWS taken ones (never, in practice: see there). */
  newConnectionId(): number {
    const now = performance.now();
    for (let attempt = 0; attempt < CONNECTION_ID_DRAWS; attempt++) {
      // 31 bits: V8 keeps such a number a small integer, so the listener's lookup by id allocates
      // nothing (ids of 2^31 and up cost each datagram ~12 ns more, measured).
      const id = randomUint32() >>> 1;
      if (id !== 0 && !this.byId.has(id) && !this.#takenElsewhere(id) && !this.recentlyClosedIds.has(id, now)) return id;
    }
    throw limitReached(`no free connection id after ${CONNECTION_ID_DRAWS} random draws`, ConnectionTable.prototype.newConnectionId);
  }

  /** A new connection; answers the connection it replaces (same peer key), if any, for the caller to abort. */
  add(driver: SessionDriver): SessionDriver | undefined {
    const key = keyOf(driver.remotePublicKey);
    const previous = this.#byKey.get(key);
    this.byId.set(driver.localId, driver);
    this.#byKey.set(key, driver);
    return previous;
  }

  /** A connection ended: its id is recently closed from now on. */
  forget(driver: SessionDriver): void {
    if (this.byId.get(driver.localId) === driver) this.byId.delete(driver.localId);
    const key = keyOf(driver.remotePublicKey);
    if (this.#byKey.get(key) === driver) this.#byKey.delete(key);
    this.recentlyClosedIds.add(driver.localId, performance.now());
  }
}
