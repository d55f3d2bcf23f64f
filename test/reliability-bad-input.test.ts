// An authenticated peer that breaks the rules: the message or stream it broke fails alone, counted,
// with an error that says what was wrong; nothing is allocated from what it merely declares.
import fc from "fast-check";
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

  it("ignores and counts an ACK of packet numbers never sent", () => {
    const s = session();
    s.handlePacket(packet((w) => w.ack([[0, 1_000_000]], 0)), packetNumber++, 1);
    expect(s.stats().invalidAcks).toBe(1);
    expect(s.state).toBe("open");
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

describe("any plaintext an authenticated peer could send", () => {
  it("never throws out of handlePacket, pollTransmit or handleTimeout; every packet is taken or counted malformed", () => {
    const frameBytes = fc.oneof(
      fc.uint8Array({ maxLength: 1171 }), // noise
      fc.tuple(fc.constantFrom(0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18), fc.uint8Array({ maxLength: 60 }))
        .map(([type, rest]) => Uint8Array.from([type, ...rest])), // a known type with arbitrary fields
    );
    fc.assert(fc.property(fc.array(frameBytes, { minLength: 1, maxLength: 40 }), (packets) => {
      const s = new Session(checkReliabilityOptions({ maxMessageBytes: 1 << 16 }, "options"), 0);
      let malformed = 0;
      packets.forEach((plaintext, i) => {
        if (s.handlePacket(plaintext, i, i) !== undefined) malformed++;
        for (let t = s.pollTransmit(i); t !== undefined; t = s.pollTransmit(i));
        if (s.nextDeadline() <= i + 1) s.handleTimeout(i + 1);
        for (;;) {
          const id = s.acceptStream();
          if (id === undefined) break;
          try {
            while (s.readStream(id));
          } catch {
            // a stream the peer broke: reported to its reader, as it should be
          }
        }
        while (s.readMessage() !== undefined);
      });
      const stats = s.stats();
      expect(stats.malformedPackets).toBe(malformed);
      expect(stats.packetsReceived + stats.malformedPackets).toBe(packets.length);
    }), { seed: 0xbad, numRuns: 500 });
  });
});
