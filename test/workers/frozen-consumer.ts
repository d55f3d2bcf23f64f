// A consumer thread that takes the receiving end, then freezes in Atomics.wait (a stalled connection
// task) until the test opens the gate; then it drains what is queued and answers the count.
import { parentPort } from "node:worker_threads";
import { Receiver, type ReceiverHandle } from "sluice";

parentPort!.on("message", ({ handle, gate }: { handle: ReceiverHandle; gate: Int32Array }) => {
  const receiver = Receiver.fromHandle(handle);
  parentPort!.postMessage("frozen");
  Atomics.wait(gate, 0, 0); // this thread runs nothing at all until the gate opens
  let drained = 0;
  while (receiver.tryRecv() instanceof Uint8Array) drained++;
  parentPort!.postMessage({ drained });
});
parentPort!.postMessage("ready");
