// The main job: two transports on loopback, a handshake, one 64 MiB stream with a progress bar,
// then throughput, RTT and the counters. `npm start` runs it.
import { createHash, randomFillSync } from "node:crypto";
import { Transport } from "../dist/index.js";

const TOTAL_BYTES = 64 * 2 ** 20;
const CHUNK_BYTES = 256 * 1024;
const BAR_WIDTH = 40;

const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);

function progress(done, started) {
  const fraction = done / TOTAL_BYTES;
  const filled = Math.round(fraction * BAR_WIDTH);
  const rate = done / 2 ** 20 / ((performance.now() - started) / 1000 || 1);
  const line = `[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${mib(done)} / ${mib(TOTAL_BYTES)} MiB  ${rate.toFixed(1)} MiB/s`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`);
  else if (done === TOTAL_BYTES || Math.floor(fraction * 10) !== Math.floor(((done - CHUNK_BYTES) / TOTAL_BYTES) * 10)) console.log(line);
}

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true });
const peer = await Transport.bind({ host: "127.0.0.1" });
console.log(`gateway ${gateway.address.host}:${gateway.address.port}, peer ${peer.address.host}:${peer.address.port}`);

const handshakeStarted = performance.now();
const [sending, receiving] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
console.log(`handshake: ${(performance.now() - handshakeStarted).toFixed(2)} ms (Noise IK: X25519, BLAKE2s, ChaCha20-Poly1305); the gateway saw us as ${peer.externalAddress.host}:${peer.externalAddress.port}`);

const chunk = new Uint8Array(CHUNK_BYTES);
const sentHash = createHash("sha256");
const started = performance.now();
const write = (async () => {
  const writer = sending.openStream().getWriter();
  for (let at = 0; at < TOTAL_BYTES; at += CHUNK_BYTES) {
    randomFillSync(chunk);
    sentHash.update(chunk);
    await writer.write(chunk);
  }
  await writer.close(); // resolves once the end is queued (the reader's end below is when all arrived)
})();

const receivedHash = createHash("sha256");
const reader = (await receiving.acceptStream()).getReader();
let received = 0;
let shown = 0;
for (let read = await reader.read(); !read.done; read = await reader.read()) {
  receivedHash.update(read.value);
  received += read.value.length;
  if (received - shown >= CHUNK_BYTES || received === TOTAL_BYTES) progress((shown = received), started);
}
await write;
const seconds = (performance.now() - started) / 1000;
if (process.stdout.isTTY) process.stdout.write("\n");

const same = sentHash.digest("hex") === receivedHash.digest("hex");
const { delivery, sent } = sending.stats();
console.log(`\n${mib(received)} MiB in ${seconds.toFixed(2)} s: ${(received / 2 ** 20 / seconds).toFixed(1)} MiB/s, SHA-256 ${same ? "identical at both ends" : "DIFFERS"}`);
console.log(`RTT: smoothed ${delivery.rttMs.toFixed(2)} ms, minimum ${delivery.minRttMs.toFixed(3)} ms, RTO ${delivery.rtoMs} ms`);
console.log(`sender: ${sent} datagrams, ${delivery.packetsLost} declared lost, ${delivery.tailLossProbes} tail-loss probes, ${delivery.retransmissionTimeouts} RTOs, congestion window ${mib(delivery.congestionWindowBytes)} MiB`);
const received_ = receiving.stats();
console.log(`receiver: ${received_.routed} datagrams routed, ${received_.delivery.ackOnlyPackets} pure ACKs sent`);
const totals = gateway.stats();
const drops = Object.entries(totals.drops).filter(([, n]) => n > 0).map(([reason, n]) => `${reason} ${n}`).join(", ") || "none";
console.log(`gateway listener: ${totals.datagramsReceived} datagrams received, ${totals.datagramsRouted} routed; drops: ${drops}`);

await sending.close();
await Promise.all([peer.close(), gateway.close()]);
if (!same) process.exitCode = 1;
