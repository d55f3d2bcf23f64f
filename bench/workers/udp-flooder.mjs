// Floods one UDP port from another thread: `packets` (cycled) until `count` are sent, in bursts of
// 64, each burst waiting for the socket to take it so the send queue stays bounded. Answers { sent }.
import { createSocket } from "node:dgram";
import { parentPort } from "node:worker_threads";

const socket = createSocket("udp4");
await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
parentPort.on("message", async ({ port, packets, count }) => {
  let sent = 0;
  while (sent < count) {
    const burst = Math.min(64, count - sent);
    await new Promise((resolve) => {
      for (let b = 0; b < burst; b++, sent++) socket.send(packets[sent % packets.length], port, "127.0.0.1", b === burst - 1 ? resolve : undefined);
    });
  }
  parentPort.postMessage({ sent });
});
parentPort.postMessage("ready");
