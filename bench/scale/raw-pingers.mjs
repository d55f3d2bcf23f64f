// The raw floor's peers: `count` node:dgram sockets, each from a loopback address of its own, each
// sending a keep-alive-sized datagram (47 B: a Sluice PING packet) every `periodMs`, their phases
// spread evenly over the period, as the Sluice peers' keep-alives are.
import { createSocket } from "node:dgram";
import { loopbackHost } from "../lib/hosts.mjs";
import { serve } from "../lib/rpc.mjs";

const PING_BYTES = 47;
const sockets = [];

serve({
  async start({ port, count, first, periodMs }) {
    const ping = Buffer.alloc(PING_BYTES);
    for (let i = 0; i < count; i++) {
      const socket = createSocket("udp4");
      socket.on("message", () => {});
      await new Promise((resolve) => socket.bind(0, loopbackHost(first + i, 40), resolve));
      sockets.push(socket);
    }
    sockets.forEach((socket, i) => {
      const send = () => socket.send(ping, port, "127.0.0.1");
      setTimeout(() => {
        send();
        setInterval(send, periodMs);
      }, (i / count) * periodMs);
    });
  },
});
