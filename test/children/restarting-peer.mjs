// Child process for test/peer-restart.test.ts: a peer that registers with a gateway (it connects to
// it) under a given static key and echoes every message on every connection it accepts, until it is
// killed (SIGKILL: no CLOSE goes). With a key to dial, it also asks the gateway for that peer
// (connectVia) and echoes on that connection too. Tells the parent over IPC when it is registered.
// Usage: restarting-peer.mjs <gateway host:port> <gateway key> <secret key> [<key to dial>]
import { Transport } from "sluice";

const [gatewayAddress, gatewayKey, secretKey, dial] = process.argv.slice(2);
const [host, port] = gatewayAddress.split(":");
const node = await Transport.bind({ host: "127.0.0.1", secretKey: Buffer.from(secretKey, "hex"), log: null });

async function echo(connection) {
  try {
    for (let message = await connection.recv(); message !== undefined; message = await connection.recv()) await connection.send(message);
  } catch {
    // replaced or closed: nothing more to echo
  }
}

const toGateway = await node.connect({ host, port: Number(port) }, gatewayKey);
process.send({ registered: true, port: node.address.port });
if (dial !== undefined) void node.connectVia(toGateway, dial).then(echo, () => {});
for (let connection = await node.accept(); connection !== undefined; connection = await node.accept()) void echo(connection);
