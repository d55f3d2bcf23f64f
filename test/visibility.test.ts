// When a sent packet becomes visible to a receiver on another thread: at the end of the sending
// thread's task (or every 16 packets), or at once with flush().
import { afterEach, expect, test } from "vitest";
import type { Worker } from "node:worker_threads";
import { channel } from "sluice";
import { ask, startWorker } from "./support/threads.ts";

let worker: Worker | undefined;
afterEach(async () => {
  await worker?.terminate();
});

/** A worker sends `count` packets (flushing or not), then blocks its thread until the gate opens. */
async function blockedProducer(count: number, flush: boolean) {
  worker = await startWorker("blocking-producer");
  const [tx, rx] = channel(64);
  const gate = new Int32Array(new SharedArrayBuffer(4));
  expect(await ask(worker, { handle: tx.toHandle(), gate, count, flush })).toBe("sent");
  tx.close();
  const release = (): void => {
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
  };
  return { rx, release };
}

test("flush() makes packets visible while the sending thread stays blocked", async () => {
  const { rx, release } = await blockedProducer(3, true);
  const got = [rx.tryRecv(), rx.tryRecv(), rx.tryRecv()];
  expect(got).toEqual([new Uint8Array([0]), new Uint8Array([1]), new Uint8Array([2])]);
  release();
  expect(await rx.recv()).toBeUndefined();
});

test("without flush(), packets appear when the sending thread's task ends, or every 16", async () => {
  const { rx, release } = await blockedProducer(20, false);
  let visible = 0;
  while (rx.tryRecv() instanceof Uint8Array) visible++;
  expect(visible).toBe(16); // one batch published on its own; 4 wait for the end of the task
  release(); // the worker's task ends; its lane closes
  let rest = 0;
  for await (const _ of rx) rest++;
  expect(rest).toBe(4);
});
