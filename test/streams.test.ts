// Reliable delivery over real loopback sockets: large streams and messages with hashes compared,
// concurrency, backpressure, close, idle timeout and the retransmission limit.
import { createHash } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import type { Connection, Transport, TransportOptions } from "sluice";
import { mulberry32 } from "./support/random.ts";
import { readAll } from "./support/streams.ts";
import { bindTest, closeAll, filteredSocket } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

/** A gateway and a joiner, connected; `muted` silences the joiner's socket when set. */
async function connected(gatewayOptions: TransportOptions = {}, joinerOptions: TransportOptions = {}) {
  const muted = { on: false };
  const gateway = await bindTest({ gateway: true, ...gatewayOptions });
  const joiner = await bindTest({ socket: filteredSocket(() => !muted.on), ...joinerOptions });
  open.push(gateway, joiner);
  const [atJoiner, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  return { gateway, joiner, atJoiner, atGateway: atGateway!, muted };
}

/** `total` seeded pseudo-random bytes in chunks of `chunkBytes`. */
function* chunks(seed: number, total: number, chunkBytes: number): Generator<Uint8Array> {
  const random = mulberry32(seed);
  for (let at = 0; at < total; at += chunkBytes) {
    const chunk = new Uint8Array(Math.min(chunkBytes, total - at));
    const words = new Uint32Array(chunk.buffer, 0, chunk.length >> 2);
    for (let i = 0; i < words.length; i++) words[i] = random() * 2 ** 32;
    yield chunk;
  }
}

async function writeAll(connection: Connection, seed: number, total: number): Promise<string> {
  const hash = createHash("sha256");
  const writer = connection.openStream().getWriter();
  for (const chunk of chunks(seed, total, 256 * 1024)) {
    hash.update(chunk);
    await writer.write(chunk);
  }
  await writer.close();
  return hash.digest("hex");
}

// 16 MiB each: 16 stream windows, 4 message windows and 4 send buffers; more proves nothing more
// (offsets stay far below 2^32 either way; the maxMessageBytes bound is tested at 5000 bytes).
test("a 16 MiB stream arrives with the same SHA-256 at both ends; so does a 16 MiB message", async () => {
  const { atJoiner, atGateway } = await connected();
  const streamed = 16 * 2 ** 20;
  const [sent, received] = await Promise.all([writeAll(atJoiner, 1, streamed), atGateway.acceptStream().then((s) => readAll(s!))]);
  expect(received).toEqual({ sha256: sent, bytes: streamed });
  const total = 16 * 2 ** 20;
  const message = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks(2, total, 2 ** 20)) message.set(chunk, at), (at += chunk.length);
  await atGateway.send(message);
  const echoed = await atJoiner.recv();
  expect(createHash("sha256").update(echoed!).digest("hex")).toBe(createHash("sha256").update(message).digest("hex"));
  const { delivery } = atJoiner.stats();
  console.log(`16 MiB each way: RTT ${delivery.rttMs.toFixed(2)} ms, cwnd ${delivery.congestionWindowBytes} B, lost ${delivery.packetsLost}, RTOs ${delivery.retransmissionTimeouts}`);
}, 120_000);

test("over real sockets with 5% of data packets dropped each way (seeded), 4 MiB arrive intact", async () => {
  const lossy = (seed: number) => {
    const random = mulberry32(seed);
    return filteredSocket((datagram) => datagram[0] !== 0x02 || random() >= 0.05);
  };
  const gateway = await bindTest({ gateway: true, socket: lossy(51) });
  const joiner = await bindTest({ socket: lossy(52) });
  open.push(gateway, joiner);
  const [atJoiner, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const total = 4 * 2 ** 20; // ~3,500 data packets, ~170 of them lost: loss recovery at work many times over
  const [sent, received] = await Promise.all([writeAll(atJoiner, 5, total), atGateway!.acceptStream().then((s) => readAll(s!))]);
  expect(received).toEqual({ sha256: sent, bytes: total });
  expect(atJoiner.stats().delivery.packetsLost).toBeGreaterThan(0);
}, 60_000);

test("four concurrent streams each complete, and small messages pass between them", async () => {
  const { atJoiner, atGateway } = await connected();
  const total = 4 * 2 ** 20;
  const readers = (async () => {
    const results = [];
    for (let i = 0; i < 4; i++) results.push(readAll((await atGateway.acceptStream())!));
    return Promise.all(results);
  })();
  const writers = Promise.all([1, 2, 3, 4].map((seed) => writeAll(atJoiner, seed, total)));
  await atJoiner.send(new Uint8Array([42]));
  expect(await atGateway.recv()).toEqual(new Uint8Array([42]));
  const [sent, received] = await Promise.all([writers, readers]);
  expect(received.map((r) => r.bytes)).toEqual([total, total, total, total]);
  expect(new Set(received.map((r) => r.sha256))).toEqual(new Set(sent));
}, 60_000);

test("a receiver that stops reading makes the sender wait, with memory bounded", async () => {
  const { atJoiner, atGateway } = await connected();
  const writer = atJoiner.openStream().getWriter();
  const chunk = new Uint8Array(64 * 1024);
  let accepted = 0;
  let pending: Promise<void> | undefined;
  const before = process.memoryUsage().arrayBuffers;
  const started = performance.now();
  while (performance.now() - started < 1500) {
    pending = writer.write(chunk);
    const settled = await Promise.race([pending.then(() => true), new Promise((resolve) => setTimeout(resolve, 200, false))]);
    if (!settled) break;
    accepted += chunk.length;
  }
  const stream = (await atGateway.acceptStream())!; // accepted, never read (yet)
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The writer waits once the stream is the reader's window (1 MiB) ahead: nothing more is buffered.
  expect(await Promise.race([pending!.then(() => "resolved"), new Promise((resolve) => setTimeout(resolve, 100, "pending"))])).toBe("pending");
  expect(accepted).toBeLessThanOrEqual(2 ** 20 + chunk.length);
  expect(atJoiner.stats().delivery.sendBufferedBytes).toBeLessThanOrEqual(4 * 2 ** 20 + chunk.length);
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 2 ** 20);
  // Messages wait the same way behind a reader that does not call recv().
  let messagesAccepted = 0;
  for (;;) {
    const sending = atGateway.send(new Uint8Array(100_000));
    if (await Promise.race([sending.then(() => false), new Promise((resolve) => setTimeout(resolve, 200, true))])) break;
    messagesAccepted++;
  }
  expect(messagesAccepted * 100_000).toBeLessThanOrEqual(4 * 2 ** 20 + 4 * 2 ** 20 + 100_000);
  // The reader resumes: everything flows again.
  const reading = readAll(stream);
  await pending;
  await writer.close();
  expect((await reading).bytes).toBe(accepted + chunk.length);
  for (let i = 0; i <= messagesAccepted; i++) expect((await atJoiner.recv())!.length).toBe(100_000);
}, 60_000);

test("un-awaited sends behind a reader that does not call recv(): the send buffer bounds them, and they arrive in the order called (an aborted one left out)", async () => {
  const { atJoiner, atGateway } = await connected();
  const message = (index: number) => new Uint8Array(256 * 1024).fill(index);
  const before = process.memoryUsage().arrayBuffers;
  // 48 sends of 256 KiB (12 MiB) at once, none awaited; the 31st waits with a signal that fires.
  const aborting = new AbortController();
  const sends = Array.from({ length: 48 }, (_, index) => atJoiner.send(message(index), index === 30 ? { signal: aborting.signal } : undefined));
  const settled = sends.map(() => false);
  sends.forEach((sending, index) => sending.then(() => (settled[index] = true), () => (settled[index] = true)));
  aborting.abort();
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Before, every waiting send saw the same room and queued: 92 MiB buffered against 4 MiB.
  const buffered = atJoiner.stats().delivery.sendBufferedBytes;
  expect(buffered).toBeLessThanOrEqual(4 * 2 ** 20 + 256 * 1024);
  expect(settled.filter(Boolean).length).toBeLessThan(48);
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(40 * 2 ** 20);
  await expect(sends[30]).rejects.toMatchObject({ name: "AbortError" });
  // The reader comes: every send but the aborted one arrives, once, in the order called.
  const order: number[] = [];
  for (let i = 0; i < 47; i++) order.push((await atGateway.recv())![0]!);
  expect(order).toEqual([...Array(48).keys()].filter((index) => index !== 30));
  await Promise.all(sends.filter((_, index) => index !== 30));
});

test("a waiting send that aborts while it holds the turn, with none behind it: the next send goes as if none had waited", async () => {
  const { atJoiner, atGateway } = await connected();
  const full = Array.from({ length: 4 }, () => atJoiner.send(new Uint8Array(2 ** 20))); // the 4 MiB buffer, full
  const aborting = new AbortController();
  const waiting = atJoiner.send(new Uint8Array(10), { signal: aborting.signal });
  aborting.abort();
  await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
  for (let i = 0; i < 4; i++) expect((await atGateway.recv())!.length).toBe(2 ** 20);
  await Promise.all(full);
  await atJoiner.send(new TextEncoder().encode("after"));
  expect(new TextDecoder().decode(await atGateway.recv())).toBe("after");
});

test("close: the peer's recv() ends after the messages that already arrived", async () => {
  const { atJoiner, atGateway } = await connected();
  for (let i = 0; i < 100; i++) await atJoiner.send(new Uint8Array(2000).fill(i));
  await atJoiner.close();
  expect(await atJoiner.recv()).toBeUndefined();
  await expect(atJoiner.send(new Uint8Array(1))).rejects.toThrow(/the connection was closed/);
  const received: number[] = [];
  for await (const message of atGateway) received.push(message[0]!);
  expect(received).toEqual(Array.from({ length: 100 }, (_, i) => i));
  expect(await atGateway.acceptStream()).toBeUndefined();
  expect(atGateway.error).toBeUndefined();
  await expect(atGateway.send(new Uint8Array(1))).rejects.toThrow(/the peer closed the connection/);
});

test("for await over a connection's messages: return() while a step waits settles at once (it waited for the next message), and that message stays for recv()", async () => {
  const { atJoiner, atGateway } = await connected();
  const messages = atGateway[Symbol.asyncIterator]();
  const waiting = messages.next();
  const returned = await Promise.race([messages.return(), new Promise((resolve) => setTimeout(resolve, 1000, "still waiting"))]);
  expect(returned).toEqual({ done: true, value: undefined });
  expect(await waiting).toEqual({ done: true, value: undefined });
  expect(await messages.next()).toEqual({ done: true, value: undefined });
  await atJoiner.send(new TextEncoder().encode("kept"));
  expect(new TextDecoder().decode(await atGateway.recv())).toBe("kept");
  // A loop's break ends its iterator the same way, and another loop starts where it left off.
  for (let i = 0; i < 3; i++) await atJoiner.send(new Uint8Array([i]));
  for await (const message of atGateway) if (message[0] === 0) break;
  const rest: number[] = [];
  for await (const message of atGateway) {
    rest.push(message[0]!);
    if (rest.length === 2) break;
  }
  expect(rest).toEqual([1, 2]);
});

test("an aborted writer: the reader's stream fails with a clear error, the connection goes on", async () => {
  const { atJoiner, atGateway } = await connected();
  const writer = atJoiner.openStream().getWriter();
  await writer.write(new Uint8Array(5000));
  const incoming = (await atGateway.acceptStream())!.getReader();
  expect((await incoming.read()).value!.length).toBeGreaterThan(0);
  await writer.abort(new Error("changed my mind"));
  await expect((async () => {
    for (;;) if ((await incoming.read()).done) return;
  })()).rejects.toThrow(/stream 0 was aborted by its writer/);
  await atJoiner.send(new Uint8Array([7]));
  expect(await atGateway.recv()).toEqual(new Uint8Array([7]));
  expect(atGateway.stats().delivery.streamErrors).toBe(1);
});

test("the idle timeout: a peer that goes silent is noticed, with a clear error", async () => {
  const { atGateway, muted } = await connected({ reliability: { idleTimeoutMs: 800, keepAliveMs: 100 } });
  muted.on = true;
  const started = performance.now();
  await expect(atGateway.recv()).rejects.toThrow(/idle timeout: nothing from the peer for 800 ms/);
  expect(performance.now() - started).toBeLessThan(2000);
  expect(atGateway.closed).toBe(true);
});

test("the retransmission limit fails the connection when the peer vanishes", async () => {
  const { atGateway, muted } = await connected({ reliability: { rtoFloorMs: 20, maxRetransmissions: 4 } });
  await atGateway.send(new Uint8Array(10));
  await new Promise((resolve) => setTimeout(resolve, 50)); // acknowledged: the RTO is at its 20 ms floor
  muted.on = true;
  await atGateway.send(new Uint8Array(10_000));
  await expect(atGateway.recv()).rejects.toThrow(/peer unreachable: 4 consecutive retransmission timeouts/);
  await expect(atGateway.send(new Uint8Array(1))).rejects.toThrow(/peer unreachable/);
  expect(atGateway.stats().delivery.retransmissionTimeouts).toBe(5);
});

test("transport.close() closes every connection and leaves no timers or sockets behind", async () => {
  const resources = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout" || r === "UDPWrap").length;
  await new Promise((resolve) => setTimeout(resolve, 300)); // the previous test's sockets finish closing (a socket waits up to 100 ms for its last sends)
  const baseline = resources();
  const { gateway, joiner, atJoiner, atGateway } = await connected();
  await atJoiner.send(new Uint8Array(5000));
  await atGateway.recv();
  await Promise.all([gateway.close(), joiner.close()]);
  open.length = 0;
  expect(atJoiner.closed && atGateway.closed).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(resources()).toBe(baseline);
});

test("a BYOB reader fills its own buffer from the stream: 4 MiB intact through one 10,000-byte buffer; a default reader's chunks survive a transfer of another's buffer", async () => {
  const { atJoiner, atGateway } = await connected();
  const total = 4 * 2 ** 20;
  const sent = writeAll(atJoiner, 7, total); // finishes only as the reader reads
  const reader = (await atGateway.acceptStream())!.getReader({ mode: "byob" });
  const hash = createHash("sha256");
  let buffer = new ArrayBuffer(10_000);
  let bytes = 0;
  let reads = 0;
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    expect(value.byteOffset).toBe(0); // filled from the start
    hash.update(value);
    bytes += value.length;
    reads++;
    buffer = value.buffer; // the read hands the buffer back (the stream took it over, filled it and returned it)
  }
  expect({ sha256: hash.digest("hex"), bytes }).toEqual({ sha256: await sent, bytes: total });
  expect(reads).toBeGreaterThanOrEqual(Math.ceil(total / 10_000));

  // A default reader: each chunk has a buffer of its own, so transferring one detaches no other.
  const sentAgain = writeAll(atGateway, 8, 2 ** 20);
  const received = createHash("sha256");
  const kept: Uint8Array[] = [];
  const chunksOf = (await atJoiner.acceptStream())!.getReader();
  for (let read = await chunksOf.read(); !read.done; read = await chunksOf.read()) {
    const chunk = read.value;
    received.update(chunk);
    kept.push(chunk);
    if (kept.length === 2) structuredClone(kept[0]!.buffer, { transfer: [kept[0]!.buffer] }); // the application gives the first one's buffer away
  }
  expect(received.digest("hex")).toBe(await sentAgain);
  expect(kept.length).toBeGreaterThan(2);
  expect(kept[0]!.length).toBe(0); // detached: it was the application's to give away
  expect(kept.slice(1).every((chunk) => chunk.length > 0)).toBe(true); // no other chunk went with it
});

test("a BYOB read released while it waits (its reader let go, a default reader or pipeTo next): the next data and the end reach the new reader", async () => {
  // A request/response exchange: the writer sends one piece and waits for the answer. The BYOB read
  // that was waiting when the reader let go must not keep that piece from the reader after it.
  const { atJoiner, atGateway } = await connected();
  const writer = atJoiner.openStream().getWriter();
  await writer.write(Uint8Array.of(1)); // opens the stream
  const stream = (await atGateway.acceptStream())!;
  const byob = stream.getReader({ mode: "byob" });
  expect(Array.from((await byob.read(new Uint8Array(16))).value!)).toEqual([1]);
  const waiting = byob.read(new Uint8Array(16)); // no data yet: waits
  await new Promise((resolve) => setTimeout(resolve, 20));
  byob.releaseLock();
  await expect(waiting).rejects.toThrow(TypeError);
  const reader = stream.getReader();
  const next = reader.read();
  await writer.write(Uint8Array.of(2, 3, 4));
  const timeout = new Promise((resolve) => setTimeout(() => resolve("no data after 2 s"), 2_000));
  expect(await Promise.race([next.then((read) => Array.from(read.value!)), timeout])).toEqual([2, 3, 4]);
  const end = reader.read();
  await writer.close();
  expect(await Promise.race([end.then((read) => read.done), timeout])).toBe(true);
});

test("BYOB reads at the edges: a waiting read gets no more than its room, any view type, its buffer back at the end; a reset or a cancel settles it; a pipe takes over after it", async () => {
  const { atJoiner, atGateway } = await connected();
  const opened = async () => {
    const writer = atJoiner.openStream().getWriter();
    await writer.write(Uint8Array.of(0));
    const stream = (await atGateway.acceptStream())!;
    const reader = stream.getReader({ mode: "byob" });
    expect(Array.from((await reader.read(new Uint8Array(8))).value!)).toEqual([0]);
    return { writer, stream, reader };
  };
  const soon = () => new Promise((resolve) => setTimeout(resolve, 20));

  // Waiting with 4 bytes of room while 10 arrive: 4, then the other 6 (kept for the next read, not lost).
  const small = await opened();
  const four = small.reader.read(new Uint8Array(4));
  await soon();
  await small.writer.write(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  expect(Array.from((await four).value!)).toEqual([1, 2, 3, 4]);
  expect(Array.from((await small.reader.read(new Uint8Array(64))).value!)).toEqual([5, 6, 7, 8, 9, 10]);
  // A Uint32Array waits for whole elements; a DataView takes what there is.
  await small.writer.write(Uint8Array.of(1, 0, 0));
  const word = small.reader.read(new Uint32Array(2));
  await soon();
  await small.writer.write(Uint8Array.of(0, 2, 0, 0, 0, 9));
  expect(Array.from((await word).value!)).toEqual([1, 2]);
  const dataView = (await small.reader.read(new DataView(new ArrayBuffer(8)))).value!;
  expect([dataView.byteLength, dataView.getUint8(0)]).toEqual([1, 9]);
  // The end while a read waits: done, its buffer given back.
  const atEnd = small.reader.read(new Uint8Array(16));
  await soon();
  await small.writer.close();
  const ended = await atEnd;
  expect([ended.done, ended.value!.length, ended.value!.buffer.byteLength]).toEqual([true, 0, 16]);

  // The writer resets the stream while a read waits: the read fails with the reset.
  const reset = await opened();
  const failing = reset.reader.read(new Uint8Array(16));
  await soon();
  await reset.writer.abort(new Error("gave up"));
  await expect(failing).rejects.toMatchObject({ code: "ERR_SLUICE_RESET" });

  // The reader cancels while its read waits: the read is done.
  const cancelled = await opened();
  const pending = cancelled.reader.read(new Uint8Array(16));
  await soon();
  await cancelled.reader.cancel();
  expect((await pending).done).toBe(true);

  // BYOB reads, then the reader lets go and a pipe through a TextDecoderStream takes the rest.
  const piped = await opened();
  piped.reader.releaseLock();
  const text = (async () => {
    let all = "";
    const decoded = piped.stream.pipeThrough(new TextDecoderStream()).getReader();
    for (let read = await decoded.read(); !read.done; read = await decoded.read()) all += read.value;
    return all;
  })();
  await piped.writer.write(new TextEncoder().encode("héllo, "));
  await piped.writer.write(new TextEncoder().encode("wörld"));
  await piped.writer.close();
  expect(await text).toBe("héllo, wörld");
});
