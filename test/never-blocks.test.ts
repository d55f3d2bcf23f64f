// freenet's "never blocks when full" contract, at the channel: with capacity 4 and a consumer that
// never reads, 1000 trySend calls all return within 1 s in total, and at least 996 say 'full'.
import { expect, test } from "vitest";
import { channel, type Sender } from "sluice";
import { ask, startWorker } from "./support/threads.ts";

const CAPACITY = 4;
const ATTEMPTS = 1000;
const BUDGET_MS = 1000;

function hammer(tx: Sender): { sent: number; full: number; closed: number; elapsedMs: number } {
  const packet = new Uint8Array(1200);
  const counts = { sent: 0, full: 0, closed: 0 };
  const started = performance.now();
  for (let i = 0; i < ATTEMPTS; i++) counts[tx.trySend(packet)]++;
  return { ...counts, elapsedMs: performance.now() - started };
}

test("try_send_never_blocks_when_full: no consumer at all", () => {
  const [tx, rx] = channel(CAPACITY);
  const result = hammer(tx);
  expect(result.elapsedMs).toBeLessThan(BUDGET_MS);
  expect(result.sent).toBeLessThanOrEqual(CAPACITY);
  expect(result.full).toBeGreaterThanOrEqual(ATTEMPTS - CAPACITY);
  expect(result.closed).toBe(0); // the receiver is alive: Closed would be a bug
  expect(rx.stats().full).toBe(result.full); // every refusal is counted
});

test("try_send_never_blocks_when_full: consumer thread frozen in Atomics.wait", async () => {
  const worker = await startWorker("frozen-consumer");
  try {
    const [tx, rx] = channel(CAPACITY);
    const gate = new Int32Array(new SharedArrayBuffer(4));
    expect(await ask(worker, { handle: rx.toHandle(), gate })).toBe("frozen");
    const result = hammer(tx);
    expect(result.elapsedMs).toBeLessThan(BUDGET_MS);
    expect(result.sent).toBe(CAPACITY);
    expect(result.full).toBe(ATTEMPTS - CAPACITY);
    expect(tx.stats().full).toBe(ATTEMPTS - CAPACITY);
    // Thaw the consumer: what was accepted is all there, nothing more, nothing less.
    const drained = ask<{ drained: number }>(worker, undefined);
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    expect((await drained).drained).toBe(CAPACITY);
  } finally {
    await worker.terminate();
  }
});
