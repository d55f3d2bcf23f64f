// STREAM_RESET (0x18) and STREAM_CREDIT (0x16) from an authenticated peer that lies, built from
// docs/wire.md: resets of streams past the streams credit, of one stream again and again, of the
// largest id; credit for streams the gateway never opened, and credit that would shrink. A reset
// opens a stream (its reader fails), within the streams credit like any first frame; credit only
// grows, and only for a stream that exists.
import { expect, test } from "vitest";
import { sleep } from "./evil-peer.ts";
import { joinGateway, stillDelivers } from "./gateway-peers.ts";
import { bindSluice, closedAfterEach, describe3, eventually, figure } from "./harness.ts";
import type { Frame } from "./wire.ts";

const track = closedAfterEach();

const OPEN_AT_ONCE = 16; // the gateway's maxIncomingStreams (its default)
const STREAM_CREDIT_BEFORE_ANY_FRAME = 64 * 1024;

async function connected() {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
  const { peer, session, inbound } = await joinGateway(gateway, "127.0.0.2");
  track(peer);
  return { gateway, session, inbound };
}

/** `frames` in packets of at most `perPacket` each. */
const packed = (frames: Frame[], perPacket: number): Frame[][] =>
  Array.from({ length: Math.ceil(frames.length / perPacket) }, (_, i) => frames.slice(i * perPacket, (i + 1) * perPacket));

describe3("STREAM_RESET and STREAM_CREDIT that lie", () => {
  test("5,000 STREAM_RESETs (ids 0 to 4,999, stream 0 again 100 times, the largest id): 16 streams open and fail their readers, the rest are dropped and counted; nothing waits in the accept queue", async () => {
    const { gateway, session, inbound } = await connected();
    const resets: Frame[] = [
      ...Array.from({ length: 5000 }, (_, stream): Frame => ({ type: "streamReset", stream, code: 1 })),
      ...Array.from({ length: 100 }, (): Frame => ({ type: "streamReset", stream: 0, code: 7 })),
      { type: "streamReset", stream: 2 ** 32 - 1, code: 1 },
    ];
    await session.sendAll(packed(resets, 150));
    const accepted: string[] = [];
    for (;;) {
      const stream = await inbound.acceptStream({ signal: AbortSignal.timeout(300) }).catch(() => undefined);
      if (stream === undefined) break;
      accepted.push(await stream.getReader().read().then(() => "read", (e: { code?: string }) => e.code ?? "error"));
    }
    const delivery = inbound.stats().delivery;
    figure("STREAM_RESET flood", { resets: resets.length, accepted: accepted.length, flowControlViolations: delivery.flowControlViolations, streamErrors: delivery.streamErrors });
    expect(accepted).toEqual(Array(OPEN_AT_ONCE).fill("ERR_SLUICE_RESET"));
    // Each frame past the credit, and the largest id (more when sendAll re-sent a packet whose ACK was late).
    expect(delivery.flowControlViolations).toBeGreaterThanOrEqual(5000 - OPEN_AT_ONCE + 1);
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(inbound.closed).toBe(false);
    expect(await stillDelivers(session, inbound)).toBe(true);
  });

  test("STREAM_CREDIT for 2,000 streams never opened (to 2^53 − 1) and one that would shrink the credit: the gateway's stream sends no more than its credit; a genuine raise is then followed", async () => {
    const { gateway, session, inbound } = await connected();
    const writer = inbound.openStream().getWriter();
    writer.write(new Uint8Array(256 * 1024)).catch(() => {});
    const streamBytes = () => Math.max(0, ...session.frames().flatMap((f) => (f.type === "streamData" && f.stream === 0 ? [f.offset + f.bytes.length] : [])));
    const lies: Frame[] = [
      { type: "streamCredit", stream: 0, byteLimit: 1000 },
      ...Array.from({ length: 2000 }, (_, i): Frame => ({ type: "streamCredit", stream: i + 1, byteLimit: 2 ** 53 - 1 })),
      { type: "streamCredit", stream: 2 ** 32 - 1, byteLimit: 2 ** 53 - 1 },
    ];
    await session.sendAll(packed(lies, 80));
    expect(await session.until(() => streamBytes() >= STREAM_CREDIT_BEFORE_ANY_FRAME, 3000)).toBe(true);
    await sleep(300);
    const heldTo = streamBytes();
    session.send([{ type: "streamCredit", stream: 0, byteLimit: 2 * STREAM_CREDIT_BEFORE_ANY_FRAME }]);
    const raised = await session.until(() => streamBytes() >= 2 * STREAM_CREDIT_BEFORE_ANY_FRAME, 3000);
    await sleep(200);
    figure("STREAM_CREDIT lies", { heldTo, afterRaise: streamBytes() });
    expect(heldTo).toBe(STREAM_CREDIT_BEFORE_ANY_FRAME);
    expect(raised).toBe(true);
    expect(streamBytes()).toBe(2 * STREAM_CREDIT_BEFORE_ANY_FRAME);
    expect(await eventually(() => gateway.stats().listenerErrors === 0)).toBe(true);
    expect(inbound.closed).toBe(false);
    expect(await stillDelivers(session, inbound)).toBe(true);
  });
});
