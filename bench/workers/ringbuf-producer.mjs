// Benchmark producer thread: ringbuf.js wrapped in the same sleep/notify protocol as Sluice (see
// bench/ringbuf-wake.mjs): fixed-size records pushed into a byte ring in a SharedArrayBuffer.
import { parentPort } from "node:worker_threads";
import { RingBuffer } from "ringbuf.js";
import { CONTROL, wakeConsumer, waitForSpace } from "../ringbuf-wake.mjs";

parentPort.on("message", async ({ storage, control, count, size }) => {
  const ring = new RingBuffer(storage, Uint8Array);
  const words = new Int32Array(control);
  const packet = new Uint8Array(size).fill(1);
  for (let i = 0; i < count; i++) {
    if (ring.availableWrite() < size) await waitForSpace(ring, words, size);
    ring.push(packet);
    wakeConsumer(words);
  }
  Atomics.store(words, CONTROL.DONE, 1);
  Atomics.add(words, CONTROL.WAKE_SEQ, 1);
  Atomics.notify(words, CONTROL.WAKE_SEQ);
});
parentPort.postMessage("ready");
