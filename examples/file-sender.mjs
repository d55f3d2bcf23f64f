// Sends a file to examples/file-receiver.mjs: its name, size and SHA-256 as one message, then its
// contents as a stream (backpressure all the way from the disk), then waits for the receiver's verdict.
//   node examples/file-sender.mjs <file> <host:port> <receiver public key, hex>
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Transport } from "sluice";

const [file, address, publicKey] = process.argv.slice(2);
if (file === undefined || address === undefined || publicKey === undefined) {
  console.error("usage: node examples/file-sender.mjs <file> <host:port> <receiver public key, hex>");
  process.exit(2);
}
const at = address.lastIndexOf(":");
const receiver = { host: address.slice(0, at), port: Number(address.slice(at + 1)) };

const hash = createHash("sha256");
await pipeline(createReadStream(file), hash);
const header = { name: basename(file), bytes: (await stat(file)).size, sha256: hash.digest("hex") };

const node = await Transport.bind({ host: receiver.host.includes(":") ? "::" : "0.0.0.0" });
try {
  const connection = await node.connect(receiver, Buffer.from(publicKey, "hex"));
  const started = performance.now();
  await connection.send(new TextEncoder().encode(JSON.stringify(header)));
  // pipeTo closes the stream at the file's end; it resolves once the receiver has every byte.
  await Readable.toWeb(createReadStream(file)).pipeTo(connection.openStream());
  const verdict = JSON.parse(new TextDecoder().decode(await connection.recv()));
  const seconds = (performance.now() - started) / 1000;
  console.log(`sent ${header.name}: ${header.bytes} bytes in ${seconds.toFixed(2)} s, SHA-256 ${header.sha256}; receiver: ${verdict.ok ? "intact" : "CORRUPT"}`);
  await connection.close();
  process.exitCode = verdict.ok ? 0 : 1;
} finally {
  await node.close();
}
