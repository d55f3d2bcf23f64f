// A gateway on its own thread for test/stalled-loop.test.ts: it answers { port, publicKey }, then
// echoes every message of every connection it accepts until told "close" (it closes and answers
// "closed"). On its own event loop, it answers while the test's thread is blocked.
import { parentPort } from "node:worker_threads";
import { Transport } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, acceptRamp: [] });
parentPort!.once("message", () => void gateway.close().then(() => parentPort!.postMessage("closed")));
parentPort!.postMessage("ready");
parentPort!.postMessage({ port: gateway.address.port, publicKey: gateway.publicKey });
for (let connection = await gateway.accept(); connection !== undefined; connection = await gateway.accept()) {
  const echoing = connection;
  void (async () => {
    for (let message = await echoing.recv(); message !== undefined; message = await echoing.recv()) await echoing.send(message);
  })().catch(() => {});
}
