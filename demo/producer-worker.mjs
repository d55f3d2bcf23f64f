import { parentPort } from "node:worker_threads";
import { Sender } from "sluice";

parentPort.once("message", async ({ sender: handle, seconds }) => {
  const sender = Sender.fromHandle(handle);
  const packet = new Uint8Array(1200);
  const end = performance.now() + seconds * 1000;
  let sequence = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 256; i++) {
      packet[0] = sequence++;
      if (sender.trySend(packet) !== "sent" && (await sender.send(packet)) === "closed") return;
    }
  }
  sender.close();
});
