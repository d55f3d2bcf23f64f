// An authenticated peer that breaks the rules: the message or stream it broke fails alone, counted,
// with an error that says what was wrong; nothing is allocated from what it merely declares.
import { describe, expect, it } from "vitest";
import { PacketWriter } from "../src/reliable/frames.ts";
import { checkReliabilityOptions } from "../src/reliable/options.ts";
import { Session } from "../src/reliable/session.ts";

function packet(write: (writer: PacketWriter) => void): Uint8Array {
  const writer = new PacketWriter(1171);
  writer.begin();
  write(writer);
  return Buffer.concat(writer.finish());
}

describe("bad input from an authenticated peer", () => {
  const session = () => new Session(checkReliabilityOptions({ maxMessageBytes: 1 << 20 }, "options"), 0);
  let packetNumber = 0;

  it("refuses a message declared over the limit without allocating, and goes on with the next", () => {
    const s = session();
    const before = process.memoryUsage().arrayBuffers;
    s.handlePacket(packet((w) => w.messageData(0, 2 ** 32 - 1, 0, new Uint8Array(100))), packetNumber++, 1);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    expect(s.lastStreamError).toMatch(/message 0 declares 4294967295 bytes, over the 1048576-byte limit/);
    s.handlePacket(packet((w) => w.messageData(1, 3, 0, new Uint8Array([7, 8, 9]))), packetNumber++, 2);
    expect(s.readMessage()).toEqual(new Uint8Array([7, 8, 9]));
    expect(s.stats().streamErrors).toBe(1);
    expect(s.state).toBe("open");
  });

  it("fails a message whose fragment lies beyond its declared length", () => {
    const s = session();
    s.handlePacket(packet((w) => w.messageData(0, 1000, 990, new Uint8Array(20))), packetNumber++, 1);
    expect(s.lastStreamError).toMatch(/message 0: bytes \[990, 1010\) lie beyond its declared 1000 bytes/);
    s.handlePacket(packet((w) => w.messageData(0, 1000, 0, new Uint8Array(1000))), packetNumber++, 2);
    expect(s.readMessage()).toBeUndefined(); // the failed message is skipped, not resurrected
  });

  it("fails a stream that sends past its end, or changes its end", () => {
    const s = session();
    s.handlePacket(packet((w) => w.streamData(0, 0, true, new Uint8Array(10))), packetNumber++, 1);
    s.handlePacket(packet((w) => w.streamData(0, 10, false, new Uint8Array(5))), packetNumber++, 2);
    const id = s.acceptStream()!;
    expect(() => s.readStream(id)).toThrow(/stream 0 sent bytes up to 15, beyond its end at 10/);
    s.handlePacket(packet((w) => w.streamData(1, 0, false, new Uint8Array(10))), packetNumber++, 3);
    s.handlePacket(packet((w) => w.streamData(1, 0, true, new Uint8Array(4))), packetNumber++, 4);
    expect(s.lastStreamError).toMatch(/stream 1 ends at 4 but sent bytes up to 10/);
    expect(s.stats().streamErrors).toBe(2);
    expect(s.state).toBe("open");
  });

  it("fails a stream that overruns its credit, and ignores streams over the stream limit", () => {
    const s = session();
    s.handlePacket(packet((w) => w.streamData(0, 2 ** 40, false, new Uint8Array(10))), packetNumber++, 1);
    expect(s.lastStreamError).toMatch(/stream 0 sent bytes up to 1099511627786, beyond the 1048576 we allowed/);
    s.handlePacket(packet((w) => w.streamData(1_000_000, 0, false, new Uint8Array(10))), packetNumber++, 2);
    expect(s.stats().flowControlViolations).toBe(2);
  });

  it("drops a packet whose frames do not parse, whole, and says why", () => {
    const s = session();
    const good = packet((w) => w.messageData(0, 3, 0, new Uint8Array([1, 2, 3])));
    expect(s.handlePacket(good.subarray(0, good.length - 1), packetNumber++, 1)).toMatch(/message frame longer than its packet/);
    expect(s.handlePacket(new Uint8Array([0x7f]), packetNumber++, 1)).toMatch(/unknown frame type 0x7f/);
    expect(s.handlePacket(new Uint8Array([0x10, 1, 2]), packetNumber++, 1)).toMatch(/truncated ACK frame/);
    expect(s.readMessage()).toBeUndefined();
    expect(s.stats().malformedPackets).toBe(3);
  });
});
