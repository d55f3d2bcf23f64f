// Across threads, worker → main, 1200-byte packets; the main thread's receiver sleeps when idle.
// Each consumer reads every packet's first byte.
import { MessageChannel, Worker } from "node:worker_threads";
import { RingBuffer } from "ringbuf.js";
import { channel } from "sluice";
import { CONTROL, consumeAll } from "./ringbuf-wake.mjs";
import { PACKET_BYTES } from "./same-thread.mjs";

export const CAPACITY = 2048; // packets in flight at most, for every contender
const ACK_EVERY = 256;

export async function startProducer(name) {
  const worker = new Worker(new URL(`./workers/${name}.mjs`, import.meta.url));
  await new Promise((resolve) => worker.once("message", resolve));
  return worker;
}

export function finish(count, checksum, started) {
  if (checksum !== count) throw new Error(`lost packets: ${checksum} of ${count}`);
  return count / ((performance.now() - started) / 1000);
}

export async function sluiceCrossThread(worker, count) {
  const [tx, rx] = channel(CAPACITY);
  let checksum = 0;
  const visit = (bytes, offset) => {
    checksum += bytes[offset];
  };
  const started = performance.now();
  worker.postMessage({ handle: tx.toHandle(), count, size: PACKET_BYTES });
  tx.close();
  while ((await rx.recvBatch(visit)) > 0);
  return finish(count, checksum, started);
}

export async function portCrossThread(worker, count, perMessage) {
  const { port1, port2 } = new MessageChannel();
  let checksum = 0;
  let unacked = 0;
  const started = performance.now();
  await new Promise((resolve) => {
    port1.on("message", (message) => {
      if (message === "done") return resolve();
      const packets = perMessage === 1 ? [message] : message;
      for (const packet of packets) checksum += packet[0];
      unacked += packets.length;
      if (unacked >= ACK_EVERY) {
        port1.postMessage(unacked);
        unacked = 0;
      }
    });
    worker.postMessage({ port: port2, count, size: PACKET_BYTES, perMessage, window: CAPACITY }, [port2]);
  });
  port1.close();
  return finish(count, checksum, started);
}

export async function ringbufCrossThread(worker, count) {
  const storage = RingBuffer.getStorageForCapacity(CAPACITY * PACKET_BYTES, Uint8Array);
  const control = new SharedArrayBuffer(CONTROL.WORDS * 4);
  const ring = new RingBuffer(storage, Uint8Array);
  let checksum = 0;
  const started = performance.now();
  worker.postMessage({ storage, control, count, size: PACKET_BYTES });
  await consumeAll(ring, new Int32Array(control), PACKET_BYTES, (record) => {
    checksum += record[0];
  });
  return finish(count, checksum, started);
}
