// The gateway of the strangers benchmark, in a process of its own so that its CPU time is its own:
// bench/strangers.mjs floods it and asks, over IPC, for its CPU use and its counters.
import { Transport } from "sluice";
import { serve } from "../lib/rpc.mjs";

let gateway;

serve({
  async bind(options) {
    gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, acceptRamp: [], log: null, ...options });
    (async () => {
      for (let connection = await gateway.accept(); connection !== undefined; connection = await gateway.accept()) void connection.close().catch(() => {});
    })();
    return { port: gateway.address.port, publicKey: Buffer.from(gateway.publicKey).toString("hex") };
  },
  cpu() {
    const { user, system } = process.cpuUsage();
    return user + system;
  },
  /** Resolves once the event loop has had a turn: datagrams already read have been handled. */
  settle() {
    return new Promise((resolve) => setTimeout(() => resolve(gateway.stats().datagramsReceived), 50));
  },
  stats() {
    const { drops, handshakes, handshakesCompleted, cookiesSent, datagramsReceived } = gateway.stats();
    return { drops, handshakes, handshakesCompleted, cookiesSent, datagramsReceived };
  },
  async close() {
    await gateway.close();
    setImmediate(() => process.exit(0));
  },
});
