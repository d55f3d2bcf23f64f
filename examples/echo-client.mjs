// An echo client: connects to examples/echo-server.mjs, sends each word, prints each echo with its
// round-trip time, then closes.
//   node examples/echo-client.mjs <host:port> <server public key, hex> [words...]
import { Transport } from "sluice";

const [address, publicKey, ...words] = process.argv.slice(2);
if (address === undefined || publicKey === undefined) {
  console.error("usage: node examples/echo-client.mjs <host:port> <server public key, hex> [words...]");
  process.exit(2);
}
const at = address.lastIndexOf(":");
const server = { host: address.slice(0, at), port: Number(address.slice(at + 1)) };

const node = await Transport.bind({ host: server.host.includes(":") ? "::" : "0.0.0.0" });
try {
  const connection = await node.connect(server, Buffer.from(publicKey, "hex"));
  for (const word of words.length > 0 ? words : ["hello"]) {
    const started = performance.now();
    await connection.send(new TextEncoder().encode(word));
    const echoed = await connection.recv();
    console.log(`${new TextDecoder().decode(echoed)} (${(performance.now() - started).toFixed(2)} ms)`);
  }
  await connection.close(); // graceful: returns once the server has everything and acknowledged the close
} finally {
  await node.close();
}
