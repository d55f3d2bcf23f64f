// CPU over a window of wall time, and optionally a V8 CPU profile of it (node:inspector, in-process):
// used by the scale benchmark's gateway and client processes.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { monitorEventLoopDelay } from "node:perf_hooks";

/** Functions a profile summary names, heaviest first. */
const HEAVIEST = 15;
/** How often the event loop's delay is sampled. */
const LOOP_DELAY_RESOLUTION_MS = 10;
/** Sampling interval of the profile, µs (V8's default is 1000). */
const SAMPLING_INTERVAL_US = 500;

/**
 * This process's CPU over `seconds` of wall time, in percent of one core, and how late its event loop
 * ran over that time (p50, p99 and max, ms): a stalled loop delays every peer's packets.
 */
export async function cpuOver(seconds) {
  const delay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  delay.enable();
  const started = performance.now();
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const used = process.cpuUsage(before);
  delay.disable();
  // The histogram holds the intervals between samples: the resolution itself is not lateness.
  const ms = (nanoseconds) => Math.max(0, nanoseconds / 1e6 - LOOP_DELAY_RESOLUTION_MS);
  return {
    percent: ((used.user + used.system) / 1000 / (performance.now() - started)) * 100,
    loopDelay: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
  };
}

/** Starts a CPU profile of this thread; `stop(path)` writes it (.cpuprofile, for DevTools) and answers its heaviest functions by self time. */
export async function startProfiler() {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
  await session.post("Profiler.start");
  return {
    async stop(path) {
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      writeFileSync(path, JSON.stringify(profile));
      return heaviest(profile);
    },
  };
}

/**
 * Self time per function (name, file:line), as a share of the busy samples: not idle, and not under
 * node:inspector (the profiler's own start, which otherwise shows as a third of a quiet window).
 */
function heaviest(profile) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const underInspector = (id) => {
    for (let at = id; at !== undefined; at = parents.get(at)) if (nodes.get(at).callFrame.url === "node:inspector") return true;
    return false;
  };
  const self = new Map();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    if (functionName === "(idle)" || underInspector(id)) return;
    const key = `${functionName || "(anonymous)"}${url ? ` ${url.split("/").pop()}:${lineNumber + 1}` : ""}`;
    const micros = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + micros);
    busy += micros;
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, HEAVIEST).map(([name, micros]) => `${((micros / busy) * 100).toFixed(1)}% ${name}`);
}
