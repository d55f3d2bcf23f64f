// Peers on their own thread for test/stalled-loop.test.ts: told { port, publicKey, count }, it binds
// `count` transports, connects each to that gateway, answers "connected", then echoes every message
// it receives until told "close" (it closes them all and answers "closed"). On its own event loop,
// it answers while the test's thread is blocked.
import { parentPort } from "node:worker_threads";
import { Transport } from "sluice";

const peers: Transport[] = [];
parentPort!.once("message", async ({ port, publicKey, count }: { port: number; publicKey: Uint8Array; count: number }) => {
  parentPort!.once("message", () => void Promise.all(peers.map((peer) => peer.close())).then(() => parentPort!.postMessage("closed")));
  for (let i = 0; i < count; i++) {
    const peer = await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 1, maxHandshakes: 1, inboundQueuePackets: 16 });
    peers.push(peer);
    const connection = await peer.connect({ host: "127.0.0.1", port }, publicKey);
    void (async () => {
      for (let message = await connection.recv(); message !== undefined; message = await connection.recv()) await connection.send(message);
    })().catch(() => {});
  }
  parentPort!.postMessage("connected");
});
parentPort!.postMessage("ready");
