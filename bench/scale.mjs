// How a gateway's cost grows with peers: one gateway process (bench/scale/gateway.mjs) and several
// client processes (bench/scale/clients.mjs), each client peer a Transport of its own (a Transport
// holds at most one connection to a given address, so each connection to the gateway takes a UDP
// socket of its own). One run, in phases on one gateway:
//  1. where today's limits break: the largest maxConnections a gateway binds with the default
//     inboundQueuePackets (every connection's queue is reserved in one arena of at most 2 GiB);
//  2. hold: `connections` peers connect and stay idle (keep-alives running); the gateway's CPU over
//     `idleSeconds`, in % of one core (with `idleProfile`, a CPU profile of that window is written
//     and its heaviest functions logged), and what the client peers sent meanwhile;
//  3. a baseline: `baselineConnects` sequential connects (connect() → established) to the loaded gateway;
//  4. the storm: `storm` more peers start connecting spread evenly over one second (accept ramp
//     off): how many were established, and their connect times; then the gateway's memory per
//     connection held (RSS, and V8 heap + ArrayBuffers, after full collections, which freeze the
//     gateway for ~1 s: last, so that nothing measured follows them) against the gateway bound with none;
//  5. the idle floor, once the Sluice processes are gone: a raw node:dgram socket answering the same
//     keep-alives (`connections` sockets in as many processes, one datagram each per keep-alive
//     interval, answered with one of the same size), its CPU over `idleSeconds`.
// If the connections asked for do not fit the default queue, the gateway gets the largest
// inboundQueuePackets that fits (said in the row names), so `connections` is measured at the count
// asked for; once the arena allows it at the defaults, the defaults are what is measured.
import { execFileSync, fork, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { DEFAULT_INBOUND_QUEUE_PACKETS, DEFAULT_RELIABILITY } from "../dist/index.js";
import { connectTo } from "./lib/rpc.mjs";
import { percentile } from "./lib/report.mjs";

const SCALE_DEFAULTS = {
  connections: 10_000,
  storm: 1_000,
  idleSeconds: 20,
  baselineConnects: 20,
  /** Connects in flight per client process while the hold opens its connections. */
  holdConcurrency: 8,
};
/** Client peers per process at most: each Transport's wasm memory reserves ~10 GiB of address space (guard regions), and a process has 128 TiB. */
const PEERS_PER_PROCESS = 3000;
/** File descriptors a Node process uses besides its peers' sockets. */
const SPARE_FDS = 64;
/** Time for handshakes' last confirms and the first keep-alives to settle before memory is read. */
const SETTLE_MS = 3000;
/** The storm starts this long after the clients are told, so every client has its timers set. */
const STORM_LEAD_MS = 500;
const STORM_SPREAD_MS = 1000;
/** How long after its last start the gateway's load over the storm is still measured. */
const STORM_TAIL_MS = 3000;
/** The issue's targets for a gateway: memory per idle connection and CPU while idle. */
const TARGET_KIB_PER_CONNECTION = 64;
const TARGET_IDLE_CPU_PERCENT = 2;
const TARGET_CONNECTIONS = 10_000;

const shellLimit = (flag) => Number(execFileSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).trim()) || Infinity;

/**
 * Forks `script` with `fds` file descriptors allowed: through `sh -c 'ulimit -n …; exec node'` when
 * the soft RLIMIT_NOFILE is lower (Node cannot raise its own), keeping the IPC channel.
 */
function start(script, fds, execArgv = []) {
  const path = new URL(`./scale/${script}`, import.meta.url).pathname;
  if (fds <= shellLimit("-Sn")) return connectTo(fork(path, [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" }));
  const child = spawn("sh", ["-c", `ulimit -n ${fds} && exec "$0" "$@"`, process.execPath, ...execArgv, path], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
  return connectTo(child);
}

/** Datagrams the kernel dropped because a socket's receive buffer was full, machine-wide (/proc/net/snmp; Linux only, else 0). */
function udpReceiveBufferErrors() {
  try {
    const [names, values] = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((line) => line.startsWith("Udp:")).map((line) => line.split(/\s+/));
    return Number(values[names.indexOf("RcvbufErrors")]);
  } catch {
    return 0;
  }
}

/** Datagrams the kernel dropped at the UDP sockets bound to `port` (their receive buffers were full). */
function socketDrops(port) {
  try {
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    return readFileSync("/proc/net/udp", "utf8").split("\n").slice(1).map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[1]?.endsWith(hexPort)).reduce((sum, fields) => sum + Number(fields.at(-1)), 0);
  } catch {
    return 0;
  }
}

/** The counts of `drops` that are not zero (less those of `since`). */
const nonZero = (drops, since = {}) => Object.fromEntries(Object.entries(drops).map(([reason, n]) => [reason, n - (since[reason] ?? 0)]).filter(([, n]) => n > 0));

/** [message, count] pairs summed by message. */
const tally = (pairs) => {
  const sums = {};
  for (const [message, count] of pairs) sums[message] = (sums[message] ?? 0) + count;
  return sums;
};

/**
 * The idle floor: a raw node:dgram socket answering `connections` sockets' keep-alive-sized datagrams,
 * one each per `keepAliveMs` (phases spread evenly), its CPU over `seconds` once every phase is set.
 */
async function rawIdle({ connections, processes, fdsPerProcess, keepAliveMs, seconds, children }) {
  const echo = await start("raw-echo.mjs", SPARE_FDS);
  children.push(echo.child);
  const { port } = await echo.call("bind");
  const shares = split(connections, processes);
  const pingers = await Promise.all(shares.map(() => start("raw-pingers.mjs", fdsPerProcess)));
  children.push(...pingers.map((pinger) => pinger.child));
  await Promise.all(pingers.map((pinger, k) => pinger.call("start", { port, count: shares[k], first: shares.slice(0, k).reduce((a, b) => a + b, 0), periodMs: keepAliveMs })));
  await new Promise((resolve) => setTimeout(resolve, keepAliveMs + SETTLE_MS));
  return echo.call("cpu", { seconds });
}

/** `total` split into `parts` near-equal counts. */
const split = (total, parts) => Array.from({ length: parts }, (_, k) => Math.floor(total / parts) + (k < total % parts ? 1 : 0));

export async function scaleRows({ log, options: overrides = {} }) {
  const options = { ...SCALE_DEFAULTS, ...overrides };
  const { connections, storm, baselineConnects } = options;
  const peers = connections + storm + baselineConnects;
  const processes = options.clientProcesses ?? Math.max(2, Math.ceil(peers / PEERS_PER_PROCESS));
  const hardLimit = shellLimit("-Hn");
  const fdsPerProcess = Math.ceil(peers / processes) + SPARE_FDS;
  if (fdsPerProcess > hardLimit) throw new Error(`${fdsPerProcess} file descriptors per client process needed, the hard limit is ${hardLimit}: use more client processes`);

  const children = [];
  try {
    const gateway = await start("gateway.mjs", SPARE_FDS, ["--expose-gc"]);
    children.push(gateway.child);

    // 1. Today's ceiling at the default queue, and the queue that fits what is asked for.
    const atDefaults = await gateway.call("largestMaxConnections", {});
    log(`\n  default queue: ${atDefaults.largest} connections at most (${atDefaults.refusal})`);
    let queuePackets = options.queuePackets ?? DEFAULT_INBOUND_QUEUE_PACKETS;
    if (options.queuePackets === undefined && atDefaults.largest < peers) {
      queuePackets = (await gateway.call("largestQueue", { maxConnections: peers, upTo: DEFAULT_INBOUND_QUEUE_PACKETS })).largest;
      if (queuePackets === 0) throw new Error(`no inboundQueuePackets lets a gateway hold ${peers} connections`);
      log(`\n  ${peers} fit with inboundQueuePackets ${queuePackets}`);
    }
    const before = await gateway.call("memory");
    const bound = await gateway.call("bind", { maxConnections: peers, inboundQueuePackets: queuePackets });
    const target = { address: bound.address, publicKey: bound.publicKey };
    const bare = await gateway.call("memory");
    log(`\n  the bound gateway's RSS +${((bare.rss - before.rss) / 2 ** 20).toFixed(1)} MiB`);

    const shares = split(connections, processes);
    const stormShares = split(storm, processes);
    const clients = await Promise.all(shares.map(() => start("clients.mjs", fdsPerProcess)));
    children.push(...clients.map((client) => client.child));
    const counts = shares.map((share, k) => share + stormShares[k] + (k === 0 ? baselineConnects : 0));
    await Promise.all(clients.map((client, k) => client.call("bind", { count: counts[k], first: counts.slice(0, k).reduce((a, b) => a + b, 0), keepAliveMs: options.peerKeepAliveMs })));
    log("\n  peers bound");

    // 2. Hold.
    const opening = performance.now();
    const held = await Promise.all(clients.map((client, k) => client.call("hold", { gateway: target, count: shares[k], concurrency: options.holdConcurrency })));
    const established = held.reduce((sum, h) => sum + h.established, 0);
    const holdErrors = tally(held.flatMap((h) => Object.entries(h.errors)));
    log(`\n  ${established} of ${connections} held in ${((performance.now() - opening) / 1000).toFixed(1)} s${Object.keys(holdErrors).length ? ` (failed attempts: ${JSON.stringify(holdErrors)})` : ""}`);
    const afterHold = await gateway.call("stats");
    log(`\n  gateway after the hold: drops ${JSON.stringify(nonZero(afterHold.drops))}, handshakes failed ${afterHold.handshakesFailed}`);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const settled = await gateway.call("stats");
    const { open } = settled;
    // The client processes' CPU over the same window: on a 2-core machine they share the gateway's cores.
    const clientTotals = () => Promise.all(clients.map((client) => client.call("totals"))).then((all) => Object.fromEntries(Object.keys(all[0]).map((key) => [key, all.reduce((sum, t) => sum + t[key], 0)])));
    // (rttMsP50 is each process's median smoothed RTT: summed above, averaged here.)
    const peersBefore = await clientTotals();
    const overflowsBefore = udpReceiveBufferErrors();
    const [idle, ...clientCpu] = await Promise.all([
      gateway.call("cpu", { seconds: options.idleSeconds, profile: options.idleProfile }),
      ...clients.map((client) => client.call("cpu", { seconds: options.idleSeconds })),
    ]);
    // The clients' counters first: reading the gateway's stats of 10,000 connections stalls it, and
    // the keep-alives it then answered late showed as the clients' probes in the window.
    const peersAfter = await clientTotals();
    const afterIdle = await gateway.call("stats");
    const { rttMsP50, ...counters } = peersAfter;
    const peersPerSecond = Object.fromEntries(Object.keys(counters).map((key) => [key, Math.round((peersAfter[key] - peersBefore[key]) / options.idleSeconds)]));
    peersPerSecond.rttMsP50 = +(rttMsP50 / clients.length).toFixed(1);
    const perSecond = (key) => ((afterIdle[key] - settled[key]) / options.idleSeconds).toFixed(0);
    const late = (d) => `${d.p50.toFixed(1)}/${d.p99.toFixed(1)}/${d.max.toFixed(1)} ms`;
    log(`\n  idle ${options.idleSeconds} s: gateway ${idle.percent.toFixed(1)}% of a core, event loop late p50/p99/max ${late(idle.loopDelay)}, sent ${perSecond("datagramsSent")} and received ${perSecond("datagramsReceived")} datagrams/s; client processes ${clientCpu.map((c) => c.percent.toFixed(1)).join(" + ")}% (loops late p99 ${clientCpu.map((c) => c.loopDelay.p99.toFixed(1)).join(", ")} ms); ${afterIdle.open} of ${open} still open${Object.keys(afterIdle.closed).length ? `, ended: ${JSON.stringify(afterIdle.closed)}` : ""}`);
    log(`\n  the gateway's stats() with ${afterIdle.connections} connections (each one's stats in perConnection) took ${afterIdle.statsMs.toFixed(1)} ms`);
    log(`\n  the client peers, per second while idle: ${JSON.stringify(peersPerSecond)}; UDP receive-buffer overflows, whole machine: ${udpReceiveBufferErrors() - overflowsBefore}`);
    if (idle.heaviest) log(`\n  idle profile (${options.idleProfile}), self time:\n    ${idle.heaviest.join("\n    ")}`);

    // 3. Baseline connects, then 4. the storm.
    const sequential = await clients[0].call("sequential", { gateway: target, count: baselineConnects });
    const beforeStorm = { gateway: await gateway.call("stats"), kernelDrops: udpReceiveBufferErrors(), gatewaySocketDrops: socketDrops(target.address.port) };
    const startWall = performance.timeOrigin + performance.now() + STORM_LEAD_MS;
    const offsets = Array.from({ length: storm }, (_, i) => (i * STORM_SPREAD_MS) / storm);
    // The gateway's CPU and event loop over the storm (from its lead to 3 s after its last start).
    const stormLoad = gateway.call("cpu", { seconds: (STORM_LEAD_MS + STORM_SPREAD_MS + STORM_TAIL_MS) / 1000 });
    const stormed = (await Promise.all(clients.map((client, k) => client.call("storm", { gateway: target, startWall, offsets: offsets.filter((_, i) => i % processes === k) })))).flat();
    const { percent: stormPercent, loopDelay: stormDelay } = await stormLoad;
    const stormTimes = stormed.filter((r) => r.ms !== undefined).map((r) => r.ms);
    const stormErrors = tally(stormed.filter((r) => r.error !== undefined).map((r) => [r.error, 1]));
    const afterStorm = await gateway.call("stats");
    const stormSent = stormed.map((r) => r.sent);
    log(`\n  storm: ${stormTimes.length} of ${storm} established${Object.keys(stormErrors).length ? `, failures ${JSON.stringify(stormErrors)}` : ""}; the gateway received ${afterStorm.datagramsReceived - beforeStorm.gateway.datagramsReceived} datagrams, dropped ${JSON.stringify(nonZero(afterStorm.drops, beforeStorm.gateway.drops))}, failed ${afterStorm.handshakesFailed - beforeStorm.gateway.handshakesFailed} handshakes; UDP receive-buffer overflows, whole machine: ${udpReceiveBufferErrors() - beforeStorm.kernelDrops} (the gateway's socket: ${socketDrops(target.address.port) - beforeStorm.gatewaySocketDrops}); gateway ${stormPercent.toFixed(0)}% of a core, event loop late p50/p99/max ${late(stormDelay)}; the storm's peers sent ${stormSent.reduce((a, b) => a + b, 0)} datagrams, p50/p99/max ${percentile(stormSent, 50)}/${percentile(stormSent, 99)}/${Math.max(...stormSent)} each`);
    // Memory last, with every connection idle again: the full collections that precede the reading
    // freeze the gateway (~1 s at 10,000 connections), its socket buffer overflows, and the
    // keep-alives lost and answered late filled the idle window (when memory was read before it)
    // and the storm (when read before that) with the clients' probes and retransmission timeouts.
    const loaded = await gateway.call("memory");
    const heldAtEnd = (await gateway.call("stats")).open;
    log(`\n  memory read with ${heldAtEnd} connections held, after ${loaded.collectMs.toFixed(0)} ms of full collections (the gateway frozen meanwhile)`);

    // 5. The floor: the same keep-alive datagrams answered by a bare socket, with the Sluice processes gone.
    for (const child of children.splice(0)) child.kill();
    const keepAliveMs = options.peerKeepAliveMs ?? DEFAULT_RELIABILITY.keepAliveMs;
    const raw = await rawIdle({ connections, processes, fdsPerProcess, keepAliveMs, seconds: options.idleSeconds, children });
    log(`\n  the same keep-alives answered by a raw node:dgram socket: ${raw.percent.toFixed(1)}% of a core for ${raw.perSecond.toFixed(0)} datagrams/s answered (event loop late p99 ${raw.loopDelay.p99.toFixed(1)} ms)`);

    const perConnectionKiB = (bytes) => bytes / Math.max(1, heldAtEnd) / 1024;
    const heapAndBuffers = (m) => m.heapUsed + m.arrayBuffers;
    const conditions = (count) => `${count.toLocaleString("en")} idle connections, inboundQueuePackets ${queuePackets}${options.peerKeepAliveMs === undefined ? "" : `, peers' keepAliveMs ${options.peerKeepAliveMs}`}`;
    const at = conditions(open);
    // Memory is read at the end: the storm's peers are held then too.
    const atEnd = `${conditions(heldAtEnd)}, after the storm`;
    const baselineTimes = sequential.filter((r) => r.ms !== undefined).map((r) => r.ms);
    const TARGET = "issue 13's target";
    return [
      { name: `scale: largest maxConnections a gateway binds at the default inboundQueuePackets (${DEFAULT_INBOUND_QUEUE_PACKETS})`, unit: "connections", value: atDefaults.largest, baseline: TARGET, baseline_value: TARGET_CONNECTIONS, target: "≥ 1.0×" },
      { name: `scale: gateway memory per idle connection, RSS (${atEnd})`, unit: "KiB", value: perConnectionKiB(loaded.rss - bare.rss), baseline: TARGET, baseline_value: TARGET_KIB_PER_CONNECTION, target: "≤ 1.0×" },
      { name: `scale: gateway memory per idle connection, V8 heap + ArrayBuffers (${atEnd})`, unit: "KiB", value: perConnectionKiB(heapAndBuffers(loaded) - heapAndBuffers(bare)), baseline: TARGET, baseline_value: TARGET_KIB_PER_CONNECTION, target: "≤ 1.0×" },
      { name: `scale: gateway CPU while idle, keep-alives running, over ${options.idleSeconds} s (${at})`, unit: "% of a core", value: idle.percent, baseline: TARGET, baseline_value: TARGET_IDLE_CPU_PERCENT, target: "≤ 1.0×" },
      { name: `scale: gateway CPU while idle (as above)`, unit: "% of a core", value: idle.percent, baseline: `raw node:dgram socket answering the same keep-alives (${connections.toLocaleString("en")} peers, one each per ${keepAliveMs} ms)`, baseline_value: raw.percent },
      { name: `scale: storm of ${storm.toLocaleString("en")} peers within 1 s (accept ramp off), established`, unit: "connections", value: stormTimes.length, baseline: "peers in the storm", baseline_value: storm, target: "≥ 1.0×" },
      { name: "scale: storm connect time p50 (connect() → established)", unit: "ms", value: percentile(stormTimes, 50), baseline: `${baselineConnects} sequential connects before it, p50`, baseline_value: percentile(baselineTimes, 50) },
      { name: "scale: storm connect time p99", unit: "ms", value: percentile(stormTimes, 99), baseline: `${baselineConnects} sequential connects before it, p99`, baseline_value: percentile(baselineTimes, 99) },
    ];
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}
