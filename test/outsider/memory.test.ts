// Memory a peer can pin, against the credit it was given (the CPU of reassembly as fragments arrive
// in the worst order is reassembly-cpu.test.ts). The gateway runs in a child process; its memory is
// read there after two full GCs. The figure is the growth of its buffers (external memory, which
// holds every ArrayBuffer, + frames taken from its arena) per credited byte. The JS heap is printed
// beside it: its noise (-30 to +210 KB over 4-32k packets that store nothing, measured with such a
// control) is larger than a 64 KiB credit, so it is held to a looser bound (per-fragment objects
// would still show: 32k fragments × 32 B = 1 MiB).
import { expect, test } from "vitest";
import { ChildGateway, type Usage } from "./child-gateway.ts";
import { attacker, CHUNK_BYTES, streamFiller, warmUp } from "./credited-session.ts";
import { sleep } from "./evil-peer.ts";
import { closedAfterEach, describe3, figure } from "./harness.ts";
import { MAX_PLAINTEXT_BYTES, type Frame } from "./wire.ts";

const track = closedAfterEach();

const SMALL_WINDOW_BYTES = 64 * 1024; // the credit before any credit frame: the least a receiver gives

const buffers = (u: Usage) => u.memory.external + u.arenaBytesInUse;
const HEAP_BOUND_BYTES = 1024 * 1024;

/** One byte of message `sequence` at `offset`, alone in a packet padded to the largest datagram. */
const lonelyByte = (sequence: number, total: number, offset: number): Frame[] => [
  { type: "messageData", sequence, total, offset, bytes: Uint8Array.of(0xa5) },
  { type: "padding", length: MAX_PLAINTEXT_BYTES - 16 },
];

type Shape = "dense" | "sparse" | "ahead";

const SPARSE_STRIDE_BYTES = 4096;

/** Runs one attack shape on a fresh connection; answers its figures. */
async function pin(gateway: ChildGateway, host: string, shape: Shape) {
  const session = await attacker(track, gateway, host);
  // Sparse fragments are interleaved with stream data from a second connection, read at once and
  // closed before the measure: storage shared between packets would keep a block per fragment.
  const filler = shape === "sparse" ? await attacker(track, gateway, "127.0.0.10") : undefined;
  await warmUp(gateway, session);
  const credit = session.messageCreditLimit - session.messageBytesSent;
  const started = performance.now();
  const before = await gateway.usage(true);
  const sequence = await session.reserveMessage(credit);
  let fragments = 0;
  let outcome = "connection open";
  try {
    if (shape === "dense") {
      // Every other byte of a message as large as the whole credit: the most gaps it allows.
      const packets: Frame[][] = [];
      for (let offset = 1; offset < credit; offset += 2) packets.push(lonelyByte(sequence, credit, offset));
      fragments = packets.length;
      await session.sendAll(packets, { window: 256, timeoutMs: 20_000 });
    } else if (shape === "sparse") {
      // One byte per 4 KiB, each followed by 64 KiB of stream data on the other connection.
      let streamOffset = 0;
      for (let offset = 1; offset < credit; offset += SPARSE_STRIDE_BYTES, fragments++) {
        await session.sendAll([lonelyByte(sequence, credit, offset)]);
        streamOffset = await streamFiller(filler!, 0, streamOffset, 64 * 1024);
      }
      filler!.send([{ type: "close", code: 0 }]);
    } else {
      // The message that takes the whole credit never comes; later ones, whose place in the
      // concatenation the receiver cannot know yet, each send one full fragment.
      const packets: Frame[][] = [];
      for (let later = sequence + 1; later <= sequence + 1000; later++) {
        packets.push([{ type: "messageData", sequence: later, total: credit, offset: 0, bytes: new Uint8Array(CHUNK_BYTES) }]);
      }
      fragments = packets.length;
      await session.sendAll(packets, { window: 256, timeoutMs: 10_000 });
    }
  } catch (error) {
    outcome = `sending stopped: ${(error as Error).message}`;
  }
  await sleep(100);
  const after = await gateway.usage(true);
  const delta = buffers(after) - buffers(before);
  const row = {
    shape,
    fragments,
    creditedBytes: credit,
    bufferBytes: delta,
    perCreditedByte: +(delta / credit).toFixed(2),
    heapDelta: after.memory.heapUsed - before.memory.heapUsed,
    rssDelta: after.memory.rss - before.memory.rss,
    ms: Math.round(performance.now() - started),
    outcome,
  };
  figure(`memory pinned, ${shape}`, row);
  return row;
}

describe3("memory per credited byte", () => {
  test("1-byte fragments that never complete, sparse ones, and messages ahead of a missing one: ≤ 2 bytes pinned per credited byte", async () => {
    const small = track(
      await ChildGateway.bind({ host: "127.0.0.1", gateway: true, reliability: { messageWindowBytes: SMALL_WINDOW_BYTES } }),
    );
    const rows = [
      await pin(small, "127.0.0.2", "dense"),
      await pin(small, "127.0.0.4", "sparse"),
      await pin(small, "127.0.0.6", "ahead"),
    ];
    const large = track(await ChildGateway.bind({ host: "127.0.0.1", gateway: true }));
    rows.push(await pin(large, "127.0.0.7", "ahead"));
    for (const r of rows) {
      const what = `${r.shape}, ${r.creditedBytes} B credited`;
      expect(r.outcome, what).toBe("connection open");
      expect(r.perCreditedByte, what).toBeLessThanOrEqual(2);
      expect(r.heapDelta, what).toBeLessThanOrEqual(HEAP_BOUND_BYTES);
    }
  }, 40_000);
});
