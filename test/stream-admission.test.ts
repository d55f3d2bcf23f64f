// Many streams at once over real loopback sockets, through "sluice" alone: streams past the peer's
// limit (maxIncomingStreams, 16) and bytes ahead of a stream's reader never hold up the streams the
// peer can take, nor its messages; messages never hold up a stream; a stream that ends lets the next
// one open at once, not at the next packet that happens to go; and the peer sees a stream at its
// first bytes or its end.
import { createHash } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import type { Connection, Transport } from "sluice";
import { mulberry32 } from "./support/random.ts";
import { readAll } from "./support/streams.ts";
import { closeAll, connectedPair, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

/** `promise`'s outcome, or "pending" if it has none within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([promise, new Promise<"pending">((resolve) => setTimeout(resolve, ms, "pending"))]);
}

/** Marks `promises` handled: a test that fails leaves them to reject when its transports close. */
function handled(...promises: Array<Promise<unknown>>): void {
  for (const promise of promises) promise.catch(() => {});
}

/** Opens a stream and writes `total` seeded bytes to it in `chunkBytes` writes, then closes it: their SHA-256. */
async function writeStream(connection: Connection, seed: number, total: number, chunkBytes: number): Promise<string> {
  const hash = createHash("sha256");
  const writer = connection.openStream().getWriter();
  const random = mulberry32(seed);
  for (let at = 0; at < total; at += chunkBytes) {
    const chunk = new Uint8Array(Math.min(chunkBytes, total - at));
    for (let i = 0; i < chunk.length; i += 64) chunk[i] = random() * 256;
    hash.update(chunk);
    await writer.write(chunk);
  }
  await writer.close();
  return hash.digest("hex");
}

test("50 streams of 256 KiB opened at once, 34 past the peer's 16: every one arrives whole, read in parallel", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const count = 50;
  const total = 256 * 1024;
  // Bytes of the 34 streams the peer has not admitted yet once filled the 4 MiB send buffer: the
  // admitted streams' writers waited for room for ever, and no stream ended to admit another.
  const writers = Promise.all(Array.from({ length: count }, (_, i) => writeStream(atJoiner, i, total, 64 * 1024)));
  const readers: Array<Promise<{ sha256: string; bytes: number }>> = [];
  for (let i = 0; i < count; i++) readers.push(readAll((await atGateway.acceptStream())!));
  const [sent, received] = await Promise.all([writers, Promise.all(readers)]);
  expect(received.map((r) => r.bytes)).toEqual(Array(count).fill(total));
  expect(new Set(received.map((r) => r.sha256))).toEqual(new Set(sent));
  await atJoiner.flush(); // the last acknowledgements
  expect(atJoiner.stats().delivery.sendBufferedBytes).toBe(0);
}, 60_000);

test("two 8 MiB streams written at once, read one after the other: the second's unread bytes do not hold up the first", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const total = 8 * 2 ** 20;
  // The second stream's bytes beyond its reader's window (1 MiB) once filled the send buffer, and the
  // first stream's writer, whose reader was waiting, could add nothing more.
  const writers = Promise.all([writeStream(atJoiner, 1, total, 64 * 1024), writeStream(atJoiner, 2, total, 64 * 1024)]);
  const first = await readAll((await atGateway.acceptStream())!);
  const second = await readAll((await atGateway.acceptStream())!);
  expect([first.bytes, second.bytes]).toEqual([total, total]);
  expect([first.sha256, second.sha256]).toEqual(await writers);
}, 60_000);

test("a stream past the peer's limit opens as soon as one ends, with no other packet due for a minute", async () => {
  // No keep-alive for a minute, no path MTU probe (1200 B): nothing else would carry the credit.
  const reliability = { keepAliveMs: 60_000, maxKeepAliveMs: 60_000, maxDatagramBytes: 1200 };
  const { atJoiner, atGateway } = await connectedPair(bind, { reliability }, { reliability });
  // 16 streams (the peer's limit) of one byte and their ends, all acknowledged; the peer's reader
  // takes the bytes, and only later the ends, so no packet arrives after it does.
  const writers = Array.from({ length: 16 }, () => atJoiner.openStream().getWriter());
  await Promise.all(writers.map(async (writer) => {
    await writer.write(new Uint8Array([1]));
    await writer.close();
  }));
  await atJoiner.flush();
  const readers = [];
  for (let i = 0; i < 16; i++) {
    const reader = (await atGateway.acceptStream())!.getReader();
    expect((await reader.read()).value).toEqual(new Uint8Array([1]));
    readers.push(reader);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const reader of readers) expect((await reader.read()).done).toBe(true);
  // The 17th waits for the credit the ended streams gave back, which once went only with the next
  // packet that happened to go (here a keep-alive, a minute later).
  const seventeenth = writeStream(atJoiner, 17, 5000, 5000);
  const accepted = await within(atGateway.acceptStream(), 10_000);
  expect(accepted).not.toBe("pending");
  expect(await readAll(accepted as ReadableStream<Uint8Array>)).toEqual({ bytes: 5000, sha256: await seventeenth });
}, 30_000);

test("the peer sees a stream at its first bytes or its end, not at openStream()", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const silent = atJoiner.openStream().getWriter();
  const accepting = atGateway.acceptStream();
  expect(await within(accepting, 300)).toBe("pending"); // opening alone sends nothing
  await silent.close(); // an end with no bytes is the stream's first frame
  expect(await readAll((await accepting)!)).toMatchObject({ bytes: 0 });
  const written = atJoiner.openStream().getWriter();
  await written.write(new Uint8Array(10));
  const reader = (await atGateway.acceptStream())!.getReader();
  expect((await reader.read()).value).toEqual(new Uint8Array(10));
  await written.close();
  expect((await reader.read()).done).toBe(true);
});

test("three streams written at once in 3 MiB writes, read one after the other: bytes past a stream's credit never hold up the stream being read", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const total = 6 * 2 ** 20;
  // Each stream takes a 3 MiB write whole while it has credit; the second and third streams' 2 MiB
  // beyond their readers' windows once filled the send buffer (4 MiB), and the first stream's second
  // write, whose reader was waiting for it, waited for room for ever.
  const writers = Promise.all([1, 2, 3].map((seed) => writeStream(atJoiner, seed, total, 3 * 2 ** 20)));
  handled(writers);
  const reading = (async () => {
    const received = [];
    for (let i = 0; i < 3; i++) received.push(await readAll((await atGateway.acceptStream())!));
    return received;
  })();
  const received = await within(reading, 10_000);
  expect(received).not.toBe("pending");
  expect((received as Array<{ sha256: string }>).map((r) => r.sha256)).toEqual(await writers);
}, 30_000);

test("a stream whose one write (8 MiB) is far past its credit does not hold up messages", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  // A stream that takes one 8 MiB write, its reader not reading yet: 7 MiB beyond its credit once
  // filled the send buffer, and every send() waited for ever, with the peer's recv() waiting for them.
  const big = writeStream(atJoiner, 1, 8 * 2 ** 20, 8 * 2 ** 20);
  const sent = (async () => {
    for (let i = 0; i < 16; i++) await atJoiner.send(new Uint8Array(1000).fill(i));
  })();
  handled(big, sent);
  const messages = (async () => {
    const firsts = [];
    for (let i = 0; i < 16; i++) firsts.push((await atGateway.recv())?.[0]);
    return firsts;
  })();
  expect(await within(messages, 10_000)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  await sent;
  expect(await readAll((await atGateway.acceptStream())!)).toEqual({ bytes: 8 * 2 ** 20, sha256: await big });
}, 30_000);

test("8 MiB of un-awaited messages, half past the peer's message window, do not hold up a stream its reader takes first", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  // The 4 MiB past the peer's message window once filled the send buffer, and the stream's first
  // write waited for room for ever, while the peer read the stream before calling recv().
  const count = 128;
  const sends = Array.from({ length: count }, (_, i) => atJoiner.send(new Uint8Array(64 * 1024).fill(i)));
  handled(...sends);
  while (atJoiner.stats().delivery.messagesSent < count) await new Promise((resolve) => setTimeout(resolve, 10));
  const streamed = writeStream(atJoiner, 2, 64 * 1024, 64 * 1024);
  handled(streamed);
  const stream = await within(atGateway.acceptStream().then((readable) => readAll(readable!)), 10_000);
  expect(stream).not.toBe("pending");
  expect(stream).toEqual({ bytes: 64 * 1024, sha256: await streamed });
  for (let i = 0; i < count; i++) expect((await atGateway.recv())?.[0]).toBe(i);
  await Promise.all(sends);
}, 30_000);

test("a stream opened behind a backlog of un-awaited sends takes its first write before the backlog's last message", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  // 192 sends of 64 KiB (12 MiB), not awaited; the send buffer fills before the peer reads. A
  // stream's writer waiting for room beside them lost every turn to the send whose turn it was, and
  // its first byte waited for the whole backlog (1.6 s here, growing with the backlog).
  const count = 192;
  const sends = Array.from({ length: count }, (_, i) => atJoiner.send(new Uint8Array(64 * 1024).fill(i)));
  // The peer's message window (4 MiB) and the send buffer full: 128 sends taken.
  while (atJoiner.stats().delivery.messagesSent < 128) await new Promise((resolve) => setTimeout(resolve, 10));
  const writer = atJoiner.openStream().getWriter();
  const written = writer.write(new Uint8Array(1000)).then(() => atJoiner.stats().delivery.messagesSent);
  const receiving = (async () => {
    for (let i = 0; i < count; i++) expect((await atGateway.recv())?.[0]).toBe(i);
  })();
  handled(receiving, ...sends);
  // Taken at once, before any send of the backlog: none can be taken before the peer reads.
  expect(await written).toBe(128);
  await writer.close();
  expect((await readAll((await atGateway.acceptStream())!)).bytes).toBe(1000);
  await Promise.all([receiving, ...sends]);
}, 30_000);
