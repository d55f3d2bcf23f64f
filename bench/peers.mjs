// Sender and receiver in separate processes (what deployments do): each measurement forks two
// children (bench/peers/child.mjs), a listener and a dialer of one contender, on loopback. The parent
// only relays their out-of-band messages and collects results; it does no work while they run.
// Contenders run interleaved, run by run; each figure is the median of the runs, with the spread.
//  - stream: 64 MiB in 64 KiB writes, SHA-256 checked at the receiver: MiB/s, and CPU seconds per GiB
//    of both processes together (process.cpuUsage in each child over the transfer);
//  - round trip: 1 KiB request/response, sequential, after a warm-up: p50 and p99 of each run;
//  - connect → first echo: a fresh dialer socket per sample (bound before the clock starts),
//    handshake, one 1 KiB request and its echo: p50 of each run.
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { median, percentile } from "./lib/report.mjs";

const CHILD = new URL("./peers/child.mjs", import.meta.url);
/** A measurement that takes longer has hung (a lost wake-up, a peer that never connects): both ends are killed. */
const MEASUREMENT_TIMEOUT_MS = 180_000;
const MIB = 2 ** 20;
const GIB = 2 ** 30;

const PEER_DEFAULTS = {
  streamBytes: 64 * MIB,
  roundTrips: 2000,
  /** Sluice's round trip needs ~1,500 to settle (p50 per 500 measured: 320, 311, 97, 88, 71, 67… µs; udx + secret-stream flat at ~75). */
  roundTripWarmup: 2000,
  connectSamples: 20,
  /** Connect times fall over the first ten or so, for Sluice and udx + secret-stream alike. */
  connectWarmup: 20,
  contenders: ["sluice", "sluice+pmtu", "udx+secret", "udx", "datachannel", "dgram"],
};
/** Contenders measured in the stream alone: Sluice with path MTU discovery is a figure beside the 1200-byte rows, not a target. */
const STREAM_ONLY = new Set(["sluice+pmtu"]);

function version(name) {
  return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
}

function startEnd() {
  const child = fork(CHILD, [], { serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const ready = new Promise((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`a benchmark child exited early (code ${code})`)));
  });
  return { child, exited, ready };
}

function resultOf({ child, exited }) {
  return new Promise((resolve, reject) => {
    child.on("message", (message) => message.op === "result" && resolve(message.result));
    exited.then((code) => reject(new Error(`a benchmark child exited without a result (code ${code})`)));
  });
}

/** Runs `test` of contender `name` with a listener and a dialer in two fresh processes; answers both results. */
async function measure(name, test, params) {
  const ends = [startEnd(), startEnd()];
  const [listener, dialer] = ends.map((end) => end.child);
  let timer;
  try {
    await Promise.all(ends.map((end) => end.ready));
    listener.on("message", (message) => message.op === "signal" && dialer.connected && dialer.send(message));
    dialer.on("message", (message) => message.op === "signal" && listener.connected && listener.send(message));
    const results = ends.map(resultOf);
    // Either end dying, or no progress for MEASUREMENT_TIMEOUT_MS, ends the measurement at once.
    const failed = new Promise((_, reject) => {
      for (const result of results) result.catch(reject);
      timer = setTimeout(() => reject(new Error(`${name} ${test}: no result within ${MEASUREMENT_TIMEOUT_MS / 1000} s`)), MEASUREMENT_TIMEOUT_MS);
    });
    listener.send({ op: "run", name, role: "listener", test, params });
    dialer.send({ op: "run", name, role: "dialer", test, params });
    const dialed = await Promise.race([results[1], failed]);
    listener.send({ op: "stop" });
    const listened = await Promise.race([results[0], failed]);
    await Promise.race([Promise.all(ends.map((end) => end.exited)), failed]);
    return { listener: listened, dialer: dialed };
  } finally {
    clearTimeout(timer);
    for (const child of [listener, dialer]) if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}

async function streamRun(name, options) {
  // A warm-up transfer of an eighth first, on its own connection, unmeasured (the JIT, the first congestion window).
  const { listener, dialer } = await measure(name, "stream", { bytes: options.streamBytes, warmupBytes: Math.ceil(options.streamBytes / 8) });
  // The raw dgram blast resends nothing: what it lost is reported, and its hash cannot match then.
  if (name !== "dgram" && (listener.received !== options.streamBytes || listener.sha256 !== dialer.sha256)) {
    throw new Error(`${name}: the receiver's SHA-256 does not match (${listener.received} of ${options.streamBytes} bytes)`);
  }
  const seconds = (listener.lastWall - dialer.startWall) / 1000;
  return {
    mibPerSecond: listener.received / MIB / seconds,
    cpuSecondsPerGiB: (listener.cpuSeconds + dialer.cpuSeconds) / (listener.received / GIB),
    lostBytes: options.streamBytes - listener.received,
    mtu: dialer.mtu,
  };
}

async function roundTripRun(name, options) {
  const { dialer } = await measure(name, "rtt", { count: options.roundTrips, warmup: options.roundTripWarmup });
  return { p50: percentile(dialer.micros, 50), p99: percentile(dialer.micros, 99), mtu: dialer.mtu };
}

async function connectRun(name, options) {
  const { dialer } = await measure(name, "connect", { samples: options.connectSamples, warmup: options.connectWarmup });
  return { p50: percentile(dialer.millis, 50), p99: percentile(dialer.millis, 99) };
}

/** IPv4 and UDP headers: udx's MTU counts them, a datagram's payload does not. */
const IP_UDP_HEADER_BYTES = 28;

/**
 * What each contender is, for the baseline column. `mtu` is the largest MTU a udx stream reported
 * (udx starts at 1200 and probes up to 1500; it has no option to stay at 1200). node-datachannel's is
 * set (DATACHANNEL_MTU): its datagrams were seen at ≤ 1189 B on the wire.
 */
function describe(name, mtu) {
  const udx = `udx-native ${version("udx-native")}`;
  const udxDatagrams = mtu ? `, MTU ${mtu}: datagrams ≤ ${mtu - IP_UDP_HEADER_BYTES} B` : "";
  switch (name) {
    case "udx+secret": return `${udx} + @hyperswarm/secret-stream ${version("@hyperswarm/secret-stream")} (Noise XX, libsodium${udxDatagrams})`;
    case "udx": return `${udx} (no handshake, unencrypted${udxDatagrams})`;
    case "datachannel": return `node-datachannel ${version("node-datachannel")} (DTLS 1.2 + SCTP, datagrams ≤ 1200 B)`;
    default: return name;
  }
}

/**
 * The separate-process rows: runs every contender `runs` times, interleaved, and answers report rows
 * (each with the per-run `values` and `baseline_values` behind its medians).
 */
export async function peerRows({ runs, log, options: overrides = {} }) {
  const options = { ...PEER_DEFAULTS, ...overrides };
  const names = options.contenders.filter((name) => PEER_DEFAULTS.contenders.includes(name));
  const streams = Object.fromEntries(names.map((name) => [name, []]));
  const trips = Object.fromEntries(names.filter((name) => !STREAM_ONLY.has(name)).map((name) => [name, []]));
  const connects = Object.fromEntries(Object.keys(trips).filter((name) => name !== "dgram").map((name) => [name, []]));
  for (let run = 0; run < runs; run++) {
    for (const name of names) streams[name].push(await streamRun(name, options));
    for (const name of Object.keys(trips)) trips[name].push(await roundTripRun(name, options));
    for (const name of Object.keys(connects)) connects[name].push(await connectRun(name, options));
    log(".");
  }

  const rows = [];
  const mtu = (results) => Math.max(...results.map((r) => r.mtu ?? 0)) || undefined;
  const row = (name, unit, results, baseline, key, target, label, subject = "sluice") => {
    if (!results[subject] || !results[baseline]) return;
    label ??= describe(baseline, mtu(results[baseline]));
    const values = results[subject].map((r) => r[key]);
    const baselineValues = results[baseline].map((r) => r[key]);
    rows.push({ name, unit, value: median(values), baseline: label, baseline_value: median(baselineValues), target, values, baseline_values: baselineValues });
  };
  const mib = Math.round(options.streamBytes / MIB);
  const STREAM = `separate processes: ${mib} MiB stream in 64 KiB writes, SHA-256 checked (Sluice: 1200 B datagrams)`;
  const BLAST = "raw node:dgram blast, 1200 B, credit-paced (no reliability; what arrives)";
  row(STREAM, "MiB/s", streams, "udx+secret", "mibPerSecond", "≥ 1.0×");
  row(STREAM, "MiB/s", streams, "udx", "mibPerSecond");
  row(STREAM, "MiB/s", streams, "datachannel", "mibPerSecond");
  row(STREAM, "MiB/s", streams, "dgram", "mibPerSecond", undefined, BLAST);
  if (streams["sluice+pmtu"]) {
    // Beside the targets, not held to them: what discovery gives (udx probes up to 1500 as well).
    const DISCOVERING = `separate processes: ${mib} MiB stream, Sluice with path MTU discovery (reached ${mtu(streams["sluice+pmtu"])} B datagrams)`;
    row(DISCOVERING, "MiB/s", streams, "udx+secret", "mibPerSecond", undefined, undefined, "sluice+pmtu");
    row(DISCOVERING.replace("stream,", "stream: CPU seconds per GiB, both processes,"), "CPU s/GiB", streams, "udx+secret", "cpuSecondsPerGiB", undefined, undefined, "sluice+pmtu");
  }
  const CPU = `separate processes: ${mib} MiB stream: CPU seconds per GiB, both processes`;
  row(CPU, "CPU s/GiB", streams, "udx+secret", "cpuSecondsPerGiB", "≤ 1.5×");
  row(CPU, "CPU s/GiB", streams, "udx", "cpuSecondsPerGiB");
  row(CPU, "CPU s/GiB", streams, "datachannel", "cpuSecondsPerGiB");
  row(CPU, "CPU s/GiB", streams, "dgram", "cpuSecondsPerGiB", undefined, BLAST);
  const ROUND = `separate processes: 1 KiB request/response round trip (${options.roundTrips.toLocaleString("en")} per run)`;
  row(`${ROUND} p50`, "µs", trips, "udx+secret", "p50", "≤ 1.0×");
  row(`${ROUND} p50`, "µs", trips, "udx", "p50");
  row(`${ROUND} p50`, "µs", trips, "datachannel", "p50");
  row(`${ROUND} p50`, "µs", trips, "dgram", "p50", "≤ 1.5×", "raw node:dgram ping-pong");
  row(`${ROUND} p99`, "µs", trips, "udx+secret", "p99");
  const CONNECT = `separate processes: connect → first 1 KiB echo p50 (fresh socket and handshake each; ${options.connectSamples} per run)`;
  row(CONNECT, "ms", connects, "udx+secret", "p50", "≤ 1.0×");
  row(CONNECT, "ms", connects, "datachannel", "p50");
  row(CONNECT, "ms", connects, "udx", "p50");
  const lost = streams.dgram?.reduce((sum, r) => sum + r.lostBytes, 0);
  if (lost) log(` (the dgram blast lost ${lost} bytes over ${runs} runs)`);
  return rows;
}
