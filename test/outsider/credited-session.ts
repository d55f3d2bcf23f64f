// A gateway's connection opened by a hand-built peer (EvilPeer) and warmed up, for the tests that
// measure what its fragments pin (memory.test.ts) and cost (reassembly-cpu.test.ts).
import type { ChildGateway, Received } from "./child-gateway.ts";
import { EvilPeer, sleep, type EvilSession } from "./evil-peer.ts";
import { eventually, type Closable } from "./harness.ts";
import { MAX_PLAINTEXT_BYTES, type Frame } from "./wire.ts";

/** The largest stream or message fragment one packet carries. */
export const CHUNK_BYTES = MAX_PLAINTEXT_BYTES - 16;

export async function attacker(track: <T extends Closable>(closable: T) => T, gateway: ChildGateway, host: string): Promise<EvilSession> {
  const peer = track(await EvilPeer.bind(host));
  const session = await peer.connect(gateway.address, gateway.publicKey);
  await sleep(100); // the gateway's first credit frames
  return session;
}

/**
 * Warm the gateway up (JIT, blocks, arena pages, and the first stream's one-time buffers, 160 KB
 * measured) with complete messages and a stream, so the baseline is steady.
 */
export async function warmUp(gateway: ChildGateway, session: EvilSession): Promise<void> {
  const delivered = (await gateway.request<Received>("received")).messages;
  await session.sendMessages(...Array.from({ length: 8 }, () => new Uint8Array(16 * 1024)));
  await streamFiller(session, 0, 0, 128 * 1024);
  await eventually(async () => (await gateway.request<Received>("received")).messages >= delivered + 8, 3000);
}

/** `bytes` of stream `stream` from `offset`, sent as the gateway's stream credit allows; answers the new offset. */
export async function streamFiller(session: EvilSession, stream: number, offset: number, bytes: number): Promise<number> {
  const end = offset + bytes;
  while (offset < end) {
    if (!(await session.until(() => session.streamCredit(stream) > offset, 5000))) throw new Error("no stream credit");
    const limit = Math.min(end, session.streamCredit(stream));
    const packets: Frame[][] = [];
    for (; offset < limit; offset += CHUNK_BYTES) {
      const length = Math.min(CHUNK_BYTES, limit - offset);
      packets.push([{ type: "streamData", fin: false, stream, offset, bytes: new Uint8Array(length) }]);
    }
    offset = limit;
    await session.sendAll(packets);
  }
  return offset;
}
