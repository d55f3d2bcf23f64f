// The idle gateway's floor on this machine: a raw node:dgram socket that answers each datagram with
// one of the same size (what a keep-alive and its ACK cost the kernel), no crypto, no state.
import { createSocket } from "node:dgram";
import { serve } from "../lib/rpc.mjs";
import { cpuOver } from "./measure.mjs";

const socket = createSocket({ type: "udp4" });
let answered = 0;
socket.on("message", (datagram, remote) => {
  answered++;
  socket.send(datagram, remote.port, remote.address);
});

serve({
  async bind() {
    await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
    return { port: socket.address().port };
  },
  async cpu({ seconds }) {
    const before = answered;
    const { percent, loopDelay } = await cpuOver(seconds);
    return { percent, loopDelay, perSecond: (answered - before) / seconds };
  },
});
