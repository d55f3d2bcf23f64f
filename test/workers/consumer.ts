// A receiving thread for test/batching.test.ts: it claims a moved receiver, reads the rest of the
// stream with `for await`, checks every packet (per-producer order from `nextSeq` on, and its bytes),
// and answers { nextSeq } at the end of the stream.
import { parentPort } from "node:worker_threads";
import { Receiver, type ReceiverHandle } from "sluice";
import { checkPatternPacket } from "../support/random.ts";

parentPort!.on("message", async ({ handle, nextSeq }: { handle: ReceiverHandle; nextSeq: number[] }) => {
  const rx = Receiver.fromHandle(handle);
  for await (const packet of rx) checkPatternPacket(packet, 0, packet.length, nextSeq);
  parentPort!.postMessage({ nextSeq });
});
parentPort!.postMessage("ready");
