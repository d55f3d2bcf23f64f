// npm run bench [-- --json] [-- --runs N] [-- --only channel|channel-api|datagram|strangers|delivery|peers|relay|scale]
// Every figure is the median of N runs (default 5), and every contender runs in the same process (the Deno ones in a child process),
// interleaved run by run, so a ratio compares like with like on a noisy 2-core machine.
import { execFileSync } from "node:child_process";
import { arch, cpus, platform } from "node:os";
import { denoRate, handshakeTimes, messageRate, rawRate, rawRoundTrips, routedRate, sealedRate, startFlooder, startStreamSender, streamRate } from "./listener.mjs";
import { dgramRoundTrips, dgramStream, sluiceRoundTrips, sluiceStream, udxRoundTrips, udxStream } from "./transfer.mjs";
import { portLatency, sluiceLatency } from "./latency.mjs";
import { portCrossThread, ringbufCrossThread, sluiceCrossThread, startProducer } from "./cross-thread.mjs";
import { forAwaitCrossThread, recvCrossThread } from "./channel-api.mjs";
import { peerRows } from "./peers.mjs";
import { relayRows } from "./relay.mjs";
import { scaleRows } from "./scale.mjs";
import { strangerRows } from "./strangers.mjs";
import { median, percentile, report } from "./lib/report.mjs";
import { arraySameThread, ringbufSameThread, sluiceSameThread } from "./same-thread.mjs";

const json = process.argv.includes("--json");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const onlyArg = process.argv.indexOf("--only");
const only = onlyArg > 0 ? process.argv[onlyArg + 1] : undefined;
const section = (name) => only === undefined || only === name;
const option = (flag, fallback) => {
  const at = process.argv.indexOf(flag);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const log = (text) => {
  if (!json) process.stderr.write(text);
};

/** Runs each contender RUNS times, interleaved; answers each one's results, run by run. */
async function interleaved(contenders) {
  const results = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const [name, measure] of Object.entries(contenders)) results[name].push(await measure());
    log(".");
  }
  return results;
}

const mediansOf = (runs) => Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, median(values)]));

/** Runs each contender RUNS times, interleaved; answers the median of each. */
async function medians(contenders) {
  return mediansOf(await interleaved(contenders));
}

log(`Sluice benchmarks, ${RUNS} runs each, Node ${process.version}, ${platform()} ${arch()}, ${cpus().length} × ${cpus()[0]?.model}\n`);
const rows = [];
const UNIT = "packets/s";

if (section("channel")) {
  log("same thread ");
  const SAME_THREAD_PACKETS = 500_000;
  for (const warm of [sluiceSameThread, arraySameThread, ringbufSameThread]) warm(50_000);
  const same = await medians({
    sluice: () => sluiceSameThread(SAME_THREAD_PACKETS),
    array: () => arraySameThread(SAME_THREAD_PACKETS),
    ringbuf: () => ringbufSameThread(SAME_THREAD_PACKETS),
  });
  rows.push({ name: "same thread, 1200 B, batch path (drain)", unit: UNIT, value: same.sluice, baseline: "JS array of copied Uint8Arrays", baseline_value: same.array, target: "≥ 1.0×" });
  rows.push({ name: "same thread, 1200 B, batch path (drain)", unit: UNIT, value: same.sluice, baseline: "ringbuf.js", baseline_value: same.ringbuf });

  log("\ncross thread ");
  const producers = {
    sluice: await startProducer("sluice-producer"),
    port: await startProducer("port-producer"),
    ringbuf: await startProducer("ringbuf-producer"),
    latency: await startProducer("latency-producer"),
  };
  await sluiceCrossThread(producers.sluice, 200_000); // warm-up
  await ringbufCrossThread(producers.ringbuf, 200_000);
  await portCrossThread(producers.port, 50_000, 1);
  const crossRuns = await interleaved({
    sluice: () => sluiceCrossThread(producers.sluice, 1_000_000),
    port1: () => portCrossThread(producers.port, 250_000, 1),
    port32: () => portCrossThread(producers.port, 1_000_000, 32),
    ringbuf: () => ringbufCrossThread(producers.ringbuf, 1_000_000),
  });
  const cross = mediansOf(crossRuns);
  const crossName = "worker → main, 1200 B, receiver sleeps when idle";
  // The target holds in every run, so this row shows each run's ratio.
  rows.push({ name: crossName, unit: UNIT, value: cross.sluice, baseline: "MessagePort, 1 packet/message", baseline_value: cross.port1, target: "≥ 20×", values: crossRuns.sluice, baseline_values: crossRuns.port1 });
  rows.push({ name: crossName, unit: UNIT, value: cross.sluice, baseline: "MessagePort, 32 packets/message", baseline_value: cross.port32 });
  rows.push({ name: crossName, unit: UNIT, value: cross.sluice, baseline: "ringbuf.js + same sleep/notify", baseline_value: cross.ringbuf, target: "≥ 1.0×" });

  log("\nwake-up latency ");
  const SAMPLES = 200;
  const latency = { sluice: [], port: [] };
  for (let run = 0; run < RUNS; run++) {
    latency.sluice.push(await sluiceLatency(producers.latency, SAMPLES));
    latency.port.push(await portLatency(producers.latency, SAMPLES));
    log(".");
  }
  const p = (side, key) => median(latency[side].map((r) => r[key]));
  const perRun = (side, key) => latency[side].map((r) => r[key]);
  rows.push({ name: "wake-up latency p50, worker send → main recv", unit: "µs", value: p("sluice", "p50"), baseline: "MessagePort", baseline_value: p("port", "p50"), target: "≤ 1.0×", values: perRun("sluice", "p50"), baseline_values: perRun("port", "p50") });
  rows.push({ name: "wake-up latency p99, worker send → main recv", unit: "µs", value: p("sluice", "p99"), baseline: "MessagePort", baseline_value: p("port", "p99") });

  await Promise.all(Object.values(producers).map((w) => w.terminate()));
}

if (section("channel-api")) {
  log("\nchannel, public API ");
  const producers = { sluice: await startProducer("sluice-producer"), port: await startProducer("port-producer") };
  await forAwaitCrossThread(producers.sluice, 100_000); // warm-up
  await recvCrossThread(producers.sluice, 100_000);
  await portCrossThread(producers.port, 50_000, 1);
  const api = await interleaved({
    forAwait: () => forAwaitCrossThread(producers.sluice, 500_000),
    recv: () => recvCrossThread(producers.sluice, 500_000),
    port: () => portCrossThread(producers.port, 250_000, 1),
  });
  const medianOf = mediansOf(api);
  const PORT = "MessagePort, 1 packet/message (credit-based)";
  const API = "worker → main, 1200 B, Sender.fromHandle + trySend/send →";
  rows.push({ name: `${API} for await (const p of rx)`, unit: UNIT, value: medianOf.forAwait, baseline: PORT, baseline_value: medianOf.port, target: "≥ 5×", values: api.forAwait, baseline_values: api.port });
  rows.push({ name: `${API} await rx.recv()`, unit: UNIT, value: medianOf.recv, baseline: PORT, baseline_value: medianOf.port, target: "≥ 5×", values: api.recv, baseline_values: api.port });
  await Promise.all(Object.values(producers).map((w) => w.terminate()));
}

if (section("datagram")) {
  log("\ndatagram path ");
  const flooder = await startFlooder();
  const sender = await startStreamSender();
  const STREAM_BYTES = 64 * 2 ** 20;
  await routedRate(flooder); // warm-up
  await sealedRate(flooder);
  await streamRate(sender, STREAM_BYTES);
  await messageRate();
  const udp = await medians({
    raw: () => rawRate(flooder),
    routed: () => routedRate(flooder),
    sealed: () => sealedRate(flooder),
    stream: () => streamRate(sender, STREAM_BYTES),
    messages: () => messageRate(),
  });
  log(" Deno ");
  const denoUdp = await medians({
    raw: async () => (await denoRate(flooder, "raw", true)).rate,
    routed: async () => (await denoRate(flooder, "routed", true)).rate,
    nodeRaw: async () => (await denoRate(flooder, "raw", false)).rate,
    nodeRouted: async () => (await denoRate(flooder, "routed", false)).rate,
  });
  await Promise.all([flooder.terminate(), sender.terminate()]);
  const DATAGRAMS = "datagrams/s";
  const RAW = "raw node:dgram, handler only counts";
  rows.push({ name: "UDP listener, 1200 B flood, routed to a consumer", unit: DATAGRAMS, value: udp.routed, baseline: RAW, baseline_value: udp.raw, target: "≥ 0.9×" });
  rows.push({ name: "UDP listener, flood of sealed 1200 B data packets, routed and opened (replay window, ChaCha20-Poly1305)", unit: DATAGRAMS, value: udp.sealed, baseline: RAW, baseline_value: udp.raw, target: "≥ 0.7×" });
  rows.push({ name: "a stream from another thread: received, opened, reassembled, read (paced by its sender)", unit: DATAGRAMS, value: udp.stream, baseline: RAW, baseline_value: udp.raw });
  rows.push({ name: "reliable 1100 B messages, sealed, opened, acked, recv() (sender in-process)", unit: DATAGRAMS, value: udp.messages, baseline: RAW, baseline_value: udp.raw });
  const DENO_RAW = "raw Deno.listenDatagram, handler only counts";
  rows.push({ name: "Deno: UDP listener over Deno.listenDatagram, 1200 B flood, routed to a consumer", unit: DATAGRAMS, value: denoUdp.routed, baseline: DENO_RAW, baseline_value: denoUdp.raw });
  rows.push({ name: "Deno: raw Deno.listenDatagram, handler only counts", unit: DATAGRAMS, value: denoUdp.raw, baseline: `${RAW} (Node)`, baseline_value: udp.raw });
  rows.push({ name: "Deno: UDP listener over Deno's node:dgram (no --unstable-net), routed", unit: DATAGRAMS, value: denoUdp.nodeRouted, baseline: "raw node:dgram in Deno, handler only counts", baseline_value: denoUdp.nodeRaw });
  rows.push({ name: "Deno: raw node:dgram in Deno, handler only counts", unit: DATAGRAMS, value: denoUdp.nodeRaw, baseline: `${RAW} (Node)`, baseline_value: udp.raw });

  log("\nhandshakes ");
  await handshakeTimes(10); // warm-up
  const handshakes = [];
  const roundTrips = [];
  for (let run = 0; run < RUNS; run++) {
    handshakes.push(...(await handshakeTimes(30)));
    roundTrips.push(...(await rawRoundTrips(100)));
    log(".");
  }
  rows.push({ name: "handshake p50, loopback (connect → established)", unit: "ms", value: percentile(handshakes, 50), baseline: "raw dgram round trip p50", baseline_value: percentile(roundTrips, 50), target: "< 2 ms" });
  rows.push({ name: "handshake p99, loopback", unit: "ms", value: percentile(handshakes, 99), baseline: "raw dgram round trip p99", baseline_value: percentile(roundTrips, 99) });

  log("\nDeno ");
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const denoTimes = { "Deno.listenDatagram": [], "node:dgram": [] };
  for (let run = 0; run < RUNS; run++) {
    for (const flags of [["--unstable-net"], []]) {
      const out = JSON.parse(execFileSync(deno, ["run", "-A", ...flags, new URL("./deno/handshake.ts", import.meta.url).pathname, "30"], { encoding: "utf8" }));
      denoTimes[out.socket].push(...out.times.slice(5)); // the first few include compilation
    }
    log(".");
  }
  for (const [socket, times] of Object.entries(denoTimes)) {
    rows.push({ name: `handshake p50 in Deno over ${socket}`, unit: "ms", value: percentile(times, 50), baseline: "Node, node:dgram (above)", baseline_value: percentile(handshakes, 50) });
  }
}

if (section("strangers")) {
  log("\nstrangers ");
  rows.push(...(await strangerRows(RUNS, log)));
}

if (section("delivery")) {
  log("\nreliable delivery ");
  const STREAM_BYTES = 256 * 2 ** 20;
  await sluiceStream(32 * 2 ** 20); // warm-up
  await udxStream(32 * 2 ** 20);
  const streams = { sluice: [], udx: [], dgram: [] };
  const trips = { sluice: [], udx: [], dgram: [] };
  for (let run = 0; run < RUNS; run++) {
    streams.sluice.push(await sluiceStream(STREAM_BYTES));
    streams.udx.push(await udxStream(STREAM_BYTES));
    streams.dgram.push(await dgramStream(STREAM_BYTES));
    trips.sluice.push(...(await sluiceRoundTrips(2000, 1024)));
    trips.udx.push(...(await udxRoundTrips(2000, 1024)));
    trips.dgram.push(...(await dgramRoundTrips(2000, 1024)));
    log(".");
  }
  const rate = (side) => median(streams[side].map((r) => r.bytesPerSecond)) / 2 ** 20;
  const cpu = (side) => median(streams[side].map((r) => r.cpuSecondsPerGiB));
  const STREAM = "256 MiB stream, loopback, both ends in one process";
  const UDX = "udx-native (native C, BBR, unencrypted)";
  const DGRAM = "raw node:dgram blast (no reliability; what arrives)";
  rows.push({ name: `${STREAM} (Sluice: ChaCha20-Poly1305)`, unit: "MiB/s", value: rate("sluice"), baseline: UDX, baseline_value: rate("udx"), target: "≥ 1.0×" });
  rows.push({ name: STREAM, unit: "MiB/s", value: rate("sluice"), baseline: DGRAM, baseline_value: rate("dgram") });
  rows.push({ name: `${STREAM}: CPU seconds per GiB`, unit: "CPU s/GiB", value: cpu("sluice"), baseline: UDX, baseline_value: cpu("udx") });
  rows.push({ name: `${STREAM}: CPU seconds per GiB`, unit: "CPU s/GiB", value: cpu("sluice"), baseline: DGRAM, baseline_value: cpu("dgram") });
  const ROUND = "1 KiB request/response round trip";
  rows.push({ name: `${ROUND} p50 (${(2000 * RUNS).toLocaleString("en")} over ${RUNS} runs)`, unit: "µs", value: percentile(trips.sluice, 50) * 1000, baseline: UDX, baseline_value: percentile(trips.udx, 50) * 1000, target: "≤ 1.2×" });
  rows.push({ name: `${ROUND} p99`, unit: "µs", value: percentile(trips.sluice, 99) * 1000, baseline: UDX, baseline_value: percentile(trips.udx, 99) * 1000 });
  rows.push({ name: `${ROUND} p50`, unit: "µs", value: percentile(trips.sluice, 50) * 1000, baseline: "raw node:dgram ping-pong", baseline_value: percentile(trips.dgram, 50) * 1000 });

  log(" Deno ");
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const transfer = new URL("../demo/deno-transfer.ts", import.meta.url).pathname;
  const denoRates = [];
  const nodeRates = [];
  for (let run = 0; run < RUNS; run++) {
    denoRates.push(JSON.parse(execFileSync(deno, ["run", "-A", "--unstable-net", transfer], { encoding: "utf8" })).mibPerSecond);
    nodeRates.push((await sluiceStream(64 * 2 ** 20)).bytesPerSecond / 2 ** 20);
    log(".");
  }
  rows.push({ name: "64 MiB stream in Deno over Deno.listenDatagram", unit: "MiB/s", value: median(denoRates), baseline: "the same in Node", baseline_value: median(nodeRates) });
}

if (section("peers")) {
  log("\npeers in separate processes ");
  const contenders = process.argv.indexOf("--contenders");
  rows.push(...(await peerRows({
    runs: RUNS,
    log,
    options: {
      streamBytes: option("--stream-mib", 64) * 2 ** 20,
      roundTrips: option("--round-trips", 2000),
      connectSamples: option("--connect-samples", 20),
      ...(contenders > 0 ? { contenders: process.argv[contenders + 1].split(",") } : {}),
    },
  })));
}

if (section("relay")) {
  log("\nrelay: a gateway and two firewalled peers in separate processes ");
  rows.push(...(await relayRows({
    runs: RUNS,
    log,
    options: {
      streamBytes: option("--stream-mib", 32) * 2 ** 20,
      roundTrips: option("--round-trips", 2000),
      moveSamples: option("--move-samples", 8),
      ...(process.argv.includes("--relay-profiles") ? { profiles: process.argv[process.argv.indexOf("--relay-profiles") + 1] } : {}),
    },
  })));
}

// One run whatever --runs says: the phases build on each other on one gateway and take minutes.
if (section("scale")) {
  log("\nscale: ");
  rows.push(...(await scaleRows({
    log,
    options: {
      connections: option("--scale-connections", 10_000),
      storm: option("--scale-storm", 1_000),
      idleSeconds: option("--idle-seconds", 20),
      ...(process.argv.includes("--queue-packets") ? { queuePackets: option("--queue-packets") } : {}),
      ...(process.argv.includes("--peer-keep-alive-ms") ? { peerKeepAliveMs: option("--peer-keep-alive-ms") } : {}),
      ...(process.argv.includes("--idle-profile") ? { idleProfile: process.argv[process.argv.indexOf("--idle-profile") + 1] } : {}),
    },
  })));
}

log("\n\n");
report(rows, json);
