// Child process for test/parking.test.ts. A receiver parks for ~500 ms while the only thing that will
// ever wake it is unref'd (a timer, or a worker thread): the process stays alive only if the parked
// receiver holds it. Prints one JSON line: the values received and the process CPU of each park.
//   node --expose-gc parked-receiver.mjs same-thread | worker
import { Worker } from "node:worker_threads";
import { channel } from "sluice";

const PARK_MS = 500;
const mode = process.argv[2];
const [tx, rx] = channel(10);

// The waking side: sends `value` after `delay` ms, from an unref'd timer or an unref'd worker.
let wakeLater;
if (mode === "worker") {
  const worker = new Worker(
    `const { parentPort } = require("node:worker_threads");
     parentPort.once("message", async (handle) => {
       const { Sender } = await import("sluice");
       const sender = Sender.fromHandle(handle);
       parentPort.on("message", ({ value, delay }) => setTimeout(() => sender.trySend(new Uint8Array([value])), delay));
       parentPort.postMessage("armed");
     });`,
    { eval: true },
  );
  worker.postMessage(tx.toHandle());
  tx.close();
  await new Promise((resolve) => worker.once("message", resolve));
  worker.unref();
  wakeLater = (value, delay) => worker.postMessage({ value, delay });
} else {
  wakeLater = (value, delay) => setTimeout(() => tx.trySend(new Uint8Array([value])), delay).unref();
}

// Warm-up: one packet through the same path, so first-call compilation is not billed to a park.
wakeLater(1, 10);
await rx.recv();
globalThis.gc?.();

// Three consecutive parks; the median discounts V8's own occasional background work.
const cpuMs = [];
const values = [];
for (let i = 0; i < 3; i++) {
  wakeLater(7, PARK_MS);
  const before = process.cpuUsage();
  const packet = await rx.recv();
  const cpu = process.cpuUsage(before);
  values.push(packet?.[0]);
  cpuMs.push((cpu.user + cpu.system) / 1000);
}
const median = [...cpuMs].sort((a, b) => a - b)[1];
console.log(JSON.stringify({ values, cpuMs, median }));
