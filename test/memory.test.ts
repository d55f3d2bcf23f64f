// Memory is bounded by the arena and small when idle: 10,000 channels of capacity 2048 exist at once
// within 256 MiB, an idle one costs at most 16 KiB, and closing them returns every frame.
import { expect, test } from "vitest";
import { Arena, channel, type Receiver, type Sender } from "sluice";

const CHANNELS = 10_000;
const CAPACITY = 2048;
const BOUND_BYTES = 256 * 1024 * 1024;
const IDLE_CHANNEL_BOUND_BYTES = 16 * 1024;

test("10,000 channels of capacity 2048: created, used, closed, within 256 MiB", async () => {
  const arena = Arena.create({ bytes: BOUND_BYTES });
  expect(arena.stats().bytes).toBeLessThanOrEqual(BOUND_BYTES);
  arena.flushThreadCache();
  const freeAtStart = arena.stats().freeFrames;

  const channels: [Sender, Receiver][] = [];
  for (let i = 0; i < CHANNELS; i++) channels.push(channel(CAPACITY, { arena }));
  arena.flushThreadCache();
  const idleBytes = (freeAtStart - arena.stats().freeFrames) * arena.frameBytes;
  console.log(`idle: ${(idleBytes / CHANNELS / 1024).toFixed(1)} KiB per channel of capacity ${CAPACITY}, ${(idleBytes / 2 ** 20).toFixed(0)} MiB for ${CHANNELS}`);
  expect(idleBytes / CHANNELS).toBeLessThanOrEqual(IDLE_CHANNEL_BOUND_BYTES);

  // Used: every channel carries traffic at once (4 packets queued in each), then is drained.
  const packet = new Uint8Array(1200);
  for (const [tx] of channels) for (let k = 0; k < 4; k++) expect(tx.trySend(packet)).toBe("sent");
  expect(arena.memory.buffer.byteLength).toBeLessThanOrEqual(BOUND_BYTES); // the memory never grows
  for (const [, rx] of channels) {
    let got = 0;
    rx.drain(() => got++);
    expect(got).toBe(4);
  }

  for (const [tx, rx] of channels) {
    tx.close();
    expect(await rx.recv()).toBeUndefined();
  }
  arena.flushThreadCache();
  expect(arena.stats().freeFrames).toBe(freeAtStart);
});

test("an exhausted pool answers 'full', counted as poolEmpty, and recovers", () => {
  const arena = Arena.create({ bytes: 1024 * 1024, frameBytes: 1024 }); // ~1000 frames
  const [tx, rx] = channel(4096, { arena, maxPacketSize: 1000 });
  const packet = new Uint8Array(1000);
  let sent = 0;
  while (tx.trySend(packet) === "sent") sent++;
  expect(tx.trySend(packet)).toBe("full");
  const stats = rx.stats();
  expect(stats.poolEmpty).toBe(2);
  expect(stats.full).toBe(0); // the lane itself had room: the pool was the limit
  expect(sent).toBeGreaterThan(800);
  expect(rx.drain(() => {})).toBe(sent);
  expect(tx.trySend(packet)).toBe("sent");
});
