// Seeded cross-thread stress: several worker producers against one receiver that mixes recv,
// recvBatch and tryRecv, with small capacities so lanes fill, senders park and wake constantly.
// Every byte is checked, order is checked per lane, counts are exact, and every frame comes back.
import { afterAll, expect, test } from "vitest";
import type { Worker } from "node:worker_threads";
import { Arena, channel, type Receiver } from "sluice";
import { checkPatternPacket, mulberry32 } from "./support/random.ts";
import { ask, startWorker } from "./support/threads.ts";

const PRODUCERS = 3;
const PER_PRODUCER = 20_000;
const workers: Worker[] = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.terminate()));
});

async function receiveMixed(rx: Receiver, random: () => number): Promise<number[]> {
  const nextSeq = Array<number>(PRODUCERS).fill(0);
  const visit = (bytes: Uint8Array, offset: number, length: number): void => checkPatternPacket(bytes, offset, length, nextSeq);
  for (;;) {
    const roll = random();
    if (roll < 0.4) {
      const packet = await rx.recv();
      if (packet === undefined) break;
      visit(packet, 0, packet.length);
    } else if (roll < 0.8) {
      if ((await rx.recvBatch(visit, 1 + Math.floor(random() * 64))) === 0) break;
    } else {
      const next = rx.tryRecv();
      if (next === "closed") break;
      if (next !== "empty") visit(next, 0, next.length);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return nextSeq;
}

for (const seed of [0x5eed_0001, 0x5eed_0002, 0x5eed_0003]) {
  test(`stress, seed ${seed.toString(16)}: ${PRODUCERS} worker producers × ${PER_PRODUCER} random packets`, async () => {
    while (workers.length < PRODUCERS) workers.push(await startWorker("stress-producer"));
    const arena = Arena.create({ bytes: 4 << 20 });
    arena.flushThreadCache();
    const freeBefore = arena.stats().freeFrames;
    const random = mulberry32(seed);
    const capacity = 1 + Math.floor(random() * 16);
    const [tx, rx] = channel(capacity, { arena });
    const jobs = workers.map((worker, id) => ask<{ sent: number }>(worker, { handle: tx.toHandle(), id, count: PER_PRODUCER, seed: seed + id }));
    tx.close();
    const [received, sent] = await Promise.all([receiveMixed(rx, random), Promise.all(jobs)]);
    expect(sent.map((s) => s.sent)).toEqual(Array(PRODUCERS).fill(PER_PRODUCER));
    expect(received).toEqual(Array(PRODUCERS).fill(PER_PRODUCER));
    // Frames cached by the worker threads are theirs until those threads flush: all others are back.
    arena.flushThreadCache();
    const stranded = freeBefore - arena.stats().freeFrames;
    expect(stranded).toBeLessThanOrEqual(PRODUCERS * 66); // per producer thread: its cache frame + ≤ 65 cached
    expect(arena.stats().discarded).toBe(0);
  });
}
