// Receives files over Sluice and checks each one's SHA-256: a gateway that saves what
// examples/file-sender.mjs sends into a folder.
//   node examples/file-receiver.mjs <folder> [port]
// A sender first sends one message, {"name", "bytes", "sha256"}, then the contents as a stream; the
// receiver answers with one message, {"saved", "bytes", "sha256", "ok"}. Ctrl-C stops it.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { basename, join } from "node:path";
import { Writable } from "node:stream";
import { Transport } from "sluice";

const [folder, port = "0"] = process.argv.slice(2);
if (folder === undefined) {
  console.error("usage: node examples/file-receiver.mjs <folder> [port]");
  process.exit(2);
}
const gateway = await Transport.bind({ host: "127.0.0.1", port: Number(port), gateway: true });
const { host, port: bound } = gateway.address;
console.log(`receiving into ${folder} on ${host}:${bound}, public key ${Buffer.from(gateway.publicKey).toString("hex")}`);
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void gateway.close());

for (let connection = await gateway.accept(); connection !== undefined; connection = await gateway.accept()) {
  void receive(connection).catch((error) => console.log(`transfer failed: ${error.message}`));
}

async function receive(connection) {
  const header = JSON.parse(new TextDecoder().decode(await connection.recv()));
  const readable = await connection.acceptStream();
  // basename: a sender names the file, never where it goes.
  const saved = join(folder, basename(String(header.name)));
  const hash = createHash("sha256");
  let bytes = 0;
  const hashing = new TransformStream({
    transform(chunk, controller) {
      hash.update(chunk);
      bytes += chunk.length;
      controller.enqueue(chunk);
    },
  });
  await readable.pipeThrough(hashing).pipeTo(Writable.toWeb(createWriteStream(saved)));
  const sha256 = hash.digest("hex");
  const ok = sha256 === header.sha256 && bytes === header.bytes;
  console.log(`${saved}: ${bytes} bytes, SHA-256 ${sha256} ${ok ? "matches" : "DOES NOT MATCH"}`);
  await connection.send(new TextEncoder().encode(JSON.stringify({ saved, bytes, sha256, ok })));
  for await (const _ of connection); // until the sender closes
}
