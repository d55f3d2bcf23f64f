// Sluice through its public API: a gateway Transport listens; each dialer is a Transport of its own
// (one UDP socket) that connects with the gateway's address and public key. Streams for the
// transfer (openStream / acceptStream), messages for request/response (send / recv). Datagrams are
// at most MAX_SEND_DATAGRAM_BYTES (1200), Sluice's fixed size today (seen on the wire: 1200).
import { Transport } from "../../dist/index.js";
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
  };
}

export const sluice = {
  async listen() {
    // No accept ramp: the connect test opens a few dozen connections a second from fresh ports.
    const gateway = await Transport.bind({ host: HOST, gateway: true, log: null, acceptRamp: [] });
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
    const transport = await Transport.bind({ host: loopbackHost(dialers++, 21), log: null, maxConnections: 2, maxHandshakes: 2 });
    return {
      dial: async (info) => sluiceConnection(await transport.connect(info.address, info.publicKey)),
      close: () => transport.close(),
    };
  },
};
