// A Sluice node in its own process, driven by the network-namespace tests (test/netns/support/peer.ts)
// through JSON lines: one command a line on stdin, `{ id, cmd, ...arguments }`; one answer a line on
// stdout, `{ id, ok: true, ...result }` or `{ id, ok: false, error }`. Commands run concurrently.
// Lines without an id are events: `{ event: "address", connection, kind, address, previous, at }` for
// each of a connection's address changes (connection.addressChanges(): moved, validated, reverted, direct),
// `{ event: "progress", connection, bytes, at }` while a stream is read, `{ event: "closed", connection,
// code, message, at }` once a connection is over (connection.whenClosed; code and message if it failed).
// Times (`at`) are epoch milliseconds with sub-millisecond precision, comparable across processes.
//
// Only the public API: "sluice" resolves to the built bundle (dist/index.js). Keys travel as hex.
// The process ends when stdin ends, so a test that dies leaves no peer behind.
import { createHash, randomFillSync } from "node:crypto";
import { createInterface } from "node:readline";
import { Transport } from "sluice";

const STREAM_CHUNK_BYTES = 64 * 1024;

const now = () => performance.timeOrigin + performance.now();
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

let transport;
/** Connections by the number this peer gave them (1, 2, ...). */
const connections = new Map();

function register(connection) {
  const number = connections.size + 1;
  connections.set(number, connection);
  void (async () => {
    for await (const { kind, address, previous } of connection.addressChanges()) emit({ event: "address", connection: number, kind, address, previous, at: now() });
  })();
  connection.whenClosed.then(
    () => emit({ event: "closed", connection: number, at: now() }),
    (error) => emit({ event: "closed", connection: number, code: error.code, message: error.message, at: now() }),
  );
  return { connection: number, ...describe(connection) };
}

function describe(connection) {
  return {
    remoteAddress: connection.remoteAddress,
    path: connection.path,
    observedAddress: connection.observedAddress,
    remotePublicKey: hex(connection.remotePublicKey),
  };
}

function connectionOf(number) {
  const connection = connections.get(number);
  if (connection === undefined) throw new Error(`no connection ${number}`);
  return connection;
}

/** Pauses of at least this long between arrivals are listed (the largest one is always kept). */
const PAUSE_MS = 10;
/** At most this many pauses are listed (the first ones). */
const MAX_PAUSES = 100;

/** The gaps between consecutive arrivals: the largest, and every pause of PAUSE_MS or more. */
class Gaps {
  last = undefined;
  largest = { ms: 0, endedAt: 0 };
  pauses = [];
  arrived(at) {
    if (this.last !== undefined) {
      const gap = { ms: at - this.last, endedAt: at };
      if (gap.ms > this.largest.ms) this.largest = gap;
      if (gap.ms >= PAUSE_MS && this.pauses.length < MAX_PAUSES) this.pauses.push(gap);
    }
    this.last = at;
  }
}

const commands = {
  /** options: TransportOptions that JSON can carry (port, gateway, reliability, retry, secretKey as hex...). */
  async bind({ options = {} }) {
    transport = await Transport.bind({ log: null, ...options });
    return { address: transport.address, publicKey: hex(transport.publicKey), secretKey: hex(transport.secretKey) };
  },

  async connect({ to, publicKey, retry }) {
    const startedAt = now();
    const connection = await transport.connect(to, Buffer.from(publicKey, "hex"), retry);
    return { ...register(connection), startedAt, ms: now() - startedAt };
  },

  /** Through the rendezvous of connection `via` (to a gateway): connectVia(). */
  async connectVia({ via, publicKey, retry }) {
    const startedAt = now();
    const connection = await transport.connectVia(connectionOf(via), publicKey, { retry });
    return { ...register(connection), startedAt, ms: now() - startedAt };
  },

  async accept() {
    const connection = await transport.accept();
    if (connection === undefined) throw new Error("the transport closed");
    return { ...register(connection), at: now() };
  },

  /** `count` messages of `bytes` bytes, each starting with its index (big-endian u32). */
  async send({ connection, count, bytes = 64 }) {
    const target = connectionOf(connection);
    const startedAt = now();
    const message = new Uint8Array(Math.max(4, bytes));
    const view = new DataView(message.buffer);
    for (let index = 0; index < count; index++) {
      view.setUint32(0, index);
      await target.send(message);
    }
    return { startedAt, ms: now() - startedAt };
  },

  /** `count` messages; fails unless their indexes are 0, 1, 2... in order. */
  async recv({ connection, count }) {
    const source = connectionOf(connection);
    const gaps = new Gaps();
    let firstAt;
    for (let index = 0; index < count; index++) {
      const message = await source.recv();
      if (message === undefined) throw new Error(`the connection ended after ${index} of ${count} messages`);
      const at = now();
      firstAt ??= at;
      gaps.arrived(at);
      const got = new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(0);
      if (got !== index) throw new Error(`message ${index} carried index ${got}: out of order`);
    }
    return { firstAt, lastAt: gaps.last, largestGap: gaps.largest, pauses: gaps.pauses };
  },

  /** A stream of `bytes` random bytes; answers their SHA-256 once the peer acknowledged the end. */
  async writeStream({ connection, bytes }) {
    const writer = connectionOf(connection).openStream().getWriter();
    const hash = createHash("sha256");
    const startedAt = now();
    for (let written = 0; written < bytes; written += STREAM_CHUNK_BYTES) {
      const chunk = randomFillSync(new Uint8Array(Math.min(STREAM_CHUNK_BYTES, bytes - written)));
      hash.update(chunk);
      await writer.write(chunk);
    }
    await writer.close();
    await connectionOf(connection).flush(); // every byte and the end acknowledged: the transfer's time
    return { sha256: hash.digest("hex"), startedAt, ms: now() - startedAt };
  },

  /** The next incoming stream, read to its end: its SHA-256, and a progress event every `progressBytes`. */
  async readStream({ connection, progressBytes = Infinity }) {
    const stream = await connectionOf(connection).acceptStream();
    if (stream === undefined) throw new Error("the connection ended before a stream arrived");
    const hash = createHash("sha256");
    const gaps = new Gaps();
    let bytes = 0;
    let firstAt;
    let reported = 0;
    for await (const chunk of stream) {
      const at = now();
      firstAt ??= at;
      gaps.arrived(at);
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes - reported >= progressBytes) {
        reported = bytes;
        emit({ event: "progress", connection, bytes, at });
      }
    }
    return { sha256: hash.digest("hex"), bytes, firstAt, lastAt: gaps.last, largestGap: gaps.largest, pauses: gaps.pauses };
  },

  /** The transport's stats and addresses, and the connection's when one is named. */
  async info({ connection }) {
    return {
      address: transport.address,
      externalAddress: transport.externalAddress,
      stats: transport.stats(),
      ...(connection === undefined ? {} : { ...describe(connectionOf(connection)), connectionStats: connectionOf(connection).stats() }),
    };
  },

  /** Closes one connection gracefully, or (without a connection) the whole transport. */
  async close({ connection }) {
    if (connection === undefined) await transport?.close();
    else await connectionOf(connection).close();
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return emit({ ok: false, error: `not JSON: ${line}` });
  }
  const { id, cmd, ...args } = request;
  const run = commands[cmd];
  if (run === undefined) return emit({ id, ok: false, error: `unknown command ${cmd}` });
  run(args).then(
    (result) => emit({ id, ok: true, ...result }),
    (error) => emit({ id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The test is gone (or done): leave at once, whatever is still open.
lines.on("close", () => process.exit(0));
