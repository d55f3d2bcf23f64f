// Intro timestamps: how a responder tells a fresh intro from a replayed one (as WireGuard's TAI64N).
// An initiator stamps each intro with the wall clock in microseconds, strictly increasing within the
// process; a responder refuses any intro from a key that is not newer than the newest it accepted from
// that key. A restarted peer is newer than its old self as long as its clock did not step back.

/** The newest timestamp handed out in this process (shared by every transport in it). */
let lastTimestamp = 0;

/** A fresh intro timestamp: µs since the Unix epoch, strictly above the last one. */
export function nextTimestamp(nowMs: number): number {
  lastTimestamp = Math.max(lastTimestamp + 1, Math.floor(nowMs * 1000));
  return lastTimestamp;
}

/**
 * The newest accepted timestamp per initiator key, for keys without a live connection or pending
 * handshake (those keep theirs). Bounded: beyond `maxKeys` the key not heard from longest is forgotten
 * (its old intros could then be replayed, but a replay never completes a handshake: it only costs the
 * bounded, per-IP state of one that times out).
 */
export class NewestTimestamps {
  readonly #newest = new Map<string, number>();
  readonly #maxKeys: number;

  constructor(maxKeys: number) {
    this.#maxKeys = maxKeys;
  }

  get(key: string): number {
    return this.#newest.get(key) ?? -1;
  }

  record(key: string, timestamp: number): void {
    if (timestamp <= this.get(key)) return;
    this.#newest.delete(key);
    this.#newest.set(key, timestamp);
    if (this.#newest.size > this.#maxKeys) this.#newest.delete(this.#newest.keys().next().value!);
  }
}
