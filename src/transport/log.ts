// A transport's warnings: each topic at most once per LOG_INTERVAL_MS, so a flood of one problem
// (a full accept queue, a failing send) costs one line, not one per datagram.

/** A topic is logged at most once per this interval. */
const LOG_INTERVAL_MS = 10_000;

export class Warnings {
  readonly #log: ((message: string) => void) | null;
  readonly #lastLogged = new Map<string, number>();

  /** `log`: where warnings go; null for silence. */
  constructor(log: ((message: string) => void) | null) {
    this.#log = log;
  }

  warn(topic: string, message: string): void {
    if (this.#log === null) return;
    const now = performance.now();
    const last = this.#lastLogged.get(topic);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    this.#lastLogged.set(topic, now);
    this.#log(`sluice: ${message}`);
  }
}
