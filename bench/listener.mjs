// The datagram path on loopback. A worker floods 1200-byte datagrams as fast as it can; the main
// thread receives. Each receiver's rate is datagrams handled / (last − first arrival); what the
// kernel drops while the receiver is saturated is not counted, for any contender.
//  - raw: a node:dgram socket whose handler only counts (the ceiling).
//  - routed: Sluice's listener classifies each datagram in wasm and routes it to a connection's
//    queue (no consumer work: the queue is sized to hold the whole run).
//  - opened: a peer on another thread streams to a gateway here: datagrams received, opened
//    (ChaCha20-Poly1305 in wasm), reassembled and read on this thread.
//  - messages: reliable 1100-byte messages through the whole stack: sent by a peer in this process
//    (sealed, congestion controlled), received, opened (replay window, AES-128-GCM), acknowledged,
//    and handed to recv(). Not a flood: the sender shares this thread and is paced by the receiver.
import { createSocket } from "node:dgram";
import { Worker } from "node:worker_threads";
import { Transport } from "../dist/index.js";

export const FLOOD_DATAGRAMS = Number(process.env.FLOOD ?? 60_000);
const IDLE_MS = 150;

export async function startFlooder() {
  const worker = new Worker(new URL("./workers/udp-flooder.mjs", import.meta.url));
  await new Promise((resolve) => worker.once("message", resolve));
  return worker;
}

function flood(flooder, port, packets, count) {
  return new Promise((resolve) => {
    flooder.once("message", resolve);
    flooder.postMessage({ port, packets, count });
  });
}

/** Resolves with { handled, seconds } once `handled()` stops growing for IDLE_MS after the flood. */
async function settle(clock, handled, flooding) {
  await flooding;
  let last = -1;
  while (handled() !== last) {
    last = handled();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  }
  return handled() / ((clock.last - clock.first) / 1000);
}

const FLOOD_BYTES = 1200;
const FLOOD_FILL = 7;

function payloads(count, make) {
  return Array.from({ length: count }, (_, i) => make(i));
}

export async function rawRate(flooder) {
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const clock = { first: 0, last: 0 };
  let count = 0;
  socket.on("message", () => {
    const now = performance.now();
    if (count++ === 0) clock.first = now;
    clock.last = now;
  });
  const packets = payloads(256, () => new Uint8Array(FLOOD_BYTES).fill(FLOOD_FILL));
  const rate = await settle(clock, () => count, flood(flooder, socket.address().port, packets, FLOOD_DATAGRAMS));
  socket.close();
  return rate;
}

/** A gateway and one joiner connected to it. */
async function pair(options = {}) {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, maxConnections: 2, maxHandshakes: 2, ...options });
  const joiner = await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 2, maxHandshakes: 2 });
  const [toGateway, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  return { gateway, joiner, toGateway, atGateway };
}

export async function routedRate(flooder) {
  const { gateway, joiner, atGateway } = await pair({ inboundQueuePackets: 4096 });
  // 256 distinct packets, cycled, as for the raw receiver (the bypass does not check packet numbers).
  const packets = payloads(256, (i) => {
    const datagram = new Uint8Array(FLOOD_BYTES).fill(FLOOD_FILL);
    datagram[0] = 0x02;
    new DataView(datagram.buffer).setUint32(1, atGateway.localId, true);
    new DataView(datagram.buffer).setUint32(5, i, true);
    new DataView(datagram.buffer).setUint32(9, 0, true); // packet number < 2^32
    return datagram;
  });
  // The consumer counts and times the flood's datagrams only: a late packet of the pair's own (a
  // handshake confirm, an ACK) must not start the clock early (seen: a run measured at half its rate).
  const clock = { first: 0, last: 0 };
  let drained = 0;
  atGateway.bypassForBenchmark((bytes, at, length) => {
    if (length !== FLOOD_BYTES || bytes[at + FLOOD_BYTES - 1] !== FLOOD_FILL) return;
    const now = performance.now();
    if (drained++ === 0) clock.first = now;
    clock.last = now;
  });
  const rate = await settle(clock, () => drained, flood(flooder, gateway.address.port, packets, FLOOD_DATAGRAMS));
  await Promise.all([gateway.close(), joiner.close()]);
  return rate;
}

export async function messageRate() {
  const { gateway, joiner, toGateway, atGateway } = await pair();
  const message = new Uint8Array(1100).fill(9);
  const started = performance.now();
  const sending = (async () => {
    for (let i = 0; i < FLOOD_DATAGRAMS; i++) await toGateway.send(message);
  })();
  for (let i = 0; i < FLOOD_DATAGRAMS; i++) await atGateway.recv();
  const rate = FLOOD_DATAGRAMS / ((performance.now() - started) / 1000);
  await sending;
  await Promise.all([gateway.close(), joiner.close()]);
  return rate;
}

/**
 * The receive path with decryption: a peer on another thread streams `bytes` to a gateway here;
 * answers the datagrams/s this thread received, opened (ChaCha20-Poly1305), reassembled and read.
 */
export async function openedRate(sender, bytes) {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, maxConnections: 2, maxHandshakes: 2 });
  const done = new Promise((resolve) => sender.once("message", resolve));
  sender.postMessage({ address: gateway.address, publicKey: gateway.publicKey, bytes });
  const connection = await gateway.accept();
  const reader = (await connection.acceptStream()).getReader();
  const before = gateway.stats().datagramsReceived;
  const started = performance.now();
  for (let read = await reader.read(); !read.done; read = await reader.read());
  const rate = (gateway.stats().datagramsReceived - before) / ((performance.now() - started) / 1000);
  await done;
  await gateway.close();
  return rate;
}

export async function startStreamSender() {
  const worker = new Worker(new URL("./workers/stream-sender.mjs", import.meta.url));
  await new Promise((resolve) => worker.once("message", resolve));
  return worker;
}

/** Handshake times (ms) on loopback: fresh joiners (the gateway allows one intro per address per second). */
export async function handshakeTimes(count) {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, acceptRamp: [], log: null, maxConnections: count + 1, inboundQueuePackets: 16 });
  const joiners = [];
  for (let i = 0; i < count; i++) joiners.push(await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 1, maxHandshakes: 1, inboundQueuePackets: 16 }));
  const times = [];
  for (const joiner of joiners) {
    const started = performance.now();
    await joiner.connect(gateway.address, gateway.publicKey);
    times.push(performance.now() - started);
    await gateway.accept();
  }
  await Promise.all([gateway.close(), ...joiners.map((j) => j.close())]);
  return times;
}

/** Round trips (ms) of a 90-byte datagram between two raw dgram sockets: the floor under a handshake. */
export async function rawRoundTrips(count) {
  const a = createSocket("udp4");
  const b = createSocket("udp4");
  await Promise.all([a, b].map((s) => new Promise((resolve) => s.bind(0, "127.0.0.1", resolve))));
  b.on("message", (m, r) => b.send(m, r.port, r.address));
  const times = [];
  const ping = new Uint8Array(90);
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise((resolve) => {
      a.once("message", resolve);
      a.send(ping, b.address().port, "127.0.0.1");
    });
    times.push(performance.now() - started);
  }
  a.close();
  b.close();
  return times;
}
