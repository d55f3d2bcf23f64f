// Benchmark producer thread: sends `count` packets of `size` bytes through a Sluice sender handle as
// fast as the channel takes them (trySend; when full, send() sleeps until there is room).
import { parentPort } from "node:worker_threads";
import { Sender } from "sluice";

parentPort.on("message", async ({ handle, count, size }) => {
  const sender = Sender.fromHandle(handle);
  const packet = new Uint8Array(size).fill(1);
  for (let i = 0; i < count; i++) {
    if (sender.trySend(packet) !== "sent") await sender.send(packet);
  }
  sender.close();
});
parentPort.postMessage("ready");
