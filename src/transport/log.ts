// A transport's warnings and its debug trace.
//  - Warnings: each topic at most once per LOG_INTERVAL_MS, so a flood of one problem (a full accept
//    queue, a failing send) costs one line, not one per datagram.
//  - The trace (handshakes, path changes, losses, closes): to the `debug` option's function, or on
//    Node to util.debuglog("sluice") when NODE_DEBUG names sluice. Off by default, and free when off:
//    the transport holds no trace function at all then, and every trace site is one `!== undefined`.
import { debuglog } from "node:util";

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

/** Where trace lines go (each a message without the "sluice" prefix). */
export type Trace = (message: string) => void;

/** NODE_DEBUG's verdict, asked once (Node reads the variable once, at the first debuglog of a section). */
let nodeDebug: Trace | null | undefined;

/**
 * The trace of a transport: `debug` if given, else util.debuglog("sluice") when NODE_DEBUG names it
 * (on Node; in Deno its node:util would ask for env permission, so Deno uses the option), else none.
 */
export function traceFor(debug: Trace | undefined): Trace | undefined {
  if (debug !== undefined) return debug;
  if (nodeDebug === undefined) {
    const log = (globalThis as { Deno?: unknown }).Deno === undefined ? debuglog("sluice") : undefined;
    nodeDebug = log?.enabled ? (message) => log(message) : null;
  }
  return nodeDebug ?? undefined;
}
