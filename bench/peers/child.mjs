// One end of a separate-process benchmark (bench/peers.mjs forks two of these per measurement): the
// listener or the dialer of one contender, running one test. The parent relays "signal" messages
// between the two ends (the out-of-band channel: a udx stream id, WebRTC offers and candidates, and
// the test's own sync points) and collects one "result" from each end.
//
// Tests, per connection the dialer makes (each preceded by an "expect" rendezvous, outside any timing):
//  - stream: the dialer writes `bytes` in 64 KiB writes; the listener hashes what arrives (SHA-256).
//    Wall time runs from the dialer's first write to the listener's last byte; CPU is each process's
//    own (process.cpuUsage) from its first write or first byte until the listener has everything.
//    A warm-up connection of `warmupBytes` comes first, unmeasured.
//  - rtt: `warmup` then `count` sequential 1 KiB requests, each answered by an echo of the same size.
//  - connect: `warmup` + `samples` fresh dialers (a new socket each, bound before the clock starts);
//    each sample times dial → first 1 KiB echo.
import { createCipheriv, createHash } from "node:crypto";
import { contender } from "./contenders.mjs";

const WRITE_BYTES = 64 * 1024;
const REQUEST_BYTES = 1024;

/** Messages from the other end, by kind: next(kind) answers the oldest one not taken yet. */
class Mailbox {
  #queues = new Map();
  #waiters = new Map();
  #handlers = new Map();

  deliver(message) {
    const handler = this.#handlers.get(message.kind);
    if (handler) return handler(message);
    const waiter = this.#waiters.get(message.kind);
    if (waiter) {
      this.#waiters.delete(message.kind);
      return waiter(message);
    }
    if (!this.#queues.has(message.kind)) this.#queues.set(message.kind, []);
    this.#queues.get(message.kind).push(message);
  }

  next(kind) {
    const queued = this.#queues.get(kind)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiters.set(kind, resolve));
  }

  /** Every message of `kind` goes to `handler` from now on (those already queued first). */
  on(kind, handler) {
    this.#handlers.set(kind, handler);
    for (const message of this.#queues.get(kind)?.splice(0) ?? []) handler(message);
  }

  send(message) {
    process.send({ op: "signal", message });
  }
}

const mark = () => ({ wall: performance.timeOrigin + performance.now(), cpu: process.cpuUsage() });
const cpuSince = (start) => {
  const used = process.cpuUsage(start.cpu);
  return (used.user + used.system) / 1e6;
};

/** Deterministic pseudo-random content (AES-128-CTR keystream), so the receiver's SHA-256 checks order and integrity. */
function content(bytes) {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, 0x5a), Buffer.alloc(16));
  return cipher.update(Buffer.alloc(bytes));
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** The dialer's side of one connection: asks the listener to expect it, then dials. */
async function rendezvous(mailbox, dialer) {
  mailbox.send({ kind: "expect" });
  const { info } = await mailbox.next("info");
  return dialer.dial(info, mailbox);
}

const dialerTests = {
  async stream(peer, mailbox, { bytes, warmupBytes }) {
    const data = content(bytes);
    const dialer = await peer.dialer();
    let result;
    for (const size of [warmupBytes, bytes]) {
      const connection = await rendezvous(mailbox, dialer);
      const chunks = [];
      for (let at = 0; at < size; at += WRITE_BYTES) chunks.push(data.subarray(at, Math.min(size, at + WRITE_BYTES)));
      const start = mark();
      await connection.sendStream(chunks);
      await mailbox.next("received");
      result = { startWall: start.wall, cpuSeconds: cpuSince(start), sha256: sha256(data.subarray(0, size)), mtu: connection.mtu?.() };
      await connection.close();
    }
    await dialer.close();
    return result;
  },

  async rtt(peer, mailbox, { count, warmup }) {
    const dialer = await peer.dialer();
    const connection = await rendezvous(mailbox, dialer);
    const request = new Uint8Array(REQUEST_BYTES).fill(1);
    const micros = [];
    for (let i = 0; i < warmup + count; i++) {
      const started = performance.now();
      await connection.request(request);
      if (i >= warmup) micros.push((performance.now() - started) * 1000);
    }
    const mtu = connection.mtu?.();
    await connection.close();
    await dialer.close();
    return { micros, mtu };
  },

  async connect(peer, mailbox, { samples, warmup }) {
    const request = new Uint8Array(REQUEST_BYTES).fill(1);
    const millis = [];
    for (let i = 0; i < warmup + samples; i++) {
      const dialer = await peer.dialer(); // a fresh socket, bound before the clock starts
      mailbox.send({ kind: "expect" });
      const { info } = await mailbox.next("info");
      const started = performance.now();
      const connection = await dialer.dial(info, mailbox);
      await connection.request(request);
      if (i >= warmup) millis.push(performance.now() - started);
      await connection.close();
      await dialer.close();
    }
    return { millis };
  },
};

const listenerTests = {
  async stream(listener, mailbox, { bytes, warmupBytes }) {
    let result;
    for (const size of [warmupBytes, bytes]) {
      await mailbox.next("expect");
      const { info, accepted } = await listener.expect(mailbox);
      mailbox.send({ kind: "info", info });
      const connection = await accepted;
      const hash = createHash("sha256");
      let received = 0;
      let start;
      let lastWall = 0;
      await connection.receiveStream(size, (chunk) => {
        start ??= mark();
        hash.update(chunk);
        received += chunk.length;
        lastWall = performance.timeOrigin + performance.now();
      });
      const digest = hash.digest("hex");
      const cpuSeconds = cpuSince(start);
      mailbox.send({ kind: "received" });
      result = { received, sha256: digest, lastWall, cpuSeconds };
      await connection.close();
    }
    return result;
  },

  async rtt(listener, mailbox) {
    await echoNext(listener, mailbox);
  },

  async connect(listener, mailbox, { samples, warmup }) {
    for (let i = 0; i < warmup + samples; i++) await echoNext(listener, mailbox);
  },
};

/** Expects the next connection and echoes on it (the echo runs until the connection closes). */
async function echoNext(listener, mailbox) {
  await mailbox.next("expect");
  const { info, accepted } = await listener.expect(mailbox);
  mailbox.send({ kind: "info", info });
  (await accepted).echo();
}

const mailbox = new Mailbox();
let stop;
const stopped = new Promise((resolve) => (stop = resolve));
process.on("message", async (message) => {
  if (message.op === "signal") return mailbox.deliver(message.message);
  if (message.op === "stop") return stop();
  if (message.op !== "run") return;
  const { name, role, test, params } = message;
  const peer = await contender(name);
  let result;
  if (role === "dialer") result = await dialerTests[test](peer, mailbox, params);
  else {
    const listener = await peer.listen();
    const running = listenerTests[test](listener, mailbox, params);
    result = await running;
    await stopped; // echoes go on until the parent says the dialer is done
    await listener.close();
  }
  process.send({ op: "result", result: result ?? {} });
  await peer.shutdown?.();
  process.disconnect();
});
process.send({ op: "ready" });
