// Streams credit (STREAMS_CREDIT, 0x17), attacked through the wire by an authenticated peer built
// from docs/wire.md: a receiver lets the peer open its maxIncomingStreams, and one more for each
// stream its application is done with, whichever; streams past that are dropped and counted, and
// take no place in the accept queue nor memory (docs/security.md, "Memory an authenticated peer can pin").
import { expect, test } from "vitest";
import type { TransportStats } from "sluice";
import { ChildGateway, type Received } from "./child-gateway.ts";
import { attacker } from "./credited-session.ts";
import { closedAfterEach, describe3, eventually } from "./harness.ts";
import type { Frame } from "./wire.ts";

const track = closedAfterEach();

const OPEN_AT_ONCE = 16; // the gateway's maxIncomingStreams (its default)

describe3("streams credit (0x17)", () => {
  test("16 streams read to their ends raise the credit by 16; 1,000 streams past it are dropped, counted, and never accepted", async () => {
    const gateway = track(await ChildGateway.bind({ host: "127.0.0.1", gateway: true }));
    const session = await attacker(track, gateway, "127.0.0.2");
    const creditSeen = () => Math.max(OPEN_AT_ONCE, ...session.received.flatMap((packet) => packet.frames).flatMap((frame) => (frame.type === "streamsCredit" ? [frame.limit] : [])));
    const received = () => gateway.request<Received>("received");

    // One byte and the end on each of the first 16 streams: the gateway's application reads each to its end.
    await session.sendAll(Array.from({ length: OPEN_AT_ONCE }, (_, stream): Frame[] => [{ type: "streamData", fin: true, stream, offset: 0, bytes: Uint8Array.of(1) }]));
    expect(await eventually(async () => (await received()).streamBytes === OPEN_AT_ONCE, 5000)).toBe(true);
    expect(await eventually(() => creditSeen() >= 2 * OPEN_AT_ONCE, 5000)).toBe(true);
    const credit = creditSeen();
    expect(credit).toBe(2 * OPEN_AT_ONCE); // done with 16: 16 more, not a stream more

    // Streams from the credit on, 1,000 of them with 1,000 bytes each: nothing of them is kept.
    const before = await gateway.usage(true);
    await session.sendAll(Array.from({ length: 1000 }, (_, i): Frame[] => [{ type: "streamData", fin: false, stream: credit + i, offset: 0, bytes: new Uint8Array(1000) }]));
    const after = await gateway.usage(true);
    const stats = await gateway.request<TransportStats>("stats");
    expect(stats.perConnection[0]!.delivery.flowControlViolations).toBeGreaterThanOrEqual(1000);
    expect((await received()).streams).toBe(OPEN_AT_ONCE);
    expect(after.memory.external + after.arenaBytesInUse - (before.memory.external + before.arenaBytesInUse)).toBeLessThan(256 * 1024); // not the 1 MB it sent
  });
});
