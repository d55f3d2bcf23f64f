// The channel's everyday API across threads, worker → main, 1200-byte packets: the worker sends with
// Sender.fromHandle + trySend (send() when full), as bench/workers/sluice-producer.mjs does, and the
// main thread receives one packet per call, each an owned Uint8Array:
//  - `for await (const packet of rx)`;
//  - `await rx.recv()` in a loop.
// The batch path (recvBatch, views into the ring) is the cross-thread row of the channel section.
// Each consumer reads every packet's first byte, as every contender of bench/cross-thread.mjs does.
import { channel } from "sluice";
import { CAPACITY, finish } from "./cross-thread.mjs";
import { PACKET_BYTES } from "./same-thread.mjs";

/** A fresh channel whose sender goes to the worker; the clock starts as the worker is told to send. */
function start(worker, count) {
  const [tx, rx] = channel(CAPACITY);
  const started = performance.now();
  worker.postMessage({ handle: tx.toHandle(), count, size: PACKET_BYTES });
  tx.close();
  return { rx, started };
}

export async function forAwaitCrossThread(worker, count) {
  const { rx, started } = start(worker, count);
  let checksum = 0;
  for await (const packet of rx) checksum += packet[0];
  return finish(count, checksum, started);
}

export async function recvCrossThread(worker, count) {
  const { rx, started } = start(worker, count);
  let checksum = 0;
  for (let packet = await rx.recv(); packet !== undefined; packet = await rx.recv()) checksum += packet[0];
  return finish(count, checksum, started);
}
