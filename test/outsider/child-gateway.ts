// The parent's side of children/gateway.mjs: a Sluice gateway in its own process.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { sleep, type EvilSocket } from "./evil-peer.ts";
import type { Address } from "./wire.ts";

const SCRIPT = fileURLToPath(new URL("./children/gateway.mjs", import.meta.url));

export interface Usage {
  cpu: { user: number; system: number };
  memory: NodeJS.MemoryUsage;
  /** Frames taken from the gateway's arena (shared memory outside the JS heap), in bytes. */
  arenaBytesInUse: number;
  datagramsReceived: number;
}

export interface Received {
  connections: number;
  messages: number;
  messageBytes: number;
  streams: number;
  streamBytes: number;
  keys: string[];
}

interface Reply {
  id?: number;
  result?: unknown;
  error?: { name: string; message: string; code?: string };
}

class ChildError extends Error {
  readonly code: string | undefined;
  constructor(error: { name: string; message: string; code?: string }) {
    super(error.message);
    this.name = error.name;
    this.code = error.code;
  }
}

export class ChildGateway {
  readonly #child: ChildProcess;
  readonly #replies = new Map<number, (reply: Reply) => void>();
  #nextId = 1;
  address: Address = { host: "", port: 0 };
  publicKey = new Uint8Array(32);

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (m: Reply) => {
      if (m.id !== undefined) this.#replies.get(m.id)?.(m);
    });
  }

  static async start(): Promise<ChildGateway> {
    const child = fork(SCRIPT, [], { execArgv: ["--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await new Promise((resolve, reject) => {
      child.once("message", resolve);
      child.once("error", reject);
    });
    return new ChildGateway(child);
  }

  request<T>(op: string, args: object = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#replies.set(id, (reply) => {
        this.#replies.delete(id);
        if (reply.error) reject(new ChildError(reply.error));
        else resolve(reply.result as T);
      });
      this.#child.send({ id, op, ...args });
    });
  }

  /** A Sluice gateway in the child (options as Transport.bind's; secretKey as hex). */
  static async bind(options: Record<string, unknown>): Promise<ChildGateway> {
    const child = await ChildGateway.start();
    const { address, publicKey } = await child.request<{ address: Address; publicKey: string }>("bind", { options });
    child.address = address;
    child.publicKey = new Uint8Array(Buffer.from(publicKey, "hex"));
    return child;
  }

  /**
   * A plain node:dgram socket in the child that counts datagrams and, with `replyBytes`, answers
   * each: the floor of any receiver (or responder).
   */
  static async bare(host: string, replyBytes = 0): Promise<ChildGateway> {
    const child = await ChildGateway.start();
    child.address = (await child.request<{ address: Address }>("bare", { host, replyBytes })).address;
    return child;
  }

  usage(gc = false): Promise<Usage> {
    return this.request("usage", { gc });
  }

  /**
   * Waits until the child has received `count` datagrams in all, or its count stood still for
   * 100 ms (the rest were lost), or `timeoutMs` passed; answers the last usage.
   */
  async receivedAtLeast(count: number, timeoutMs = 5000): Promise<Usage> {
    const deadline = performance.now() + timeoutMs;
    let usage = await this.usage();
    let still = 0;
    while (usage.datagramsReceived < count && performance.now() < deadline && still < 5) {
      await new Promise((r) => setTimeout(r, 20));
      const next = await this.usage();
      still = next.datagramsReceived === usage.datagramsReceived ? still + 1 : 0;
      usage = next;
    }
    return usage;
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once("exit", resolve));
    await this.request("close").catch(() => {});
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    if (this.#child.exitCode === null) this.#child.kill();
  }
}

const cpuMicros = (before: Usage, after: Usage) =>
  after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system;

/**
 * CPU µs per datagram the target spent on one batch of `packets` from `sockets`, sent `burst` at a
 * time with a turn of the event loop between (and `pauseMs` more, to keep below a queue's bound).
 */
export async function batchCost(
  target: ChildGateway,
  sockets: EvilSocket[],
  packets: Uint8Array[],
  { burst = 100, pauseMs = 0 } = {},
): Promise<number> {
  await sleep(20);
  const before = await target.usage();
  for (let i = 0; i < packets.length; i++) {
    sockets[i % sockets.length].send(packets[i], target.address);
    if (i % burst === burst - 1) await (pauseMs > 0 ? sleep(pauseMs) : new Promise(setImmediate));
  }
  await sleep(40);
  const after = await target.receivedAtLeast(before.datagramsReceived + packets.length);
  return cpuMicros(before, after) / Math.max(1, after.datagramsReceived - before.datagramsReceived);
}
