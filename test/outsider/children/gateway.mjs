// A Sluice gateway in a process of its own, so an attack test can read the gateway's CPU and memory
// without counting its own. Driven over IPC: { id, op, ...args } → { id, result } | { id, error }.
//   node --expose-gc gateway.mjs
// ops: bind {options} (secretKey as hex) · bare {host, replyBytes} (a plain dgram socket that
// counts, and answers each datagram with replyBytes zero bytes if asked: the floor any receiver,
// or any responder, pays per datagram) · usage {gc} · stats · connect {address, publicKey} ·
// received · close.
import { createSocket } from "node:dgram";
import { Arena, Transport } from "sluice";

let gateway;
let bare;
let bareDatagrams = 0;
const received = { connections: 0, messages: 0, messageBytes: 0, streams: 0, streamBytes: 0, keys: [] };
const hex = (bytes) => Buffer.from(bytes).toString("hex");

async function drainMessages(connection) {
  for (let m = await connection.recv(); m !== undefined; m = await connection.recv()) {
    received.messages++;
    received.messageBytes += m.byteLength;
  }
}

async function drainStreams(connection) {
  for (let s = await connection.acceptStream(); s !== undefined; s = await connection.acceptStream()) {
    received.streams++;
    s.pipeTo(new WritableStream({ write: (chunk) => void (received.streamBytes += chunk.byteLength) })).catch(() => {});
  }
}

async function acceptLoop() {
  for (let c = await gateway.accept(); c !== undefined; c = await gateway.accept()) {
    received.connections++;
    received.keys.push(hex(c.remotePublicKey));
    drainMessages(c).catch(() => {});
    drainStreams(c).catch(() => {});
  }
}

const ops = {
  async bind({ options }) {
    const { secretKey, ...rest } = options;
    gateway = await Transport.bind({
      log: null,
      ...rest,
      ...(secretKey ? { secretKey: Buffer.from(secretKey, "hex") } : {}),
    });
    acceptLoop().catch(() => {});
    return { address: gateway.address, publicKey: hex(gateway.publicKey) };
  },
  async bare({ host, replyBytes }) {
    bare = createSocket("udp4");
    const reply = replyBytes > 0 ? Buffer.alloc(replyBytes) : undefined;
    bare.on("message", (_, from) => {
      bareDatagrams++;
      if (reply) bare.send(reply, from.port, from.address);
    });
    await new Promise((resolve) => bare.bind(0, host, resolve));
    bare.setRecvBufferSize(4 * 1024 * 1024); // as Sluice's socket
    const a = bare.address();
    return { address: { host: a.address, port: a.port } };
  },
  usage({ gc }) {
    if (gc) {
      globalThis.gc();
      globalThis.gc();
    }
    const stats = gateway?.stats();
    const arena = Arena.threadDefault().stats();
    return {
      cpu: process.cpuUsage(),
      memory: process.memoryUsage(),
      arenaBytesInUse: (arena.frames - arena.freeFrames) * arena.frameBytes,
      datagramsReceived: bare ? bareDatagrams : stats.datagramsReceived,
    };
  },
  stats() {
    return gateway.stats();
  },
  async connect({ address, publicKey }) {
    const started = performance.now();
    const c = await gateway.connect(address, Buffer.from(publicKey, "hex"));
    return { ms: performance.now() - started, remotePublicKey: hex(c.remotePublicKey) };
  },
  received() {
    return received;
  },
  async close() {
    await gateway?.close();
    bare?.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on("message", async ({ id, op, ...args }) => {
  try {
    process.send({ id, result: await ops[op](args) });
  } catch (error) {
    process.send({ id, error: { name: error?.name, message: String(error?.message ?? error), code: error?.code } });
  }
});
process.send({ ready: true });
