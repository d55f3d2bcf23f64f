// Memory a peer can pin, against the credit it was given, and the CPU of reassembly as fragments
// arrive in the worst order. The gateway runs in a child process; its memory is read there after
// two full GCs: JS heap + external buffers + frames taken from its arena.
import { expect, test } from "vitest";
import { ChildGateway, type Received, type Usage } from "./child-gateway.ts";
import { EvilPeer, sleep, type EvilSession } from "./evil-peer.ts";
import { closedAfterEach, describe3, eventually, figure } from "./harness.ts";
import { MAX_PLAINTEXT_BYTES, type Frame } from "./wire.ts";

const track = closedAfterEach();

const MESSAGE_WINDOW_BYTES = 64 * 1024;
const STREAM_CHUNK_BYTES = MAX_PLAINTEXT_BYTES - 16;

const pinned = (u: Usage) => u.memory.heapUsed + u.memory.external + u.arenaBytesInUse;

/** One byte of message `sequence` at `offset`, alone in a packet padded to the largest datagram. */
const lonelyByte = (sequence: number, total: number, offset: number): Frame[] => [
  { type: "messageData", sequence, total, offset, bytes: Uint8Array.of(0xa5) },
  { type: "padding", length: MAX_PLAINTEXT_BYTES - 16 },
];

async function attacker(gateway: ChildGateway, host: string): Promise<EvilSession> {
  const peer = track(await EvilPeer.bind(host));
  const session = await peer.connect(gateway.address, gateway.publicKey);
  await sleep(100); // the gateway's first credit frames
  return session;
}

/** Warm the gateway up (JIT, slabs, arena pages) with complete messages, so the baseline is steady. */
async function warmUp(gateway: ChildGateway, session: EvilSession): Promise<void> {
  for (let i = 0; i < 40; i++) await session.sendMessage(new Uint8Array(16 * 1024));
  await eventually(async () => (await gateway.request<Received>("received")).messages >= 40, 3000);
}

/** Stream `bytes` of stream `stream` from `offset`, within the gateway's stream credit. */
async function streamFiller(session: EvilSession, stream: number, offset: number, bytes: number): Promise<number> {
  const packets: Frame[][] = [];
  for (let at = offset; at < offset + bytes; at += STREAM_CHUNK_BYTES) {
    packets.push([{ type: "streamData", fin: false, stream, offset: at, bytes: new Uint8Array(STREAM_CHUNK_BYTES) }]);
  }
  const end = offset + packets.length * STREAM_CHUNK_BYTES;
  if (!(await session.until(() => session.streamCredit(stream) >= end, 5000))) throw new Error("no stream credit");
  await session.sendAll(packets);
  return end;
}

describe3("memory per credited byte", () => {
  test("1-byte fragments that never complete, sparse ones, and messages ahead of a missing one: ≤ 2 bytes pinned per credited byte", async () => {
    const gateway = track(
      await ChildGateway.bind({ host: "127.0.0.1", gateway: true, reliability: { messageWindowBytes: MESSAGE_WINDOW_BYTES } }),
    );
    const results: Record<string, unknown>[] = [];
    const hosts = { dense: "127.0.0.2", sparse: "127.0.0.4", ahead: "127.0.0.5" };
    for (const shape of ["dense", "sparse", "ahead"] as const) {
      const session = await attacker(gateway, hosts[shape]);
      await warmUp(gateway, session);
      const credit = session.messageCreditLimit - session.messageBytesSent;
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
          await session.sendAll(packets, { window: 256, timeoutMs: 15_000 });
        } else if (shape === "ahead") {
          // The message that uses the whole credit never comes; 900 later ones, whose place in the
          // concatenation the receiver cannot know yet, each send one full fragment.
          const packets: Frame[][] = [];
          for (let later = sequence + 1; later <= sequence + 900; later++) {
            packets.push([{ type: "messageData", sequence: later, total: credit, offset: 0, bytes: new Uint8Array(STREAM_CHUNK_BYTES) }]);
          }
          fragments = packets.length;
          await session.sendAll(packets, { window: 256, timeoutMs: 10_000 });
        } else {
          // One byte per 1171, each followed by a slab's worth of stream data that is read at once.
          let streamOffset = 0;
          for (let offset = 1; offset < credit; offset += MAX_PLAINTEXT_BYTES, fragments++) {
            await session.sendAll([lonelyByte(sequence, credit, offset)]);
            streamOffset = await streamFiller(session, 0, streamOffset, 64 * 1024);
          }
        }
      } catch (error) {
        outcome = `sending stopped: ${(error as Error).message}`;
      }
      await sleep(100);
      const after = await gateway.usage(true);
      const delta = pinned(after) - pinned(before);
      const row = {
        shape,
        fragments,
        creditedBytes: credit,
        pinnedBytes: delta,
        perCreditedByte: +(delta / credit).toFixed(2),
        perFragment: +(delta / fragments).toFixed(1),
        rssDelta: after.memory.rss - before.memory.rss,
        outcome,
      };
      results.push(row);
      figure(`memory, ${shape} 1-byte fragments`, row);
    }
    for (const r of results) expect(r.perCreditedByte, String(r.shape)).toBeLessThanOrEqual(2);
  }, 40_000);
});

describe3("reassembly order", () => {
  test("fragments in descending order cost flat CPU per fragment from 16k to 128k fragments", async () => {
    const gateway = track(await ChildGateway.bind({ host: "127.0.0.1", gateway: true }));
    const session = await attacker(gateway, "127.0.0.2");
    await warmUp(gateway, session);
    const perFragment: Record<number, number> = {};
    const perPacket = Math.floor(MAX_PLAINTEXT_BYTES / 16); // 1-byte MESSAGE_DATA frames (16 B each)
    for (const count of [16 * 1024, 128 * 1024]) {
      const sequence = await session.reserveMessage(count);
      const packets: Frame[][] = [];
      for (let top = count - 1; top >= 0; top -= perPacket) {
        const frames: Frame[] = [];
        for (let offset = top; offset > top - perPacket && offset >= 0; offset--) {
          frames.push({ type: "messageData", sequence, total: count, offset, bytes: Uint8Array.of(offset & 0xff) });
        }
        packets.push(frames);
      }
      const delivered = (await gateway.request<Received>("received")).messages;
      const before = await gateway.usage();
      await session.sendAll(packets, { timeoutMs: 20_000 });
      expect(await eventually(async () => (await gateway.request<Received>("received")).messages > delivered, 5000)).toBe(true);
      const after = await gateway.usage();
      perFragment[count] = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / count;
    }
    const ratio = perFragment[128 * 1024] / perFragment[16 * 1024];
    figure("descending fragments, gateway CPU per fragment (µs)", `16k: ${perFragment[16 * 1024].toFixed(2)}, 128k: ${perFragment[128 * 1024].toFixed(2)}, ratio ${ratio.toFixed(2)}× (target ≤ 1.5×)`);
    expect(ratio).toBeLessThanOrEqual(3);
  }, 30_000);
});
