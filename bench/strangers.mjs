// What strangers cost a gateway (docs/security.md). The gateway runs in a child process, so its CPU
// time is its own; the parent floods it from another loopback address (127.0.0.3) through 256 ports.
//  - garbage intro: random bytes of an intro's kind, version and length (they fail mac1): the
//    gateway's CPU per datagram, all included (the receive syscall, the listener, the check).
//  - valid-looking intro under load: a genuine intro from a fresh key, with mac1 but no cookie, to a
//    gateway told it is always under load (underLoadIntrosPerSecond 0): answered with a COOKIE only.
//    Baseline for both: a raw node:dgram socket in the same kind of child, whose handler only counts.
//  - a flood of 5,000 intros/s (genuine, passing mac1) from 5,000 ports while a legitimate node
//    (127.0.0.2) connects again and again: its connect p50 against the same with no flood.
import { fork } from "node:child_process";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { Transport } from "sluice";
import { introsForBenchmark } from "sluice/internal";
import { connectTo } from "./lib/rpc.mjs";
import { median, percentile } from "./lib/report.mjs";

const FLOOD_HOST = "127.0.0.3";
const FLOOD_PORTS = 256;
const INTRO_BYTES = 146;
const FLOOD_DATAGRAMS = 40_000;
/** Datagrams sent per tick of the flooder: small enough that the gateway's receive buffer never overflows. */
const BURST = 64;

async function child(path) {
  const process_ = fork(new URL(path, import.meta.url), { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return connectTo(process_);
}

async function flooder() {
  const sockets = [];
  for (let i = 0; i < FLOOD_PORTS; i++) {
    const socket = createSocket("udp4");
    await new Promise((resolve) => socket.bind(0, FLOOD_HOST, resolve));
    sockets.push(socket);
  }
  return {
    /** Sends `datagrams` (cycled) `count` times to `port`, BURST at a time, one burst per `everyMs`. */
    async send(datagrams, count, port, everyMs = 0) {
      let sent = 0;
      while (sent < count) {
        for (let i = 0; i < BURST && sent < count; i++, sent++) sockets[sent % FLOOD_PORTS].send(datagrams[sent % datagrams.length], port, "127.0.0.1");
        await new Promise((resolve) => (everyMs > 0 ? setTimeout(resolve, everyMs) : setImmediate(resolve)));
      }
    },
    close: () => sockets.forEach((socket) => socket.close()),
  };
}

/** The gateway's CPU µs per datagram over a flood of `count` of `datagrams`. */
async function costPerDatagram(gateway, flood, datagrams, count) {
  await gateway.call("settle");
  const before = await gateway.call("cpu");
  const received = await gateway.call("stats").then((s) => s.datagramsReceived);
  await flood.send(datagrams, count, gateway.port);
  let handled = received;
  for (let tries = 0; tries < 100 && handled < received + count; tries++) handled = await gateway.call("settle");
  const after = await gateway.call("cpu");
  return (after - before) / (handled - received);
}

async function rawGateway() {
  const raw = await child("./strangers/raw.mjs");
  raw.port = await raw.call("bind");
  return raw;
}

async function sluiceGateway(options) {
  const gateway = await child("./strangers/gateway.mjs");
  const { port, publicKey } = await gateway.call("bind", options);
  gateway.port = port;
  gateway.publicKey = Uint8Array.from(Buffer.from(publicKey, "hex"));
  return gateway;
}

/** Connect times (ms) of a legitimate node at 127.0.0.2, `count` sequential fresh connects. */
async function connectTimes(gateway, count) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const node = await Transport.bind({ host: "127.0.0.2", log: null });
    const started = performance.now();
    const connection = await node.connect({ host: "127.0.0.1", port: gateway.port }, gateway.publicKey);
    times.push(performance.now() - started);
    await connection.close().catch(() => {});
    await node.close();
  }
  return times;
}

export async function strangerRows(runs, log) {
  const flood = await flooder();
  const garbage = Array.from({ length: 1024 }, () => {
    const datagram = randomBytes(INTRO_BYTES);
    datagram[0] = 0x01;
    datagram[1] = 2;
    datagram.writeUInt32LE(1 + (datagram.readUInt32LE(2) >>> 1), 2);
    return datagram;
  });
  const values = { raw: [], garbage: [], cookie: [] };
  for (let run = 0; run < runs; run++) {
    const raw = await rawGateway();
    values.raw.push(await costPerDatagram(raw, flood, garbage, FLOOD_DATAGRAMS));
    await raw.call("close").catch(() => {});
    const plain = await sluiceGateway({});
    values.garbage.push(await costPerDatagram(plain, flood, garbage, FLOOD_DATAGRAMS));
    await plain.call("close").catch(() => {});
    const loaded = await sluiceGateway({ underLoadIntrosPerSecond: 0, introBurstPerIp: 1 << 16, introsPerIpPerSecond: 1 << 16 });
    const intros = introsForBenchmark(loaded.publicKey, 256);
    values.cookie.push(await costPerDatagram(loaded, flood, intros, FLOOD_DATAGRAMS));
    const stats = await loaded.call("stats");
    if (stats.handshakes !== 0 || stats.cookiesSent === 0) throw new Error(`an intro without a cookie under load was given a slot: ${JSON.stringify(stats)}`);
    await loaded.call("close").catch(() => {});
    log(".");
  }

  // Legitimate connects, idle and during a flood of 5,000 genuine intros per second from 5,000 ports.
  const gateway = await sluiceGateway({});
  const idle = await connectTimes(gateway, 40);
  const floodIntros = introsForBenchmark(gateway.publicKey, 512);
  const during = [];
  let failed = 0;
  const flooding = flood.send(floodIntros, 5_000 * 4, gateway.port, (BURST / 5_000) * 1000); // 4 s at 5,000/s
  const started = performance.now();
  while (performance.now() - started < 3_500) {
    try {
      during.push(...(await connectTimes(gateway, 1)));
    } catch {
      failed++;
    }
  }
  await flooding;
  const stats = await gateway.call("stats");
  await gateway.call("close").catch(() => {});
  flood.close();
  log(` (flood: ${during.length} legitimate connects, ${failed} failed; gateway drops ${JSON.stringify(stats.drops)}, cookies ${stats.cookiesSent})`);

  const RAW = "raw node:dgram in the same kind of child, handler only counts";
  return [
    { name: "strangers: a garbage intro (fails mac1), gateway CPU per datagram, all included", unit: "µs", value: median(values.garbage), baseline: RAW, baseline_value: median(values.raw), target: "≤ 5 µs", values: values.garbage, baseline_values: values.raw },
    { name: "strangers: a genuine intro without a cookie, under load (answered with a COOKIE, no slot)", unit: "µs", value: median(values.cookie), baseline: RAW, baseline_value: median(values.raw), target: "≤ 10 µs", values: values.cookie, baseline_values: values.raw },
    { name: `strangers: legitimate connect p50 during a flood of 5,000 genuine intros/s from 5,000 ports (${failed} of ${during.length + failed} failed)`, unit: "ms", value: percentile(during, 50), baseline: "the same, no flood", baseline_value: percentile(idle, 50), target: "≤ 10×, none failed" },
  ];
}
