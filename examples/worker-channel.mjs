// A channel between threads: a worker produces packets into shared memory, the main thread consumes
// them. Nothing is copied through postMessage but the handle; a full channel makes the worker sleep,
// an empty one the main thread.
//   node examples/worker-channel.mjs [packets]
import { isMainThread, Worker, workerData } from "node:worker_threads";
import { channel, Sender } from "sluice";

if (isMainThread) {
  const packets = Number(process.argv[2] ?? 100_000);
  const [tx, rx] = channel(1024); // 1024 packets of up to 1500 bytes in each lane
  // The handle gives the worker a lane of its own into this channel.
  const worker = new Worker(new URL(import.meta.url), { workerData: { handle: tx.toHandle(), packets } });
  // Listened for at once: the worker may be gone before the last packet is read here.
  const exited = new Promise((resolve) => worker.once("exit", resolve));
  tx.close(); // this thread sends nothing: the stream ends once the worker's sender closes and the queue drains
  const started = performance.now();
  let received = 0;
  let inOrder = true;
  for await (const packet of rx) {
    // A packet is a view into a shared 64 KiB slab: read it through its byteOffset.
    const sequence = new DataView(packet.buffer, packet.byteOffset, packet.byteLength).getUint32(0, true);
    inOrder &&= sequence === received;
    received++;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`received ${received} packets in order: ${inOrder} (${Math.round(received / seconds).toLocaleString("en-US")} packets/s)`);
  await exited;
} else {
  const tx = Sender.fromHandle(workerData.handle);
  const packet = new Uint8Array(64);
  const view = new DataView(packet.buffer);
  for (let sequence = 0; sequence < workerData.packets; sequence++) {
    view.setUint32(0, sequence, true);
    if ((await tx.send(packet)) === "closed") break; // sleeps while the channel is full
  }
  tx.close(); // the worker then exits by itself: nothing else keeps it alive
}
