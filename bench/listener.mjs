// The datagram path on loopback. A worker floods 1200-byte datagrams as fast as it can; the main
// thread receives. Each receiver's rate is datagrams handled / (last − first arrival); what the
// kernel drops while the receiver is saturated is not counted, for any contender.
//  - raw: a node:dgram socket whose handler only counts (the ceiling).
//  - routed: Sluice's listener classifies each datagram in wasm and routes it to a connection's
//    queue; the queue's consumer counts it (no decryption, no frames).
//  - sealed: the flood is data packets sealed for a live connection (each packet number once); the
//    consumer also opens them (replay window, ChaCha20-Poly1305, plaintext copied out), frames not read.
//  - stream: a peer on another thread streams to a gateway here: datagrams received, opened,
//    reassembled and read on this thread (the whole receive path; the sender's sealing and
//    congestion control pace it, so it is not a flood).
//  - messages: reliable 1100-byte messages through the whole stack: sent by a peer in this process
//    (sealed, congestion controlled), received, opened, acknowledged, and handed to recv(). Not a
//    flood: the sender shares this thread and is paced by the receiver.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
import { loopbackHost } from "./lib/hosts.mjs";
import { Worker } from "node:worker_threads";
import { Transport } from "sluice";
import { bypassForBenchmark, sealForBenchmark } from "sluice/internal";
import { connectedPair } from "./lib/pair.mjs";

/** Datagrams per flood: enough that a GC pause or a scheduling hiccup is a small part of the run. */
const FLOOD_DATAGRAMS = 200_000;
const MESSAGES = 60_000;
const IDLE_MS = 150;
const FLOOD_BYTES = 1200;
const FLOOD_FILL = 7;
/** A sealed flood packet's plaintext: the datagram less its 13-byte header and 16-byte tag. */
const FLOOD_PLAINTEXT_BYTES = FLOOD_BYTES - 13 - 16;
/** Distinct packets a raw or routed flood cycles through (a sealed flood sends each packet once). */
const CYCLED = 256;

export async function startFlooder() {
  const worker = new Worker(new URL("./workers/udp-flooder.mjs", import.meta.url));
  await new Promise((resolve) => worker.once("message", resolve));
  return worker;
}

/** Sends `packets` (equal-sized, back to back; `distinct` of them, cycled) to `port`; the buffer moves to the flooder. */
function flood(flooder, port, packets, distinct) {
  return new Promise((resolve) => {
    flooder.once("message", resolve);
    flooder.postMessage({ port, packets, stride: packets.length / distinct, distinct, count: FLOOD_DATAGRAMS }, [packets.buffer]);
  });
}

/** The receiver's rate once `handled()` stops growing for IDLE_MS after the flood. */
async function settle(clock, handled, flooding) {
  await flooding;
  let last = -1;
  while (handled() !== last) {
    last = handled();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  }
  return handled() / ((clock.last - clock.first) / 1000);
}

/** A clock and counter for the flood's datagrams, as a consumer sees them. */
function counter() {
  const clock = { first: 0, last: 0 };
  let count = 0;
  return {
    clock,
    count: () => count,
    tick() {
      const now = performance.now();
      if (count++ === 0) clock.first = now;
      clock.last = now;
    },
  };
}

export async function rawRate(flooder) {
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const seen = counter();
  socket.on("message", seen.tick);
  const rate = await settle(seen.clock, seen.count, flood(flooder, socket.address().port, new Uint8Array(FLOOD_BYTES * CYCLED).fill(FLOOD_FILL), CYCLED));
  socket.close();
  return rate;
}

/**
 * Floods the gateway of a fresh pair with `makePackets(pair)` and answers the rate at which its
 * connection's consumer sees them. The consumer counts and times only the flood's datagrams: a
 * late packet of the pair's own (a handshake confirm, an ACK) must not start the clock early (seen:
 * a run measured at half its rate).
 */
async function floodedPairRate(flooder, { opened, makePackets, distinct }) {
  const connected = await connectedPair({ inboundQueuePackets: 4096 });
  const seen = counter();
  const floodLength = opened ? FLOOD_PLAINTEXT_BYTES : FLOOD_BYTES;
  bypassForBenchmark(connected.atGateway, (bytes, at, length) => {
    if (length === floodLength && bytes[at + length - 1] === FLOOD_FILL) seen.tick();
  }, { opened });
  const rate = await settle(seen.clock, seen.count, flood(flooder, connected.gateway.address.port, makePackets(connected), distinct));
  await connected.close();
  return rate;
}

export function routedRate(flooder) {
  // CYCLED distinct packets, as for the raw receiver (the unopened bypass does not check packet numbers).
  const makePackets = ({ atGateway }) => addressFlood(new Uint8Array(FLOOD_BYTES * CYCLED).fill(FLOOD_FILL), atGateway.stats().id);
  return floodedPairRate(flooder, { opened: false, makePackets, distinct: CYCLED });
}

/** Makes the CYCLED flood packets data packets for connection `id` (packet numbers 0..CYCLED − 1). */
function addressFlood(packets, id) {
  const view = new DataView(packets.buffer);
  for (let i = 0; i < CYCLED; i++) {
    const at = i * FLOOD_BYTES;
    packets[at] = 0x02;
    view.setUint32(at + 1, id, true);
    view.setUint32(at + 5, i, true);
    view.setUint32(at + 9, 0, true); // packet number < 2^32
  }
  return packets;
}

export function sealedRate(flooder) {
  const plaintext = new Uint8Array(FLOOD_PLAINTEXT_BYTES).fill(FLOOD_FILL);
  const makePackets = ({ toGateway }) => sealForBenchmark(toGateway, plaintext, FLOOD_DATAGRAMS);
  return floodedPairRate(flooder, { opened: true, makePackets, distinct: FLOOD_DATAGRAMS });
}

/**
 * The same floods at a receiver in Deno (bench/deno/listener.ts, a child process): `mode` "raw" or
 * "routed", over Deno.listenDatagram (`unstableNet`) or Deno's node:dgram. Answers { socket, rate }.
 */
export async function denoRate(flooder, mode, unstableNet) {
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const script = new URL("./deno/listener.ts", import.meta.url).pathname;
  const child = spawn(deno, ["run", "-A", ...(unstableNet ? ["--unstable-net"] : []), script, mode], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { port, id } = JSON.parse((await lines.next()).value);
  const packets = new Uint8Array(FLOOD_BYTES * CYCLED).fill(FLOOD_FILL);
  if (mode === "routed") addressFlood(packets, id);
  await flood(flooder, port, packets, CYCLED);
  const result = JSON.parse((await lines.next()).value);
  await new Promise((resolve) => (child.exitCode === null ? child.once("exit", resolve) : resolve()));
  return result;
}

export async function messageRate() {
  const { toGateway, atGateway, close } = await connectedPair();
  const message = new Uint8Array(1100).fill(9);
  const started = performance.now();
  const sending = (async () => {
    for (let i = 0; i < MESSAGES; i++) await toGateway.send(message);
  })();
  for (let i = 0; i < MESSAGES; i++) await atGateway.recv();
  const rate = MESSAGES / ((performance.now() - started) / 1000);
  await sending;
  await close();
  return rate;
}

/**
 * The receive path with decryption: a peer on another thread streams `bytes` to a gateway here;
 * answers the datagrams/s this thread received, opened (ChaCha20-Poly1305), reassembled and read.
 */
export async function streamRate(sender, bytes) {
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

/** Handshake times (ms) on loopback: fresh joiners, each from a loopback address of its own (bench/lib/hosts.mjs). */
export async function handshakeTimes(count) {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, acceptRamp: [], log: null, maxConnections: count + 1, inboundQueuePackets: 16 });
  const joiners = [];
  for (let i = 0; i < count; i++) joiners.push(await Transport.bind({ host: loopbackHost(i, 22), log: null, maxConnections: 1, maxHandshakes: 1, inboundQueuePackets: 16 }));
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
