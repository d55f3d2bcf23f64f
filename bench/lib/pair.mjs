// A gateway and one joiner connected to it on loopback: the pair most benchmarks measure.
import { Transport } from "../../dist/index.js";

/**
 * The in-process rows are held to targets for 1200-byte datagrams (docs/benchmarks.md): path MTU
 * discovery, which would reach 1472 on loopback, is off for them.
 */
export const FIXED_DATAGRAMS = { maxDatagramBytes: 1200 };

/** `gatewayOptions` add to (or override) the gateway's; `close()` closes both transports. */
export async function connectedPair(gatewayOptions = {}) {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, maxConnections: 2, maxHandshakes: 2, reliability: FIXED_DATAGRAMS, ...gatewayOptions });
  const joiner = await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 2, maxHandshakes: 2, reliability: FIXED_DATAGRAMS });
  const [toGateway, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  return { gateway, joiner, toGateway, atGateway, close: () => Promise.all([gateway.close(), joiner.close()]) };
}
