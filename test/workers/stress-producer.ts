// A seeded random producer for test/stress.test.ts: packets of random size (8..maxPacketSize) whose
// bytes follow patternByte(); random mix of trySend (then send when full), send, flush and yields.
import { parentPort } from "node:worker_threads";
import { Sender, type SenderHandle } from "sluice";
import { mulberry32, patternByte } from "../support/random.ts";

parentPort!.on("message", async ({ handle, id, count, seed }: { handle: SenderHandle; id: number; count: number; seed: number }) => {
  const random = mulberry32(seed);
  const sender = Sender.fromHandle(handle);
  const buffer = new Uint8Array(sender.maxPacketSize);
  const view = new DataView(buffer.buffer);
  for (let seq = 0; seq < count; seq++) {
    const size = 8 + Math.floor(random() * (sender.maxPacketSize - 7));
    view.setUint32(0, id, true);
    view.setUint32(4, seq, true);
    for (let i = 8; i < size; i++) buffer[i] = patternByte(id, seq, i);
    const packet = buffer.subarray(0, size);
    const roll = random();
    if (roll < 0.6) {
      if (sender.trySend(packet) !== "sent") await sender.send(packet);
    } else {
      await sender.send(packet);
    }
    if (roll > 0.97) sender.flush();
    if (roll < 0.05) await new Promise((resolve) => setImmediate(resolve));
  }
  sender.close();
  parentPort!.postMessage({ sent: count });
});
parentPort!.postMessage("ready");
