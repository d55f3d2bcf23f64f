// Control frames (docs/wire.md, "Frames" and "Control frames"), written and read by hand from the
// document: the layout (type, control sequence u32, body length u16, body), delivery once and in
// order, retransmission with the same sequence, the window, and the rendezvous's bodies.
import { describe, expect, it } from "vitest";
import { checkReliabilityOptions } from "../src/reliable/options.ts";
import { Session } from "../src/reliable/session.ts";
import { readControl } from "../src/rendezvous/frames.ts";

const session = () => new Session(checkReliabilityOptions({}, "options"), 0, () => 0.5);

/** docs/wire.md: type | control sequence (u32 LE) | body length (u16 LE) | body. */
function controlFrame(type: number, sequence: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(7 + body.length);
  const view = new DataView(frame.buffer);
  frame[0] = type;
  view.setUint32(1, sequence, true);
  view.setUint16(5, body.length, true);
  frame.set(body, 7);
  return frame;
}

/** The control frames in a plaintext, skipping the other frames this test meets (by their documented sizes). */
function controlFramesIn(plaintext: Uint8Array): Array<{ type: number; sequence: number; body: number[] }> {
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  const found = [];
  for (let at = 0; at < plaintext.length;) {
    const type = plaintext[at]!;
    if (type === 0x00) break; // padding to the end
    if (type >= 0x20 && type <= 0x2f) {
      const length = view.getUint16(at + 5, true);
      found.push({ type, sequence: view.getUint32(at + 1, true), body: [...plaintext.subarray(at + 7, at + 7 + length)] });
      at += 7 + length;
    } else if (type === 0x10) at += 18 + (plaintext[at + 13]! - 1) * 8; // ACK
    else if (type === 0x11) at += 1; // PING
    else if (type === 0x15) at += 13; // MESSAGE_CREDIT
    else if (type === 0x16) at += 13; // STREAM_CREDIT
    else if (type === 0x17) at += 5; // STREAMS_CREDIT
    else throw new Error(`frame 0x${type.toString(16)} not expected here`);
  }
  return found;
}

/** Everything the session sends now, as plaintexts. */
function drain(sender: Session, now: number): Uint8Array[] {
  const sent = [];
  for (let transmit = sender.pollTransmit(now); transmit !== undefined; transmit = sender.pollTransmit(now)) sent.push(Buffer.concat(transmit.parts));
  return sent;
}

function received(receiver: Session): Array<{ type: number; body: number[] }> {
  const frames = [];
  for (let frame = receiver.pollControl(); frame !== undefined; frame = receiver.pollControl()) frames.push({ type: frame.type, body: [...frame.body] });
  return frames;
}

describe("control frames on the wire", () => {
  it("go out as type | sequence | length | body, numbered from 0, and elicit an ACK", () => {
    const sender = session();
    expect(sender.sendControl(0x22, new Uint8Array([1, 2, 3]))).toBe(true);
    expect(sender.sendControl(0x20, new Uint8Array(19).fill(7))).toBe(true);
    const frames = drain(sender, 1).flatMap(controlFramesIn);
    expect(frames).toEqual([
      { type: 0x22, sequence: 0, body: [1, 2, 3] },
      { type: 0x20, sequence: 1, body: new Array(19).fill(7) },
    ]);
    expect(sender.stats().bytesInFlight).toBeGreaterThan(0); // ack-eliciting: in flight until acknowledged
  });

  it("a lost one goes again with the same sequence", () => {
    const sender = session();
    sender.sendControl(0x23, new Uint8Array([9]));
    expect(drain(sender, 1).flatMap(controlFramesIn)).toEqual([{ type: 0x23, sequence: 0, body: [9] }]);
    // The tail-loss probe, then the retransmission timeout: by then the frame has gone again.
    const again = [];
    for (let timeouts = 0; timeouts < 2; timeouts++) {
      const deadline = sender.nextDeadline();
      sender.handleTimeout(deadline);
      again.push(...drain(sender, deadline).flatMap(controlFramesIn));
    }
    expect(again).toContainEqual({ type: 0x23, sequence: 0, body: [9] });
  });

  it("are delivered once each, in sequence order, whatever order and copies they arrive in", () => {
    const receiver = session();
    let packetNumber = 0;
    const deliver = (...frames: Uint8Array[]) => expect(receiver.handlePacket(Buffer.concat(frames), packetNumber++, 1)).toBeUndefined();
    deliver(controlFrame(0x21, 1, new Uint8Array([1])));
    expect(received(receiver)).toEqual([]); // 0 is missing: 1 waits
    deliver(controlFrame(0x20, 0, new Uint8Array([0])), controlFrame(0x20, 0, new Uint8Array([0])));
    expect(received(receiver)).toEqual([{ type: 0x20, body: [0] }, { type: 0x21, body: [1] }]);
    deliver(controlFrame(0x21, 1, new Uint8Array([1])), controlFrame(0x22, 2, new Uint8Array([])));
    expect(received(receiver)).toEqual([{ type: 0x22, body: [] }]);
    expect(receiver.stats().controlFramesDropped).toBe(0);
  });

  it("a frame numbered 16 or more past the oldest not handed on is dropped and counted", () => {
    const receiver = session();
    receiver.handlePacket(controlFrame(0x20, 16, new Uint8Array([1])), 0, 1);
    receiver.handlePacket(controlFrame(0x20, 15, new Uint8Array([2])), 1, 1);
    expect(receiver.stats().controlFramesDropped).toBe(1);
    expect(received(receiver)).toEqual([]); // 15 waits for 0..14
  });

  it("a sender keeps 16 in flight past its oldest unacknowledged one, and queues at most 64", () => {
    const sender = session();
    for (let i = 0; i < 64; i++) expect(sender.sendControl(0x20, new Uint8Array([i]))).toBe(true);
    expect(sender.sendControl(0x20, new Uint8Array([64]))).toBe(false);
    expect(sender.controlRoom).toBe(0);
    const sequences = drain(sender, 1).flatMap(controlFramesIn).map((frame) => frame.sequence);
    expect(sequences).toEqual([...Array(16).keys()]);
  });

  it("64 frames reach the other side in order through the window, every fourth packet lost once", () => {
    const [a, b] = [session(), session()];
    for (let i = 0; i < 64; i++) a.sendControl(0x20 + (i % 16), new Uint8Array([i]));
    const got: number[] = [];
    let now = 1;
    let dropped = 0;
    for (let round = 0; round < 200 && got.length < 64; round++, now += 10) {
      for (const [from, to] of [[a, b], [b, a]] as const) {
        if (from.nextDeadline() <= now) from.handleTimeout(now);
        for (let transmit = from.pollTransmit(now); transmit !== undefined; transmit = from.pollTransmit(now)) {
          if (from === a && dropped++ % 4 === 0) continue; // lost on the way
          to.handlePacket(Buffer.concat(transmit.parts), transmit.packetNumber, now);
          got.push(...received(to).map((frame) => frame.body[0]!));
        }
      }
    }
    expect(got).toEqual([...Array(64).keys()]);
    expect(b.stats().controlFramesDropped).toBe(0);
  });

  it("a truncated control frame makes the packet malformed, with no effect", () => {
    const receiver = session();
    const frame = controlFrame(0x20, 0, new Uint8Array(19));
    expect(receiver.handlePacket(frame.subarray(0, 6), 0, 1)).toMatch(/truncated control frame/);
    expect(receiver.handlePacket(frame.subarray(0, 20), 1, 1)).toMatch(/longer than its packet/);
    expect(received(receiver)).toEqual([]);
  });
});

describe("the rendezvous's bodies (docs/wire.md, \"Frames\")", () => {
  /** An address in its 19-byte form: family, port u16 LE, 16 address bytes (IPv4 in the first 4). */
  const address = (a: number, b: number, c: number, d: number, port: number) => [4, port & 0xff, port >> 8, a, b, c, d, ...new Array(12).fill(0)];
  const u32 = (value: number) => [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >>> 24];
  const key = new Array(32).fill(0).map((_, i) => i + 1);

  it("OBSERVED_ADDRESS: one address", () => {
    expect(readControl(0x20, new Uint8Array(address(198, 18, 0, 3, 40000)))).toEqual({ type: 0x20, address: { host: "198.18.0.3", port: 40000 } });
    expect(readControl(0x20, new Uint8Array(18))).toBeUndefined();
  });

  it("LOCAL_ADDRESSES: a count of at most 4, then exactly that many addresses", () => {
    const two = [2, ...address(192, 168, 1, 5, 7000), ...address(10, 0, 0, 9, 7000)];
    expect(readControl(0x21, new Uint8Array(two))).toEqual({
      type: 0x21, addresses: [{ host: "192.168.1.5", port: 7000 }, { host: "10.0.0.9", port: 7000 }],
    });
    expect(readControl(0x21, new Uint8Array([0]))).toEqual({ type: 0x21, addresses: [] });
    expect(readControl(0x21, new Uint8Array(two.slice(0, -1)))).toBeUndefined();
    expect(readControl(0x21, new Uint8Array([5, ...new Array(5).fill(address(10, 0, 0, 1, 1)).flat()]))).toBeUndefined();
  });

  it("INTRODUCE_REQUEST: request id ≠ 0, then a 32-byte key", () => {
    expect(readControl(0x22, new Uint8Array([...u32(7), ...key]))).toEqual({ type: 0x22, requestId: 7, key: new Uint8Array(key) });
    expect(readControl(0x22, new Uint8Array([...u32(0), ...key]))).toBeUndefined();
    expect(readControl(0x22, new Uint8Array([...u32(7), ...key, 0]))).toBeUndefined();
  });

  it("INTRODUCTION: request id (0: not asked for), key, the peer's address, its local addresses", () => {
    const body = [...u32(0), ...key, ...address(198, 18, 0, 4, 5555), 1, ...address(198, 19, 2, 2, 41000)];
    expect(readControl(0x23, new Uint8Array(body))).toEqual({
      type: 0x23, requestId: 0, key: new Uint8Array(key), address: { host: "198.18.0.4", port: 5555 }, localAddresses: [{ host: "198.19.2.2", port: 41000 }],
    });
    expect(readControl(0x23, new Uint8Array(body.slice(0, 55)))).toBeUndefined(); // no count
  });

  it("INTRODUCE_REFUSED: request id ≠ 0 and a reason (1 not allowed, 2 unknown peer, 3 rate limited)", () => {
    expect(readControl(0x24, new Uint8Array([...u32(3), 1]))).toEqual({ type: 0x24, requestId: 3, reason: "notAllowed" });
    expect(readControl(0x24, new Uint8Array([...u32(3), 2]))).toEqual({ type: 0x24, requestId: 3, reason: "unknownPeer" });
    expect(readControl(0x24, new Uint8Array([...u32(3), 3]))).toEqual({ type: 0x24, requestId: 3, reason: "rateLimited" });
    expect(readControl(0x24, new Uint8Array([...u32(3), 4]))).toBeUndefined();
    expect(readControl(0x2f, new Uint8Array([]))).toBeUndefined(); // a control type nobody defined yet: ignored
  });
});
