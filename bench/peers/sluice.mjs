// Sluice through its public API: a gateway Transport listens; each dialer is a Transport of its own
// (one UDP socket) that connects with the gateway's address and public key. Streams for the
// transfer (openStream / acceptStream), messages for request/response (send / recv).
// Two contenders: `sluice` with path MTU discovery off (reliability.maxDatagramBytes 1200: every
// datagram 1200 B, what the targets are held to), and `sluice+pmtu` with its defaults (discovery up
// to 1472 B; `mtu` reads back the datagram size it reached).
import { Transport } from "../../dist/index.js";
import { FIXED_DATAGRAMS } from "../lib/pair.mjs";
import { loopbackHost } from "../lib/hosts.mjs";

const HOST = "127.0.0.1";
let dialers = 0;

function sluiceConnection(connection) {
  return {
    async sendStream(chunks) {
      const writer = connection.openStream().getWriter();
      for (const chunk of chunks) await writer.write(chunk);
      await writer.close(); // resolves once the end is queued...
      await connection.flush(); // ...and this once the peer acknowledged every byte
    },
    async receiveStream(bytes, onChunk) {
      const stream = await connection.acceptStream();
      if (stream === undefined) throw new Error("the connection closed before a stream arrived");
      const reader = stream.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) onChunk(read.value);
    },
    async request(request) {
      await connection.send(request);
      await connection.recv();
    },
    echo() {
      (async () => {
        for await (const message of connection) await connection.send(message);
      })().catch(() => {});
    },
    close: () => connection.close().catch(() => {}),
    mtu: () => connection.stats().delivery.pathMtuBytes,
  };
}

/** A Sluice contender whose connections run with `reliability` options. */
const contender = (reliability) => ({
  async listen() {
    // No accept ramp: the connect test opens a few dozen connections a second from fresh ports.
    const gateway = await Transport.bind({ host: HOST, gateway: true, log: null, acceptRamp: [], reliability });
    return {
      async expect() {
        return {
          info: { address: gateway.address, publicKey: gateway.publicKey },
          accepted: gateway.accept().then(sluiceConnection),
        };
      },
      close: () => gateway.close(),
    };
  },

  async dialer() {
    // Each dialer from an address of its own, as peers are: the connect rows time 40 connects a run.
    const transport = await Transport.bind({ host: loopbackHost(dialers++, 21), log: null, maxConnections: 2, maxHandshakes: 2, reliability });
    return {
      dial: async (info) => sluiceConnection(await transport.connect(info.address, info.publicKey)),
      close: () => transport.close(),
    };
  },
});

export const sluice = contender(FIXED_DATAGRAMS);
export const sluiceDiscovering = contender({});
