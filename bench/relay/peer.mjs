// One peer of the relay benchmark (bench/relay.mjs forks two), in a process of its own. Its socket
// stands behind a "firewall" as in test/ladder.test.ts: while closed, it lets in only what comes from
// the gateway's port, so an introduction finds no direct path and runs over the gateway's relay;
// `lift` opens it, and the connection's probes move it to the direct path.
//
// The same socket also carries the raw forwarding baseline (`blast` / `countBlast`): datagrams shaped
// as the relay's ([RELAY][version][relay id][1200 B]), sent from this peer's own socket to its relay id,
// so that the gateway forwards them through the very code path relayed traffic takes, to the other
// peer's socket, which counts and swallows them (they never reach its transport). The first byte
// after the relay header, BLAST_MARK, tells them apart from Sluice's (no Sluice kind has that value).
// The blast is credit-paced as bench/peers/dgram.mjs's is: at most WINDOW datagrams ahead of a
// cumulative count that the receiver sends back, through the relay too, every CREDIT_EVERY datagrams.
import { createCipheriv, createHash } from "node:crypto";
import { bindTransport, openNodeSocket, relayHeader } from "sluice/internal";
import { FIXED_DATAGRAMS } from "../lib/pair.mjs";
import { serve } from "../lib/rpc.mjs";

const HOST = "127.0.0.1";
const KIND_RELAY = 0x05;
const RELAY_HEADER_BYTES = 6;
const BLAST_MARK = 0xee;
const BLAST_DATA = 0;
const BLAST_CREDIT = 1;
/** The inner datagram of a relayed Sluice packet is at most this (no path MTU discovery over a relay): so is the blast's. */
const BLAST_DATAGRAM_BYTES = 1200;
const WINDOW = 512;
const CREDIT_EVERY = 32;
const STALL_MS = 50;
const WRITE_BYTES = 64 * 1024;
const REQUEST_BYTES = 1024;

const wall = { closed: true, open: 0 };
let gateway;
let node;
let toGateway;
let connection;
let socket;
/** Address changes of the current connection, with when each arrived. */
let changes = [];
let changed = () => {};
/** Streams the current connection received: { received, sha256, lastWall }, in order, and their waiters. */
const streamed = [];
let streamWaiter;
/** The blast's two ends: the sender's credit, the receiver's count. */
const blast = { credited: 0, onCredit: () => {}, count: 0, bytes: 0, lastAt: 0, lastWall: 0, onDatagram: () => {}, counted: undefined };

const now = () => performance.now();
const wallNow = () => performance.timeOrigin + performance.now();
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
/** Deterministic pseudo-random content (AES-128-CTR keystream), as bench/peers/child.mjs's. */
const content = (bytes) => createCipheriv("aes-128-ctr", Buffer.alloc(16, 0x5a), Buffer.alloc(16)).update(Buffer.alloc(bytes));

function firewalled(options) {
  return openNodeSocket({
    ...options,
    onDatagram: (datagram, host, port) => {
      if (datagram[0] === KIND_RELAY && datagram.length > RELAY_HEADER_BYTES + 1 && datagram[RELAY_HEADER_BYTES] === BLAST_MARK) {
        if (datagram[RELAY_HEADER_BYTES + 1] === BLAST_CREDIT) blast.onCredit(new DataView(datagram.buffer, datagram.byteOffset, datagram.length).getUint32(RELAY_HEADER_BYTES + 2, true));
        else blast.onDatagram(datagram.length - RELAY_HEADER_BYTES);
        return;
      }
      if (wall.closed && port !== wall.open) return;
      options.onDatagram(datagram, host, port);
    },
  }).then((opened) => (socket = opened));
}

/** Sends `body` through the relay this side sends with (its connection's remote address carries its id). */
function sendThroughRelay(header, body) {
  socket.send([header, body], gateway.address.host, gateway.address.port);
}

function watch(current) {
  changes = [];
  (async () => {
    for await (const change of current.addressChanges()) {
      changes.push({ kind: change.kind, at: now() });
      changed();
    }
  })().catch(() => {});
}

/** The receiving side: every stream is hashed as it arrives; every message is echoed. */
function serveConnection(current) {
  (async () => {
    for (let stream = await current.acceptStream(); stream !== undefined; stream = await current.acceptStream()) {
      const hash = createHash("sha256");
      let received = 0;
      let lastWall = 0;
      const reader = stream.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        hash.update(read.value);
        received += read.value.length;
        lastWall = wallNow();
      }
      streamed.push({ received, sha256: hash.digest("hex"), lastWall });
      streamWaiter?.();
    }
  })().catch(() => {});
  (async () => {
    for await (const message of current) await current.send(message);
  })().catch(() => {});
}

const directAndValidated = (change) => change.kind === "direct" || change.kind === "validated";

serve({
  /** A fresh transport behind a closed firewall, connected to the gateway (the previous one closed). */
  async node({ gateway: at }) {
    gateway = { address: at.address, publicKey: Uint8Array.from(Buffer.from(at.publicKey, "hex")) };
    if (node !== undefined) await node.close();
    connection = undefined;
    wall.closed = true;
    wall.open = gateway.address.port;
    // A relayed path stays at 1200-byte datagrams; the direct one it is compared with does too.
    node = await bindTransport({ host: HOST, log: null, socket: firewalled, reliability: FIXED_DATAGRAMS });
    toGateway = await node.connect(gateway.address, gateway.publicKey);
    return { publicKey: Buffer.from(node.publicKey).toString("hex") };
  },

  /** Connects to the peer through the gateway's introduction; answers the path it got. */
  async dial({ peer }) {
    connection = await node.connectVia(toGateway, Uint8Array.from(Buffer.from(peer, "hex")));
    watch(connection);
    return { path: connection.path };
  },

  async accept() {
    connection = await node.accept();
    watch(connection);
    serveConnection(connection);
    return { path: connection.path };
  },

  /** Opens the firewall; answers how long the connection then took to run direct, validated (ms). */
  async lift() {
    const opened = now();
    wall.closed = false;
    // 10 × the probe interval: a move that has not come by then is not coming (seen twice in ~200
    // samples while developing; the error says where the connection stood, rather than a 600 s wait).
    const giveUp = setTimeout(() => changed?.(), 10_000);
    while (!changes.some((change) => change.at >= opened && directAndValidated(change))) {
      if (now() - opened >= 10_000) {
        throw new Error(`no move to a direct path within 10 s of lifting the firewall: path ${connection.path}, state ${connection.closed ? "closed" : "open"}, changes ${JSON.stringify(changes.map((c) => [c.kind, Math.round(c.at - opened)]))}`);
      }
      await new Promise((resolve) => (changed = resolve));
    }
    clearTimeout(giveUp);
    const change = changes.find((c) => c.at >= opened && directAndValidated(c));
    return { ms: change.at - opened, path: connection.path, kinds: changes.map((c) => c.kind) };
  },

  cpu() {
    const { user, system } = process.cpuUsage();
    return user + system;
  },

  /** The connection's loss and acknowledgement counters, and its drops. */
  delivery() {
    const { delivery, drops } = connection.stats();
    const { packetsSent, packetsLost, ackOnlyPackets, retransmissionTimeouts, congestionWindowBytes, rttMs, minRttMs } = delivery;
    return { packetsSent, packetsLost, ackOnlyPackets, retransmissionTimeouts, congestionWindowBytes, rttMs, minRttMs, drops };
  },

  /** Opens the firewall, and answers at once. */
  open() {
    wall.closed = false;
  },

  /** Resolves once the connection runs direct, validated. */
  async direct() {
    while (!(connection.path === "direct" && changes.some(directAndValidated))) await new Promise((resolve) => (changed = resolve));
    return { path: connection.path };
  },

  /** Writes `bytes` on a stream, 64 KiB at a time, until the peer acknowledged all of it. */
  async stream({ bytes }) {
    const data = content(bytes);
    const startWall = wallNow();
    const writer = connection.openStream().getWriter();
    for (let at = 0; at < bytes; at += WRITE_BYTES) await writer.write(data.subarray(at, Math.min(bytes, at + WRITE_BYTES)));
    await writer.close();
    await connection.flush();
    return { startWall, sha256: sha256(data) };
  },

  async streamed() {
    while (streamed.length === 0) await new Promise((resolve) => (streamWaiter = resolve));
    return streamed.shift();
  },

  /** `warmup` then `count` sequential 1 KiB requests, each answered by its echo: the timed ones, in µs. */
  async rtt({ count, warmup }) {
    const request = new Uint8Array(REQUEST_BYTES).fill(1);
    const micros = [];
    for (let i = 0; i < warmup + count; i++) {
      const started = now();
      await connection.send(request);
      await connection.recv();
      if (i >= warmup) micros.push((now() - started) * 1000);
    }
    return { micros, path: connection.path };
  },

  /** The raw blast's sender: `bytes` in 1200-byte datagrams through this side's relay id, credit-paced. */
  async blast({ bytes }) {
    const header = relayHeader(connection.remoteAddress.relay);
    const body = Buffer.alloc(BLAST_DATAGRAM_BYTES, 0x42);
    body[0] = BLAST_MARK;
    body[1] = BLAST_DATA;
    const total = Math.ceil(bytes / BLAST_DATAGRAM_BYTES);
    let sent = 0;
    let lost = 0;
    blast.credited = 0;
    const startWall = wallNow();
    while (sent < total) {
      while (sent < total && sent - blast.credited < WINDOW) {
        sendThroughRelay(header, body);
        sent++;
      }
      if (sent === total) break;
      // Credit, or after STALL_MS without any, what is outstanding counts as lost and the blast goes on.
      const credited = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), STALL_MS);
        blast.onCredit = (count) => {
          if (count <= blast.credited) return;
          blast.credited = count;
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!credited) {
        lost += sent - blast.credited;
        blast.credited = sent;
      }
    }
    blast.onCredit = () => {};
    return { startWall, sent, lostAtSender: lost };
  },

  /** The raw blast's receiver, made ready: counts until `bytes` arrived, or 4 × STALL_MS after the last datagram. */
  expectBlast({ bytes }) {
    const header = relayHeader(connection.remoteAddress.relay);
    const credit = Buffer.alloc(6);
    credit[0] = BLAST_MARK;
    credit[1] = BLAST_CREDIT;
    Object.assign(blast, { count: 0, bytes: 0, lastAt: 0, lastWall: 0 });
    blast.counted = new Promise((resolve) => {
      const end = () => {
        clearInterval(watchdog);
        blast.onDatagram = () => {};
        resolve({ received: blast.bytes, datagrams: blast.count, lastWall: blast.lastWall });
      };
      // One watchdog, not a timer per datagram (that would add to what is measured).
      const watchdog = setInterval(() => blast.count > 0 && now() - blast.lastAt > STALL_MS * 4 && end(), STALL_MS);
      blast.onDatagram = (length) => {
        blast.count++;
        blast.bytes += length;
        blast.lastAt = now();
        blast.lastWall = performance.timeOrigin + blast.lastAt;
        if (blast.count % CREDIT_EVERY === 0) {
          credit.writeUInt32LE(blast.count, 2);
          sendThroughRelay(header, Buffer.from(credit));
        }
        if (blast.bytes >= bytes) end();
      };
    });
  },

  /** What the blast's receiver counted: { received, datagrams, lastWall }. */
  blastCounted() {
    return blast.counted;
  },

  async close() {
    await node?.close();
    setImmediate(() => process.exit(0));
  },
});
