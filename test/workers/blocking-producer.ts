// A producer thread that sends, optionally flushes, then blocks its whole thread in Atomics.wait
// until the test opens the gate (so its current task does not end meanwhile).
import { parentPort } from "node:worker_threads";
import { Sender, type SenderHandle } from "sluice";

parentPort!.on("message", ({ handle, gate, count, flush }: { handle: SenderHandle; gate: Int32Array; count: number; flush: boolean }) => {
  const sender = Sender.fromHandle(handle);
  for (let i = 0; i < count; i++) sender.trySend(new Uint8Array([i]));
  if (flush) sender.flush();
  parentPort!.postMessage("sent");
  Atomics.wait(gate, 0, 0);
  sender.close();
});
parentPort!.postMessage("ready");
