// Three transports in one Deno process, the first silent (log: null): prints which socket they use
// and the warnings the other two logged, as one JSON line. Without --unstable-net (or "unstable":
// ["net"] in deno.json) Deno has no Deno.listenDatagram, and one warning says how to get it.
import { Transport } from "sluice";

const warnings: string[] = [];
const log = (message: string) => warnings.push(message);
const transports = [
  await Transport.bind({ host: "127.0.0.1", log: null }),
  await Transport.bind({ host: "127.0.0.1", log }),
  await Transport.bind({ host: "127.0.0.1", log }),
];
const { socket } = transports[0]!.stats();
await Promise.all(transports.map((transport) => transport.close()));
console.log(JSON.stringify({ socket, warnings }));
