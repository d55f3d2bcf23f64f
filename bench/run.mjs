// npm run bench [-- --json] [-- --runs N]
// Every figure is the median of N runs (default 5), and every contender runs in the same process,
// interleaved run by run, so a ratio compares like with like on a noisy 2-core machine.
import { execFileSync } from "node:child_process";
import { arch, cpus, platform } from "node:os";
import { handshakeTimes, openedRate, rawRate, rawRoundTrips, routedRate, startFlooder } from "./listener.mjs";
import { portLatency, sluiceLatency } from "./latency.mjs";
import { portCrossThread, ringbufCrossThread, sluiceCrossThread, startProducer } from "./cross-thread.mjs";
import { median, percentile, report } from "./lib/report.mjs";
import { arraySameThread, ringbufSameThread, sluiceSameThread } from "./same-thread.mjs";

const json = process.argv.includes("--json");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const log = (text) => {
  if (!json) process.stderr.write(text);
};

/** Runs each contender RUNS times, interleaved; answers the median of each. */
async function medians(contenders) {
  const results = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const [name, measure] of Object.entries(contenders)) results[name].push(await measure());
    log(".");
  }
  return Object.fromEntries(Object.entries(results).map(([name, values]) => [name, median(values)]));
}

log(`Sluice benchmarks, ${RUNS} runs each, Node ${process.version}, ${platform()} ${arch()}, ${cpus().length} × ${cpus()[0]?.model}\n`);
const rows = [];
const UNIT = "packets/s";

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
const cross = await medians({
  sluice: () => sluiceCrossThread(producers.sluice, 1_000_000),
  port1: () => portCrossThread(producers.port, 250_000, 1),
  port32: () => portCrossThread(producers.port, 1_000_000, 32),
  ringbuf: () => ringbufCrossThread(producers.ringbuf, 1_000_000),
});
const crossName = "worker → main, 1200 B, receiver sleeps when idle";
rows.push({ name: crossName, unit: UNIT, value: cross.sluice, baseline: "MessagePort, 1 packet/message", baseline_value: cross.port1, target: "≥ 20×" });
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
rows.push({ name: "wake-up latency p50, worker send → main recv", unit: "µs", value: p("sluice", "p50"), baseline: "MessagePort", baseline_value: p("port", "p50"), target: "≤ 1.0×" });
rows.push({ name: "wake-up latency p99, worker send → main recv", unit: "µs", value: p("sluice", "p99"), baseline: "MessagePort", baseline_value: p("port", "p99") });

await Promise.all(Object.values(producers).map((w) => w.terminate()));

log("\ndatagram path ");
const flooder = await startFlooder();
await routedRate(flooder); // warm-up
await openedRate(flooder);
const udp = await medians({ raw: () => rawRate(flooder), routed: () => routedRate(flooder), opened: () => openedRate(flooder) });
await flooder.terminate();
const DATAGRAMS = "datagrams/s";
rows.push({ name: "UDP listener, 1200 B flood, routed to a consumer", unit: DATAGRAMS, value: udp.routed, baseline: "raw node:dgram, handler only counts", baseline_value: udp.raw, target: "≥ 0.9×" });
rows.push({ name: "UDP listener, routed + opened (AES-128-GCM) + recv()", unit: DATAGRAMS, value: udp.opened, baseline: "raw node:dgram, handler only counts", baseline_value: udp.raw, target: "≥ 0.7×" });

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
log("\n\n");
report(rows, json);
