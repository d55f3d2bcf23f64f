// The listener's receive rate in Deno, for bench/run.mjs, which floods it from Node in the same run.
// Run with --unstable-net for Deno.listenDatagram, without it for Deno's node:dgram.
//   deno run -A [--unstable-net] bench/deno/listener.ts raw|routed
// Prints one JSON line { port, id } when ready (id: the connection to flood, for "routed"), then,
// once no datagram has come for IDLE_MS, one line { socket, handled, rate } and exits.
//  - raw: the runtime's socket, a handler that only counts.
//  - routed: Sluice's listener routes each datagram to a connection's queue; its consumer counts.
import { bypassForBenchmark } from "sluice/internal";
import { connectedPair } from "../lib/pair.mjs";

interface DenoDatagramConn {
  addr: { port: number };
  receive(buffer?: Uint8Array): Promise<[Uint8Array, unknown]>;
  close(): void;
}
interface DenoApi {
  args: string[];
  listenDatagram?: (options: { transport: "udp"; hostname: string; port: number }) => DenoDatagramConn;
  exit(code: number): never;
}
const deno = (globalThis as unknown as { Deno: DenoApi }).Deno;

const IDLE_MS = 300;
const FLOOD_BYTES = 1200;
const clock = { first: 0, last: 0, count: 0 };
function tick(): void {
  const now = performance.now();
  if (clock.count++ === 0) clock.first = now;
  clock.last = now;
}

async function rawSocket(): Promise<{ port: number; kind: string; close: () => void }> {
  if (deno.listenDatagram !== undefined) {
    const conn = deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const buffer = new Uint8Array(65536);
    let open = true;
    (async () => {
      while (open) {
        try {
          await conn.receive(buffer);
        } catch {
          return;
        }
        tick();
      }
    })();
    return { port: conn.addr.port, kind: "Deno.listenDatagram", close: () => { open = false; conn.close(); } };
  }
  const { createSocket } = await import("node:dgram");
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  socket.on("message", tick);
  return { port: socket.address().port, kind: "node:dgram", close: () => socket.close() };
}

async function routedPair(): Promise<{ port: number; id: number; kind: string; close: () => Promise<unknown> }> {
  const { gateway, atGateway, close } = await connectedPair({ inboundQueuePackets: 4096 });
  bypassForBenchmark(atGateway, (_bytes: Uint8Array, _at: number, length: number) => {
    if (length === FLOOD_BYTES) tick(); // the flood's datagrams only, not the pair's own packets
  });
  return { port: gateway.address.port, id: atGateway.stats().id, kind: gateway.stats().socket, close };
}

const receiver = deno.args[0] === "routed" ? await routedPair() : { ...(await rawSocket()), id: 0 };
console.log(JSON.stringify({ port: receiver.port, id: receiver.id }));
for (let seen = -1; seen !== clock.count || seen === 0;) {
  seen = clock.count;
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
}
await receiver.close();
console.log(JSON.stringify({ socket: receiver.kind, handled: clock.count, rate: clock.count / ((clock.last - clock.first) / 1000) }));
deno.exit(0);
