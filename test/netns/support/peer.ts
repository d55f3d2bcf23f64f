// The test's side of test/netns/peer.mjs: a Sluice node in its own process inside a network
// namespace, driven by JSON lines. Every call and every wait for an event has a time bound, and
// a peer that dies fails what is pending with its exit status and its stderr.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import type { Address, ConnectionStats, RetryOptions, TransportOptions, TransportStats } from "sluice";

const PEER_SCRIPT = new URL("../peer.mjs", import.meta.url).pathname;
/** Bound on a call that does no bulk transfer (bind, connect, info, close...). */
const CALL_TIMEOUT_MS = 10_000;
/** The tail of a peer's stderr kept for error messages. */
const STDERR_KEPT_CHARS = 4000;

/** What JSON carries of TransportOptions (no functions; a secret key as hex, to restart a node as itself). */
export type PeerOptions = Pick<TransportOptions, "host" | "port" | "gateway" | "reliability" | "retry" | "acceptRamp" | "relay"> & { secretKey?: string };

interface Opened {
  /** This peer's number for the connection. */
  connection: number;
  remoteAddress: Address;
  /** Direct, or relayed through a gateway (connection.path). */
  path: "direct" | "relayed";
  /** Our address as the peer saw it (initiator side only). */
  observedAddress?: Address;
  remotePublicKey: string;
}

interface Accepted extends Opened {
  /** When accept() resolved, epoch ms. */
  at: number;
}

interface Connected extends Opened {
  /** When connect() was called, epoch ms. */
  startedAt: number;
  /** How long connect() took. */
  ms: number;
}

interface Gap {
  ms: number;
  /** When the arrival that ended the gap came, epoch ms (0 if nothing arrived twice). */
  endedAt: number;
}

interface Received {
  firstAt: number;
  lastAt: number;
  largestGap: Gap;
  /** Every gap of 10 ms or more, in order (the first 100). */
  pauses: Gap[];
}

export interface StreamRead extends Received {
  sha256: string;
  bytes: number;
}

export interface StreamWritten {
  sha256: string;
  startedAt: number;
  ms: number;
}

interface Info {
  address: Address;
  externalAddress?: Address;
  stats: TransportStats;
  /** The named connection's, if one was named. */
  connectionStats?: ConnectionStats;
  remoteAddress?: Address;
  path?: "direct" | "relayed";
  observedAddress?: Address;
}

interface PeerEvent {
  event: "address" | "progress" | "closed";
  connection: number;
  at: number;
  /** An address change's (connection.addressChanges()). */
  kind?: "moved" | "validated" | "reverted" | "direct";
  address?: Address;
  previous?: Address;
  bytes?: number;
  /** A failed connection's error (a "closed" event; none after a clean close). */
  code?: string;
  message?: string;
}

interface Pending {
  resolve(value: Record<string, unknown>): void;
  reject(error: Error): void;
}

interface EventWaiter {
  matches(event: PeerEvent): boolean;
  resolve(event: PeerEvent): void;
}

export class Peer {
  readonly name: string;
  /** Set by bind(). */
  publicKey = "";
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, Pending>();
  readonly #events: PeerEvent[] = [];
  readonly #eventWaiters = new Set<EventWaiter>();
  #nextId = 1;
  #stderr = "";
  #exit: string | undefined;

  /** @internal Bed.peer() starts peers, so the bed can always stop them. */
  constructor(namespace: string, name: string) {
    this.name = name;
    this.#child = spawn("ip", ["netns", "exec", namespace, process.execPath, PEER_SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stderr.on("data", (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-STDERR_KEPT_CHARS)));
    this.#child.stdin.on("error", () => {}); // a dead peer: its pending calls fail through 'exit'
    createInterface({ input: this.#child.stdout }).on("line", (line) => this.#line(line));
    this.#child.on("exit", (code, signal) => {
      this.#exit = signal ?? `exit ${code}`;
      const error = new Error(`peer ${name} ended (${this.#exit}): ${this.#stderr.trim() || "no stderr"}`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    });
  }

  /** Sends one command; rejects with the peer's error, or after `timeoutMs`. */
  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    if (this.#exit !== undefined) return Promise.reject(new Error(`peer ${this.name} has ended (${this.#exit}): ${this.#stderr.trim()}`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`peer ${this.name}: ${cmd} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  /** Binds its transport; answers its address and keys (hex). */
  async bind(options: PeerOptions = {}): Promise<{ address: Address; publicKey: string; secretKey: string }> {
    const bound = await this.call<{ address: Address; publicKey: string; secretKey: string }>("bind", { options });
    this.publicKey = bound.publicKey;
    return bound;
  }

  connect(to: Address, publicKey: string, retry?: RetryOptions): Promise<Connected> {
    return this.call("connect", { to, publicKey, retry });
  }

  /** connectVia() through this peer's connection `via` (to a gateway), to the holder of `publicKey` (hex). */
  connectVia(via: number, publicKey: string, retry?: RetryOptions): Promise<Connected> {
    return this.call("connectVia", { via, publicKey, retry });
  }

  accept(timeoutMs?: number): Promise<Accepted> {
    return this.call("accept", {}, timeoutMs);
  }

  info(connection?: number): Promise<Info> {
    return this.call("info", { connection });
  }

  /** `count` messages of `bytes` bytes, each carrying its index. */
  send(connection: number, count: number, bytes: number, timeoutMs?: number): Promise<{ startedAt: number; ms: number }> {
    return this.call("send", { connection, count, bytes }, timeoutMs);
  }

  /** `count` messages, checked to arrive in order (the peer fails the call otherwise). */
  recv(connection: number, count: number, timeoutMs?: number): Promise<Received> {
    return this.call("recv", { connection, count }, timeoutMs);
  }

  writeStream(connection: number, bytes: number, timeoutMs?: number): Promise<StreamWritten> {
    return this.call("writeStream", { connection, bytes }, timeoutMs);
  }

  /** Reads the next incoming stream to its end; a `progress` event every `progressBytes`. */
  readStream(connection: number, timeoutMs?: number, progressBytes?: number): Promise<StreamRead> {
    return this.call("readStream", { connection, progressBytes }, timeoutMs);
  }

  close(connection?: number): Promise<void> {
    return this.call("close", { connection });
  }

  /** Every event so far (for failure messages). */
  events(): readonly PeerEvent[] {
    return this.#events;
  }

  /** The first event (already received or to come) that `matches`; rejects after `timeoutMs`. */
  event(matches: (event: PeerEvent) => boolean, timeoutMs: number, what: string): Promise<PeerEvent> {
    const seen = this.#events.find(matches);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: EventWaiter = {
        matches,
        resolve: (event) => {
          clearTimeout(timer);
          this.#eventWaiters.delete(waiter);
          resolve(event);
        },
      };
      const timer = setTimeout(() => {
        this.#eventWaiters.delete(waiter);
        reject(new Error(`peer ${this.name}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#eventWaiters.add(waiter);
    });
  }

  /** Stops the process now (exit handlers: SIGKILL, as a peer holds nothing worth a graceful end). */
  kill(): void {
    if (this.#exit === undefined) this.#child.kill("SIGKILL");
  }

  /** Kills the process (SIGKILL: a crash, nothing said to its peers) and waits until it is gone. */
  async crash(): Promise<void> {
    if (this.#exit !== undefined) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.kill();
    await exited;
  }

  /** Ends the peer: its stdin closes (it exits at once), and it is killed if still alive after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.#exit !== undefined) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.stdin.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }

  #line(line: string): void {
    let message: { id?: number; ok?: boolean; error?: string; event?: PeerEvent["event"] };
    try {
      message = JSON.parse(line);
    } catch {
      this.#stderr = `${this.#stderr}\n(stdout) ${line}`.slice(-STDERR_KEPT_CHARS);
      return;
    }
    if (message.event !== undefined) {
      const event = message as PeerEvent;
      this.#events.push(event);
      for (const waiter of this.#eventWaiters) if (waiter.matches(event)) waiter.resolve(event);
      return;
    }
    const pending = message.id === undefined ? undefined : this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id!);
    if (message.ok === true) pending.resolve(message);
    else pending.reject(new Error(`peer ${this.name}: ${message.error}`));
  }
}
