// A peer on its own thread: connects to the gateway it is given and writes one stream of `bytes`,
// then reports. Lets the main thread measure its receive path alone (listener, open, reassembly).
import { parentPort } from "node:worker_threads";
import { Transport } from "../../dist/index.js";
import { FIXED_DATAGRAMS } from "../lib/pair.mjs";

parentPort.on("message", async ({ address, publicKey, bytes }) => {
  const peer = await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 2, maxHandshakes: 2, reliability: FIXED_DATAGRAMS });
  const connection = await peer.connect(address, publicKey);
  const writer = connection.openStream().getWriter();
  const chunk = new Uint8Array(256 * 1024).fill(7);
  for (let at = 0; at < bytes; at += chunk.length) await writer.write(chunk);
  await writer.close(); // the end is queued...
  await connection.close(); // ...and delivered: a graceful close waits for every byte, then the transport's abrupt one
  await peer.close();
  parentPort.postMessage({ sent: bytes });
});
parentPort.postMessage("ready");
