// The gateway of the relay benchmark, in a process of its own: it holds every peer's connection (the
// introductions and the relays run over them) and reports, over IPC, its relay counters and its CPU.
import { Transport } from "sluice";
import { serve } from "../lib/rpc.mjs";

let gateway;
const held = new Set();

serve({
  async bind(options) {
    gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, acceptRamp: [], log: null, ...options });
    (async () => {
      for (let connection = await gateway.accept(); connection !== undefined; connection = await gateway.accept()) {
        held.add(connection);
        connection.whenClosed.then(() => held.delete(connection), () => held.delete(connection));
      }
    })();
    return { address: gateway.address, publicKey: Buffer.from(gateway.publicKey).toString("hex") };
  },
  cpu() {
    const { user, system } = process.cpuUsage();
    return user + system;
  },
  stats() {
    const { datagramsRelayed, bytesRelayed, relays, drops } = gateway.stats();
    return { datagramsRelayed, bytesRelayed, relays, drops };
  },
  async close() {
    await gateway.close();
    setImmediate(() => process.exit(0));
  },
});
