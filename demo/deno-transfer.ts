// The main job in Deno: a 64 MiB stream (or the MiB given) over loopback, SHA-256 compared at both
// ends. Prints what happened as JSON. Run with --unstable-net for Deno.listenDatagram, without it for
// Deno's node:dgram.
//   node_modules/.bin/deno run -A --unstable-net demo/deno-transfer.ts [MiB]
import { createHash } from "node:crypto";
import { argv } from "node:process";
import { Transport } from "sluice";

const TOTAL_BYTES = Number(argv[2] ?? 64) * 2 ** 20;
const CHUNK_BYTES = 256 * 1024;

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const joiner = await Transport.bind({ host: "127.0.0.1", log: null });
const [sending, receiving] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
const started = performance.now();
const sentHash = createHash("sha256");
const write = (async () => {
  const writer = sending.openStream().getWriter();
  const chunk = new Uint8Array(CHUNK_BYTES);
  for (let at = 0; at < TOTAL_BYTES; at += CHUNK_BYTES) {
    chunk.fill(at / CHUNK_BYTES);
    chunk[0] = at % 251;
    sentHash.update(chunk);
    await writer.write(chunk);
  }
  await writer.close();
})();
const receivedHash = createHash("sha256");
let bytes = 0;
const reader = (await receiving!.acceptStream())!.getReader();
for (let read = await reader.read(); !read.done; read = await reader.read()) {
  receivedHash.update(read.value);
  bytes += read.value.length;
}
await write;
const seconds = (performance.now() - started) / 1000;
const { socket, listenerErrors } = gateway.stats();
await sending.close();
await Promise.all([gateway.close(), joiner.close()]);
console.log(JSON.stringify({ socket, bytes, sameSha256: sentHash.digest("hex") === receivedHash.digest("hex"), listenerErrors, mibPerSecond: Math.round(bytes / 2 ** 20 / seconds) }));
