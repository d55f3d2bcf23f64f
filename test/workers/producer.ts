// A sending thread for the tests. For each handle it receives, it makes `senders` senders on that
// handle's lane (the first from the handle, the rest clones), and each sends `perSender` packets of
// 8 bytes: [sender id u32 LE, sequence u32 LE]. Senders run as concurrent async tasks; each closes
// when done. Answers { sent } once all are done.
import { parentPort } from "node:worker_threads";
import { Sender, type SenderHandle } from "sluice";

export interface ProduceRequest {
  handles: SenderHandle[];
  senders: number;
  perSender: number;
  /** Each sender's id is firstId + its index across all handles. */
  firstId: number;
}

async function runSender(sender: Sender, id: number, count: number): Promise<number> {
  const packet = new Uint8Array(8);
  const view = new DataView(packet.buffer);
  view.setUint32(0, id, true);
  let sent = 0;
  for (let seq = 0; seq < count; seq++) {
    view.setUint32(4, seq, true);
    if ((await sender.send(packet)) === "sent") sent++;
    // Let the other senders of this thread interleave, as separate tasks would.
    if ((seq & 7) === 7) await new Promise((resolve) => setImmediate(resolve));
  }
  sender.close();
  return sent;
}

parentPort!.on("message", async (request: ProduceRequest) => {
  const tasks: Promise<number>[] = [];
  let id = request.firstId;
  for (const handle of request.handles) {
    const first = Sender.fromHandle(handle);
    const senders = [first];
    for (let i = 1; i < request.senders; i++) senders.push(first.clone());
    for (const sender of senders) tasks.push(runSender(sender, id++, request.perSender));
  }
  const sent = (await Promise.all(tasks)).reduce((a, b) => a + b, 0);
  parentPort!.postMessage({ sent });
});
parentPort!.postMessage("ready");
