// Handshake times in Deno (Deno.listenDatagram with --unstable-net, else node:dgram): prints
// { socket, times } as JSON for bench/run.mjs, which compares them with Node's in the same run.
import { Transport } from "sluice";

const { args } = (globalThis as unknown as { Deno: { args: string[] } }).Deno;

const count = Number(args[0] ?? 30);
const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, acceptRamp: [], log: null, maxConnections: count + 1, inboundQueuePackets: 16 });
const joiners = [];
for (let i = 0; i < count; i++) joiners.push(await Transport.bind({ host: "127.0.0.1", log: null, maxConnections: 1, maxHandshakes: 1, inboundQueuePackets: 16 }));
const times: number[] = [];
for (const joiner of joiners) {
  const started = performance.now();
  await joiner.connect(gateway.address, gateway.publicKey);
  times.push(performance.now() - started);
  await gateway.accept();
}
const socket = gateway.stats().socket;
await Promise.all([gateway.close(), ...joiners.map((j) => j.close())]);
console.log(JSON.stringify({ socket, times }));
