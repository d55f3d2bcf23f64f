// The strangers benchmark's flooder, in a process of its own (its CPU is neither the gateway's nor
// the legitimate node's): datagrams from FLOOD_PORTS ports of another loopback address, at a rate.
import { createSocket } from "node:dgram";
import { serve } from "../lib/rpc.mjs";

const FLOOD_HOST = "127.0.0.3";
const FLOOD_PORTS = 256;
/** Datagrams per send burst: small, so the gateway's receive buffer never overflows. */
const BURST = 64;

const sockets = [];
for (let i = 0; i < FLOOD_PORTS; i++) {
  const socket = createSocket("udp4");
  await new Promise((resolve) => socket.bind(0, FLOOD_HOST, resolve));
  sockets.push(socket);
}

serve({
  /**
   * Sends the datagrams (base64, cycled) `count` times to `port` on 127.0.0.1, from the ports in turn:
   * as fast as the sockets take them, or at `perSecond`.
   */
  async flood({ datagrams, count, port, perSecond }) {
    const buffers = datagrams.map((datagram) => Buffer.from(datagram, "base64"));
    const started = performance.now();
    let sent = 0;
    while (sent < count) {
      await new Promise((resolve) => {
        const burst = Math.min(BURST, count - sent);
        for (let i = 0; i < burst; i++, sent++) sockets[sent % FLOOD_PORTS].send(buffers[sent % buffers.length], port, "127.0.0.1", i === burst - 1 ? resolve : undefined);
      });
      if (perSecond !== undefined) {
        const due = started + (sent / perSecond) * 1000;
        if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
      }
    }
    return sent;
  },
  close() {
    for (const socket of sockets) socket.close();
    setImmediate(() => process.exit(0));
  },
});
