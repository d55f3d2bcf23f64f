// A gateway and one joiner connected to it on loopback: the pair most benchmarks measure.
import { Transport } from "../../dist/index.js";

/** `gatewayOptions` add to (or override) the gateway's; `close()` closes both transports. */
export async function connectedPair(gatewayOptions = {}) {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, maxConnections: 2, maxHandshakes: 2, ...gatewayOptions });
  const joiner = await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 2, maxHandshakes: 2 });
  const [toGateway, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  return { gateway, joiner, toGateway, atGateway, close: () => Promise.all([gateway.close(), joiner.close()]) };
}
