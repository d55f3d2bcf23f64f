// What strangers cost a gateway (docs/security.md). The gateway, the flooder and the legitimate node
// each run in a process of their own, so each one's CPU is its own; the flooder sends from another
// loopback address (127.0.0.3) through 256 ports, the legitimate node connects from 127.0.0.2.
//  - garbage intro: random bytes of an intro's kind, version and length (they fail mac1): the
//    gateway's CPU per datagram, all included (the receive syscall, the listener, the check).
//  - valid-looking intro under load: a genuine intro from a fresh key, with mac1 but no cookie, to a
//    gateway told it is always under load (underLoadIntrosPerSecond 0), with its default budgets: a
//    few answered with a COOKIE, the rest dropped after mac1 (the per-IP and total cookie budgets).
//    And the cost of one that is answered (the per-IP budget lifted): the COOKIE's send is most of it.
//    Baseline for both: a raw node:dgram socket in the same kind of child, whose handler only counts.
//  - a flood of 5,000 intros/s (genuine, passing mac1) from 5,000 ports while legitimate nodes
//    (127.0.2.x, one address each) connect one after another: their connect p50 against the same
//    with no flood.
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Transport } from "sluice";
import { introsForBenchmark } from "sluice/internal";
import { connectTo } from "./lib/rpc.mjs";
import { median, percentile } from "./lib/report.mjs";

const INTRO_BYTES = 146;
const FLOOD_DATAGRAMS = 40_000;
const base64 = (datagrams) => datagrams.map((datagram) => Buffer.from(datagram).toString("base64"));

async function child(path) {
  const process_ = fork(new URL(path, import.meta.url), { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return connectTo(process_);
}

/** The gateway's CPU µs per datagram over a flood of `count` of `datagrams`. */
async function costPerDatagram(gateway, flood, datagrams, count) {
  await gateway.call("settle");
  const before = await gateway.call("cpu");
  const received = await gateway.call("stats").then((s) => s.datagramsReceived);
  await flood.call("flood", { datagrams: base64(datagrams), count, port: gateway.port });
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

/**
 * Connect times (ms) of `count` sequential fresh legitimate nodes, each at an address of its own
 * (127.0.2.x): what is measured is the flood's effect, not one IP's own intro budget (16 at once, 8/s).
 */
let legitimate = 0;
async function connectTimes(gateway, count) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const node = await Transport.bind({ host: `127.0.2.${1 + (legitimate++ % 250)}`, log: null });
    const started = performance.now();
    const connection = await node.connect({ host: "127.0.0.1", port: gateway.port }, gateway.publicKey);
    times.push(performance.now() - started);
    await connection.close().catch(() => {});
    await node.close();
  }
  return times;
}

export async function strangerRows(runs, log) {
  const flood = await child("./strangers/flooder.mjs");
  const garbage = Array.from({ length: 1024 }, () => {
    const datagram = randomBytes(INTRO_BYTES);
    datagram[0] = 0x01;
    datagram[1] = 2;
    datagram.writeUInt32LE(1 + (datagram.readUInt32LE(2) >>> 1), 2);
    return datagram;
  });
  const values = { raw: [], garbage: [], cookie: [], answered: [] };
  for (let run = 0; run < runs; run++) {
    const raw = await rawGateway();
    values.raw.push(await costPerDatagram(raw, flood, garbage, FLOOD_DATAGRAMS));
    await raw.call("close").catch(() => {});
    const plain = await sluiceGateway({});
    values.garbage.push(await costPerDatagram(plain, flood, garbage, FLOOD_DATAGRAMS));
    await plain.call("close").catch(() => {});
    for (const [budgets, into] of [[{}, values.cookie], [{ introBurstPerIp: 1 << 16, introsPerIpPerSecond: 1 << 16 }, values.answered]]) {
      const loaded = await sluiceGateway({ underLoadIntrosPerSecond: 0, ...budgets });
      const intros = introsForBenchmark(loaded.publicKey, 256);
      into.push(await costPerDatagram(loaded, flood, intros, into === values.answered ? FLOOD_DATAGRAMS / 10 : FLOOD_DATAGRAMS));
      const stats = await loaded.call("stats");
      if (stats.handshakes !== 0 || stats.cookiesSent === 0) throw new Error(`an intro without a cookie under load was given a slot: ${JSON.stringify(stats)}`);
      await loaded.call("close").catch(() => {});
    }
    log(".");
  }

  // Legitimate connects, idle and during a flood of 5,000 genuine intros per second from 5,000 ports.
  const gateway = await sluiceGateway({});
  const idle = await connectTimes(gateway, 40);
  const floodIntros = introsForBenchmark(gateway.publicKey, 512);
  const during = [];
  let failed = 0;
  const flooding = flood.call("flood", { datagrams: base64(floodIntros), count: 5_000 * 4, port: gateway.port, perSecond: 5_000 }); // 4 s
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
  await flood.call("close").catch(() => {});
  log(` (flood: ${during.length} legitimate connects, ${failed} failed; gateway drops ${JSON.stringify(stats.drops)}, cookies ${stats.cookiesSent})`);

  const RAW = "raw node:dgram in the same kind of child, handler only counts";
  return [
    { name: "strangers: a garbage intro (fails mac1), gateway CPU per datagram, all included", unit: "µs", value: median(values.garbage), baseline: RAW, baseline_value: median(values.raw), target: "≤ 5 µs", values: values.garbage, baseline_values: values.raw },
    { name: "strangers: a genuine intro without a cookie, under load, default budgets (a few get a COOKIE, none a slot)", unit: "µs", value: median(values.cookie), baseline: RAW, baseline_value: median(values.raw), target: "≤ 10 µs", values: values.cookie, baseline_values: values.raw },
    { name: "strangers: the same, each one answered with a COOKIE (per-IP budget lifted; the send is most of it)", unit: "µs", value: median(values.answered), baseline: RAW, baseline_value: median(values.raw), values: values.answered, baseline_values: values.raw },
    { name: `strangers: legitimate connect p50 during a flood of 5,000 genuine intros/s from 5,000 ports (${failed} of ${during.length + failed} failed)`, unit: "ms", value: percentile(during, 50), baseline: "the same, no flood", baseline_value: percentile(idle, 50), target: "≤ 10×, none failed" },
  ];
}
