// The CPU of reassembly as fragments arrive in the worst order (descending), in a child gateway: a
// ratio of two CPU readings (16k against 128k fragments), which the suite's sharing slows alike.
import { expect, test } from "vitest";
import { ChildGateway, type Received } from "./child-gateway.ts";
import { attacker, warmUp } from "./credited-session.ts";
import { closedAfterEach, describe3, eventually, figure } from "./harness.ts";
import { MAX_PLAINTEXT_BYTES, type Frame } from "./wire.ts";

const track = closedAfterEach();

describe3("reassembly order", () => {
  test("fragments in descending order cost flat CPU per fragment from 16k to 128k fragments", async () => {
    const gateway = track(await ChildGateway.bind({ host: "127.0.0.1", gateway: true }));
    const session = await attacker(track, gateway, "127.0.0.2");
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
