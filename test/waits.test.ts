// send() and recv() sleep until the other side acts, whatever they wait for: lane space, a free frame
// in an exhausted pool, or the end of the stream.
import { Worker } from "node:worker_threads";
import { expect, test } from "vitest";
import { Arena, channel } from "sluice";

const later = <T>(ms: number, f: () => T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(f()), ms));

test("send() on an exhausted pool sleeps until another channel frees a frame", async () => {
  const arena = Arena.create({ bytes: 1 << 20, frameBytes: 1024 });
  const [hogTx, hogRx] = channel(4096, { arena, maxPacketSize: 1000 });
  const [tx, rx] = channel(8, { arena, maxPacketSize: 1000 });
  const packet = new Uint8Array(1000);
  while (hogTx.trySend(packet) === "sent");
  expect(tx.trySend(packet)).toBe("full");
  const started = performance.now();
  const pending = tx.send(packet);
  await later(50, () => hogRx.drain(() => {}, 40)); // frees 40 frames on this thread
  expect(await pending).toBe("sent");
  expect(performance.now() - started).toBeLessThan(500); // woken by the free, not by the safety net
  expect(rx.tryRecv()).toHaveLength(1000);
});

test("send() on a full lane sleeps until the receiver takes one", async () => {
  const [tx, rx] = channel(1);
  tx.trySend(new Uint8Array([1]));
  const pending = tx.send(new Uint8Array([2]));
  const started = performance.now();
  await later(30, () => rx.tryRecv());
  expect(await pending).toBe("sent");
  expect(performance.now() - started).toBeLessThan(500);
  expect(rx.tryRecv()).toEqual(new Uint8Array([2]));
});

test("recvBatch waits, then hands every ready packet to the visitor without copying", async () => {
  const [tx, rx] = channel(64);
  const seen: number[] = [];
  const batch = rx.recvBatch((bytes, offset, length) => {
    expect(length).toBe(1);
    seen.push(bytes[offset]!);
  });
  for (let i = 0; i < 10; i++) tx.trySend(new Uint8Array([i]));
  expect(await batch).toBe(10);
  expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  tx.close();
  expect(await rx.recvBatch(() => {})).toBe(0);
});

test("a visitor that throws consumes its packet and the rest stay queued", () => {
  const [tx, rx] = channel(8);
  for (let i = 0; i < 3; i++) tx.trySend(new Uint8Array([i]));
  expect(() => rx.drain(() => { throw new Error("boom"); })).toThrow("boom");
  expect(rx.tryRecv()).toEqual(new Uint8Array([1]));
  expect(rx.stats().queued).toBe(1);
});

test("received bytes belong to the caller: later traffic never changes them", () => {
  const [tx, rx] = channel(2);
  tx.trySend(new Uint8Array([1, 1, 1]));
  const first = rx.tryRecv() as Uint8Array;
  for (let i = 0; i < 100; i++) {
    tx.trySend(new Uint8Array([9, 9, 9]));
    rx.tryRecv();
  }
  expect(first).toEqual(new Uint8Array([1, 1, 1]));
});

test("stats() after the end: a receiver whose stream ended and a closed sender answer the counters they ended with (they threw)", async () => {
  const [tx, rx] = channel(8);
  const clone = tx.clone();
  for (let i = 0; i < 5; i++) expect(tx.trySend(new Uint8Array([i]))).toBe("sent");
  tx.close();
  expect(tx.stats()).toMatchObject({ sent: 5, queued: 5, received: 0 });
  clone.close();
  let received = 0;
  for await (const _ of rx) received++;
  expect(received).toBe(5);
  expect(rx.stats()).toMatchObject({ sent: 5, received: 5, queued: 0 });
  expect(tx.stats()).toMatchObject({ sent: 5, received: 0 }); // as it was at close()
});

test("a worker that dies holding its sender: the stream stays open until the receiver closes on the worker's exit, then ends after the queued packets", async () => {
  const [tx, rx] = channel(16);
  const worker = new Worker(new URL("../.test-build/dying-producer.mjs", import.meta.url), { workerData: { handle: tx.toHandle() } });
  worker.on("error", () => {}); // the crash is the point
  tx.close();
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const received: number[] = [];
  const reading = (async () => {
    for await (const packet of rx) received.push(packet[0]!);
  })();
  await exited;
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(await Promise.race([reading.then(() => "ended"), Promise.resolve("open")])).toBe("open"); // nothing releases a dead thread's lane
  rx.close(); // what the documentation says to do on 'exit'
  await reading;
  expect(received).toEqual([0, 1, 2]);
});
