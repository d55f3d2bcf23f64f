// Benchmark producer thread: posts `count` packets over a MessagePort, `perMessage` per message (each
// packet its own Uint8Array, copied by structured clone). Flow control: at most `window` packets in
// flight; the receiver posts back how many it consumed.
import { parentPort } from "node:worker_threads";

parentPort.on("message", async ({ port, count, size, perMessage, window }) => {
  const packets = Array.from({ length: perMessage }, () => new Uint8Array(size).fill(1));
  let inFlight = 0;
  let wake = null;
  port.on("message", (consumed) => {
    inFlight -= consumed;
    if (wake) wake();
  });
  for (let sent = 0; sent < count; sent += perMessage) {
    while (inFlight + perMessage > window) await new Promise((resolve) => (wake = resolve));
    port.postMessage(perMessage === 1 ? packets[0] : packets);
    inFlight += perMessage;
  }
  port.postMessage("done");
});
parentPort.postMessage("ready");
