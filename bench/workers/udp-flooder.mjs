// Floods one UDP port from another thread: `count` datagrams of `stride` bytes, the i-th being
// packet (i mod distinct) of `packets` (one buffer, packets back to back), in bursts of 64, each
// burst waiting for the socket to take it so the send queue stays bounded. Answers { sent }.
import { createSocket } from "node:dgram";
import { parentPort } from "node:worker_threads";

const BURST = 64;
const socket = createSocket("udp4");
await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
parentPort.on("message", async ({ port, packets, stride, distinct, count }) => {
  const views = Array.from({ length: distinct }, (_, i) => packets.subarray(i * stride, (i + 1) * stride));
  let sent = 0;
  while (sent < count) {
    const burst = Math.min(BURST, count - sent);
    await new Promise((resolve) => {
      for (let b = 0; b < burst; b++, sent++) socket.send(views[sent % distinct], port, "127.0.0.1", b === burst - 1 ? resolve : undefined);
    });
  }
  parentPort.postMessage({ sent });
});
parentPort.postMessage("ready");
