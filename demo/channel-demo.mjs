// The channel on its own (no network): a worker thread produces 1200-byte packets into a Sluice
// channel and the main thread receives them, printing a live packets/s line.
//   node demo/channel-demo.mjs                (5 seconds)
//   node demo/channel-demo.mjs --seconds 20
import { Worker } from "node:worker_threads";
import { channel } from "sluice";

const secondsArg = process.argv.indexOf("--seconds");
const seconds = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 5;
if (!(seconds > 0)) throw new RangeError("--seconds needs a positive number");

const [tx, rx] = channel(2048);
const worker = new Worker(new URL("./producer-worker.mjs", import.meta.url));
worker.postMessage({ sender: tx.toHandle(), seconds });
tx.close(); // the worker's lane is the only sender now: the stream ends when it closes

let packets = 0;
let bytes = 0;
let lastPackets = 0;
let lastTime = performance.now();
const ticker = setInterval(() => {
  const now = performance.now();
  const rate = ((packets - lastPackets) * 1000) / (now - lastTime);
  lastPackets = packets;
  lastTime = now;
  process.stdout.write(`\r${(rate / 1e6).toFixed(2)} M packets/s   ${((rate * 1200 * 8) / 1e9).toFixed(1)} Gbit/s   ${packets.toLocaleString()} received   `);
}, 250);

for (;;) {
  const count = await rx.recvBatch((_bytes, _offset, length) => {
    bytes += length;
  });
  if (count === 0) break;
  packets += count;
}
clearInterval(ticker);
process.stdout.write(`\n${packets.toLocaleString()} packets (${(bytes / 2 ** 20).toFixed(0)} MiB) from a worker in ${seconds} s; the producer waited asleep whenever the queue was full.\n`);
await worker.terminate();
