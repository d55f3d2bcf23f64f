// Wake-up latency, worker send → main receive resolved, with the receiver asleep before each packet.
import { MessageChannel } from "node:worker_threads";
import { channel } from "sluice";
import { percentile } from "./lib/report.mjs";

const GAP_MS = 2;
const now = () => performance.timeOrigin + performance.now();
const stampOf = (bytes, offset) => new Float64Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 8))[0];

function summarize(samples) {
  const us = samples.slice(10).map((ms) => ms * 1000); // the first few include JIT warm-up
  return { p50: percentile(us, 50), p99: percentile(us, 99) };
}

export async function sluiceLatency(worker, samples) {
  const [tx, rx] = channel(64);
  const latencies = [];
  worker.postMessage({ handle: tx.toHandle(), samples, gapMs: GAP_MS });
  tx.close();
  for (;;) {
    const packet = await rx.recv();
    if (packet === undefined) break;
    latencies.push(now() - stampOf(packet, 0));
  }
  return summarize(latencies);
}

export async function portLatency(worker, samples) {
  const { port1, port2 } = new MessageChannel();
  const latencies = [];
  await new Promise((resolve) => {
    port1.on("message", (packet) => {
      if (packet === "done") return resolve();
      latencies.push(now() - stampOf(packet, 0));
    });
    worker.postMessage({ port: port2, samples, gapMs: GAP_MS }, [port2]);
  });
  port1.close();
  return summarize(latencies);
}
