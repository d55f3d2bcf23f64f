// A sending thread that dies holding its sender: sends three packets [0], [1], [2], publishes them,
// then throws without closing the sender (a crash: no collector will ever run on this thread).
import { workerData } from "node:worker_threads";
import { Sender } from "sluice";

const sender = Sender.fromHandle(workerData.handle);
for (let i = 0; i < 3; i++) sender.trySend(new Uint8Array([i]));
sender.flush();
throw new Error("the producer crashed");
