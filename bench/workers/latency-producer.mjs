// Wake-up latency: every `gapMs` the worker stamps the current time into a 1200-byte packet and
// sends it, while the main thread's receiver is parked. Sluice channel or MessagePort.
import { parentPort } from "node:worker_threads";
import { Sender } from "sluice";

parentPort.on("message", async ({ handle, port, samples, gapMs }) => {
  const sender = handle ? Sender.fromHandle(handle) : undefined;
  const packet = new Uint8Array(1200);
  const stamp = new Float64Array(packet.buffer, 0, 1);
  for (let i = 0; i < samples; i++) {
    await new Promise((resolve) => setTimeout(resolve, gapMs));
    stamp[0] = performance.timeOrigin + performance.now();
    if (sender) sender.trySend(packet);
    else port.postMessage(packet);
  }
  sender?.close();
  port?.postMessage("done");
});
parentPort.postMessage("ready");
