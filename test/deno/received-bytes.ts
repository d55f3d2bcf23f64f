// What Sluice hands a Deno program (a message, a stream's pieces, a channel's packet) goes straight into
// the Web APIs that take a BufferSource: crypto.subtle.digest, Blob, Response, TextDecoderStream.
// `deno check` with strict types is half the test (a Uint8Array over any ArrayBufferLike, as the
// declarations said, is refused by each of them); running it prints one JSON line.
import { channel, type Connection, Transport } from "sluice";

const hex = (digest: ArrayBuffer) => Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
const node = await Transport.bind({ host: "127.0.0.1", log: null });
const [writing, reading] = await Promise.all([node.connect(gateway.address, gateway.publicKey), gateway.accept()]) as [Connection, Connection];

const text = "über ✓ ".repeat(50_000); // multi-byte characters across pieces
const bytes = new TextEncoder().encode(text);
await writing.send(bytes);
const message = (await reading.recv())!;
const messageDigest = hex(await crypto.subtle.digest("SHA-256", message));
const messageBlob = await new Blob([message]).text();
const messageResponse = await new Response(message).text();

const writer = writing.openStream().getWriter();
void writer.write(bytes).then(() => writer.close());
let decoded = "";
const decoding = (await reading.acceptStream())!.pipeThrough(new TextDecoderStream()).getReader();
for (let read = await decoding.read(); !read.done; read = await decoding.read()) decoded += read.value;

const second = writing.openStream().getWriter();
void second.write(bytes).then(() => second.close());
const pieces: Uint8Array<ArrayBuffer>[] = [];
const reader = (await reading.acceptStream())!.getReader();
for (let read = await reader.read(); !read.done; read = await reader.read()) pieces.push(read.value);
const streamDigest = hex(await crypto.subtle.digest("SHA-256", await new Blob(pieces).arrayBuffer()));

const third = writing.openStream().getWriter();
void third.write(bytes).then(() => third.close());
const byob = (await reading.acceptStream())!.getReader({ mode: "byob" }); // a byte stream: the application's own buffer
let buffer = new ArrayBuffer(4096);
const copied: Uint8Array<ArrayBuffer>[] = [];
for (let read = await byob.read(new Uint8Array(buffer)); !read.done; read = await byob.read(new Uint8Array(buffer))) {
  copied.push(read.value.slice());
  buffer = read.value.buffer;
}
const byobDigest = hex(await crypto.subtle.digest("SHA-256", await new Blob(copied).arrayBuffer()));

// A BYOB read released while it waits: the piece written next reaches the default reader after it.
const fourth = writing.openStream().getWriter();
await fourth.write(Uint8Array.of(1));
const released = (await reading.acceptStream())!;
const byobFirst = released.getReader({ mode: "byob" });
await byobFirst.read(new Uint8Array(8));
const waiting = byobFirst.read(new Uint8Array(8)).catch(() => "released");
await new Promise((resolve) => setTimeout(resolve, 20));
byobFirst.releaseLock();
await waiting;
const after = released.getReader();
const next = after.read();
await fourth.write(Uint8Array.of(2, 3));
const timeout = new Promise<string>((resolve) => setTimeout(() => resolve("none after 2 s"), 2_000));
const afterRelease = await Promise.race([next.then((read) => Array.from(read.value!).join()), timeout]);
void fourth.close();

const [tx, rx] = channel(4);
tx.trySend(bytes.subarray(0, 100));
const packet = rx.tryRecv();
const packetDigest = typeof packet === "string" ? packet : hex(await crypto.subtle.digest("SHA-256", packet));

await Promise.all([node.close(), gateway.close()]);
const expected = hex(await crypto.subtle.digest("SHA-256", bytes));
console.log(JSON.stringify({
  message: messageDigest === expected && messageBlob === text && messageResponse === text,
  textDecoderStream: decoded === text,
  stream: streamDigest === expected,
  byob: byobDigest === expected,
  byobReleased: afterRelease === "2,3",
  packet: packetDigest === hex(await crypto.subtle.digest("SHA-256", bytes.subarray(0, 100))),
}));
