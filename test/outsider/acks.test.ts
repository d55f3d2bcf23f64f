// ACK frames (0x10) from an authenticated peer that lie: naming packet numbers the gateway never sent
// (beyond what it sent, up to and past 2^53), breaking the frame's own rules (no ranges, more than
// 32, a range of 0, a gap of 0, ranges below packet 0, cut short), and acknowledging blindly,
// skipped numbers included, to inflate the gateway's window (an optimistic ACK, RFC 9000 §21.4); and
// 64-bit fields (an ACK's largest, credit limits, a stream offset) at 2^53 or more, which wire.md
// says never occur: their packet is malformed.
import { expect, test } from "vitest";
import type { Connection } from "sluice";
import { sleep, type EvilSession } from "./evil-peer.ts";
import { joinGateway, stillDelivers } from "./gateway-peers.ts";
import { bindSluice, closedAfterEach, describe3, eventually, figure } from "./harness.ts";
import { writeU32, writeU64, type Frame } from "./wire.ts";

const track = closedAfterEach();

async function connected(): Promise<{ gateway: Awaited<ReturnType<typeof bindSluice>>; session: EvilSession; inbound: Connection }> {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
  const { peer, session, inbound } = await joinGateway(gateway, "127.0.0.2");
  track(peer);
  await sleep(50); // the gateway's first credit frames and ACKs
  return { gateway, session, inbound };
}

/** An ACK frame written field by field: largest (u64) | delay (u32) | count (u8) | first range (u32) | (gap u32, length u32) × extra. */
function rawAck(largest: number, count: number, firstLength: number, extra: [gap: number, length: number][] = []): Frame {
  const bytes = new Uint8Array(18 + 8 * extra.length);
  bytes[0] = 0x10;
  writeU64(bytes, 1, largest);
  bytes[13] = count;
  writeU32(bytes, 14, firstLength);
  extra.forEach(([gap, length], i) => {
    writeU32(bytes, 18 + 8 * i, gap);
    writeU32(bytes, 22 + 8 * i, length);
  });
  return { type: "raw", bytes };
}

/** A frame of `type` whose bytes from `at` on are a u64 given as its two 32-bit halves, then `rest`. */
function rawU64Frame(type: number, before: number[], high: number, low: number, rest: number[]): Frame {
  const bytes = new Uint8Array(1 + before.length + 8 + rest.length);
  bytes[0] = type;
  bytes.set(before, 1);
  writeU32(bytes, 1 + before.length, low);
  writeU32(bytes, 5 + before.length, high);
  bytes.set(rest, 9 + before.length);
  return { type: "raw", bytes };
}

describe3("ACK frames that lie", () => {
  test("64-bit fields at 2^53 and above (an ACK's largest, message and stream credit, a stream offset) drop their packet, counted malformed; no throw, the connection works", async () => {
    const { gateway, session, inbound } = await connected();
    const u32le = (v: number) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24];
    const tooLarge: Frame[] = [];
    for (const [high, low] of [[2 ** 21, 0], [2 ** 32 - 1, 2 ** 32 - 1]]) {
      tooLarge.push(
        rawU64Frame(0x10, [], high, low, [0, 0, 0, 0, 1, ...u32le(1)]), // ACK: largest | delay | 1 range | first range 1
        rawU64Frame(0x15, [], high, low, u32le(2048)), // MESSAGE_CREDIT: byte limit | sequence limit
        rawU64Frame(0x16, u32le(0), high, low, []), // STREAM_CREDIT: stream 0 | byte limit
        rawU64Frame(0x14, [0, ...u32le(0)], high, low, [1, 0, 42]), // STREAM_DATA: flags | stream 0 | offset | length 1 | a byte
      );
    }
    const before = inbound.stats().delivery;
    for (const frame of tooLarge) session.send([{ type: "ping" }, frame]);
    const counted = await eventually(() => inbound.stats().delivery.malformedPackets - before.malformedPackets >= tooLarge.length);
    const after = inbound.stats().delivery;
    figure("64-bit fields of 2^53 and more", { sent: tooLarge.length, malformed: after.malformedPackets - before.malformedPackets, invalidAcks: after.invalidAcks - before.invalidAcks });
    expect(counted).toBe(true);
    expect(after.malformedPackets - before.malformedPackets).toBe(tooLarge.length);
    expect(after.invalidAcks - before.invalidAcks).toBe(0); // not taken as an ACK of packets never sent
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(inbound.closed).toBe(false);
    expect(await stillDelivers(session, inbound)).toBe(true);
  });

  test("ACKs of packets never sent are ignored and counted; ACKs that break the frame's rules drop their packet, counted; no throw, the connection works", async () => {
    const { gateway, session, inbound } = await connected();
    const sentSoFar = session.receivedNumbers.largest; // about what the gateway has sent
    const neverSent: Frame[] = [
      rawAck(sentSoFar + 1000, 1, 1), // one packet, far ahead
      rawAck(sentSoFar + 1000, 1, sentSoFar + 1001), // everything from 0 to far ahead
      rawAck(2 ** 53 - 1, 1, 2 ** 32 - 1), // the largest packet number there is
      rawAck(2 ** 53 - 1, 2, 1, [[2 ** 32 - 1, 2 ** 32 - 1]]),
    ];
    const broken: Frame[] = [
      rawAck(sentSoFar, 0, 1), // no range
      rawAck(sentSoFar, 33, 1, Array.from({ length: 32 }, () => [1, 1])), // more than 32
      rawAck(sentSoFar, 1, 0), // a range of no packets
      rawAck(3, 1, 5), // a first range below packet 0
      rawAck(sentSoFar, 2, 1, [[0, 1]]), // a gap of no packets
      rawAck(10, 2, 5, [[3, 10]]), // a later range below packet 0
      rawAck(sentSoFar, 3, 1, [[1, 1]]), // cut short: 3 ranges, the bytes of 2
    ];
    const before = inbound.stats().delivery;
    // Each lie in a packet of its own, with a PING: a packet that does not parse is dropped whole.
    for (const ack of [...neverSent, ...broken]) session.send([{ type: "ping" }, ack]);
    const counted = await eventually(() => {
      const d = inbound.stats().delivery;
      return d.invalidAcks - before.invalidAcks >= neverSent.length && d.malformedPackets - before.malformedPackets >= broken.length;
    });
    const after = inbound.stats().delivery;
    figure("lying ACK frames", { neverSent: after.invalidAcks - before.invalidAcks, malformed: after.malformedPackets - before.malformedPackets, optimisticAcks: after.optimisticAcks });
    expect(counted).toBe(true);
    expect(after.invalidAcks - before.invalidAcks).toBe(neverSent.length);
    expect(after.malformedPackets - before.malformedPackets).toBe(broken.length);
    expect(after.optimisticAcks).toBe(0);
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(inbound.closed).toBe(false);
    expect(await stillDelivers(session, inbound)).toBe(true);
    // And the other way: nothing the gateway sends was taken as delivered by the lies.
    const payload = new Uint8Array(64 * 1024).fill(7);
    await inbound.send(payload);
    const arrived = () => session.frames().filter((f) => f.type === "messageData" && f.total === payload.length).reduce((n, f) => n + (f.type === "messageData" ? f.bytes.length : 0), 0);
    expect(await session.until(() => arrived() >= payload.length, 3000)).toBe(true);
  });

  test("blind ACKs of every number up to the largest received (the skipped ones too): the gateway fails the connection with a protocol-violation CLOSE", async () => {
    const { gateway, session, inbound } = await connected();
    session.send([{ type: "messageCredit", byteLimit: 2 ** 40, sequenceLimit: 2 ** 20 }]); // take all it sends
    inbound.send(new Uint8Array(32 * 1024 * 1024)).catch(() => {});
    session.autoAck = false;
    // One range from packet 0 to the newest received, as if nothing had a hole.
    const blind = setInterval(() => {
      const largest = session.receivedNumbers.largest;
      if (largest >= 0) session.send([{ type: "ack", delayUs: 0, ranges: [{ high: largest, low: 0 }] }]);
    }, 2);
    const closed = await session.until(() => session.frames().some((f) => f.type === "close"), 4000);
    clearInterval(blind);
    const close = session.frames().find((f) => f.type === "close");
    const error = await inbound.whenClosed.then(() => undefined, (e: { code?: string }) => e.code);
    figure("blind ACKs until the optimistic ACK was caught", { packetsReceived: session.received.length, largest: session.receivedNumbers.largest, close, error });
    expect(closed).toBe(true);
    expect(close).toEqual({ type: "close", code: 1 });
    expect(error).toBe("ERR_SLUICE_PROTOCOL_VIOLATION");
    expect(inbound.stats().delivery.optimisticAcks).toBe(1);
    expect(session.receivedNumbers.largest).toBeLessThan(2000); // "within a few hundred packets"
    expect(gateway.stats().listenerErrors).toBe(0);
  });
});
