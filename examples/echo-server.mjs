// An echo server: a gateway that sends every message back on the connection it came from.
//   node examples/echo-server.mjs [port]
// It prints its address and public key; a client needs both (examples/echo-client.mjs). Ctrl-C stops it.
import { Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0), gateway: true });
const { host, port } = gateway.address;
const publicKey = Buffer.from(gateway.publicKey).toString("hex");
console.log(`echo server on ${host}:${port}, public key ${publicKey}`);
console.log(`try: node examples/echo-client.mjs ${host}:${port} ${publicKey} hello`);

// Closing the gateway ends every connection, and accept() then answers undefined.
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void gateway.close());

for (let connection = await gateway.accept(); connection !== undefined; connection = await gateway.accept()) {
  void echo(connection); // each connection on its own: a slow client holds up no other
}
console.log("echo server closed");

async function echo(connection) {
  const from = `${connection.remoteAddress.host}:${connection.remoteAddress.port}`;
  try {
    for await (const message of connection) await connection.send(message);
    console.log(`${from} closed`);
  } catch (error) {
    console.log(`${from} failed: ${error.message}`);
  }
}
