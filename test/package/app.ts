// A small application of the installed package, as a user writes it: a gateway and a peer exchange
// a message and a stream. test/package.test.ts type-checks it under several compiler settings, runs
// it in Node and Deno, and reads the JSON line it prints.
import { Arena, Transport, type Connection, type SenderHandle } from "sluice";

const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true });
const peer = await Transport.bind({ host: "127.0.0.1" });
const [outbound, inbound] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
if (inbound === undefined) throw new Error("the gateway closed before a connection arrived");

await outbound.send(new TextEncoder().encode("hello, gateway"));
const message = await inbound.recv();

const payload = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
const received = readAll(inbound);
const writer = outbound.openStream().getWriter();
await writer.write(payload);
await writer.close();
const streamed = await received;

await outbound.close();
const { socket } = gateway.stats();
await Promise.all([peer.close(), gateway.close()]);
console.log(JSON.stringify({
  socket,
  message: message === undefined ? null : new TextDecoder().decode(message),
  streamedBytes: streamed.length,
  streamIntact: streamed.every((byte, i) => byte === payload[i]),
}));

/** The next stream `connection`'s peer opens, read to its end. */
async function readAll(connection: Connection): Promise<Uint8Array> {
  const readable = await connection.acceptStream();
  if (readable === undefined) throw new Error("the connection closed before a stream arrived");
  const chunks: Uint8Array[] = [];
  const reader = readable.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value);
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** Never called: what the published types must refuse (each line is an error the compiler must report). */
export function onlyThePublicSurface(connection: Connection, handle: SenderHandle): void {
  // @ts-expect-error transports come from Transport.bind()
  new Transport();
  // @ts-expect-error connections come from connect() and accept()
  new (connection.constructor as typeof Connection)();
  // @ts-expect-error an arena's memory is internal (and its type would need lib "dom")
  void Arena.threadDefault().memory;
  // @ts-expect-error so is a handle's
  void handle.module;
}
