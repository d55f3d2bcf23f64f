// The strangers benchmark's baseline: a node:dgram socket in a process of its own whose handler only
// counts, so its CPU per datagram is the platform's floor for receiving one.
import { createSocket } from "node:dgram";
import { serve } from "../lib/rpc.mjs";

let socket;
let received = 0;

serve({
  async bind() {
    socket = createSocket({ type: "udp4", recvBufferSize: 4 * 1024 * 1024 });
    socket.on("message", () => received++);
    await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
    return socket.address().port;
  },
  cpu() {
    const { user, system } = process.cpuUsage();
    return user + system;
  },
  settle() {
    return new Promise((resolve) => setTimeout(() => resolve(received), 50));
  },
  stats() {
    return { datagramsReceived: received };
  },
  close() {
    socket.close();
    setImmediate(() => process.exit(0));
  },
});
