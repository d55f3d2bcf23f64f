// Each misuse gets a TypeError or RangeError that names the problem, enqueues nothing, and leaves
// the channel usable.
import { describe, expect, test } from "vitest";
import { Arena, channel, Receiver, Sender, type SenderHandle } from "sluice";

/** The channel still carries a packet both ways. */
function expectUsable(tx: Sender, rx: Receiver): void {
  expect(tx.trySend(new Uint8Array([42]))).toBe("sent");
  expect(rx.tryRecv()).toEqual(new Uint8Array([42]));
  expect(rx.tryRecv()).toBe("empty");
}

describe("packets", () => {
  const notBytes: [string, unknown][] = [
    ["a string", "hello"],
    ["a number", 7],
    ["null", null],
    ["undefined", undefined],
    ["an ArrayBuffer", new ArrayBuffer(4)],
    ["a DataView", new DataView(new ArrayBuffer(4))],
    ["an Int8Array", new Int8Array(4)],
    ["a plain array", [1, 2, 3]],
  ];
  for (const [name, value] of notBytes) {
    test(`trySend and send refuse ${name} with a TypeError`, async () => {
      const [tx, rx] = channel(4);
      expect(() => tx.trySend(value as Uint8Array)).toThrow(/packet must be a Uint8Array/);
      await expect(tx.send(value as Uint8Array)).rejects.toThrow(TypeError);
      expect(rx.stats().sent).toBe(0);
      expectUsable(tx, rx);
    });
  }

  test("a packet over maxPacketSize is a RangeError naming both sizes", async () => {
    const [tx, rx] = channel(4, { maxPacketSize: 100 });
    expect(() => tx.trySend(new Uint8Array(101))).toThrow(/101 bytes exceeds this channel's maxPacketSize of 100/);
    await expect(tx.send(new Uint8Array(101))).rejects.toThrow(RangeError);
    expect(tx.trySend(new Uint8Array(100))).toBe("sent"); // the limit itself is fine
    expect(rx.tryRecv()).toHaveLength(100);
    expectUsable(tx, rx);
  });

  test("a Buffer (a Uint8Array subclass) and an offset view are accepted; the view's bytes only", () => {
    const [tx, rx] = channel(4);
    expect(tx.trySend(Buffer.from([1, 2]))).toBe("sent");
    expect(tx.trySend(new Uint8Array([9, 8, 7, 6]).subarray(1, 3))).toBe("sent");
    expect(rx.tryRecv()).toEqual(new Uint8Array([1, 2]));
    expect(rx.tryRecv()).toEqual(new Uint8Array([8, 7]));
  });
});

describe("batch receive", () => {
  test("drain and recvBatch refuse a visitor that is not a function and a limit that is not a positive integer", async () => {
    const [tx, rx] = channel(4);
    tx.trySend(new Uint8Array([1]));
    expect(() => rx.drain(null as never)).toThrow(/visit must be a function/);
    await expect(rx.recvBatch("nope" as never)).rejects.toThrow(TypeError);
    for (const limit of [0, -1, 1.5, Number.NaN, "3"]) expect(() => rx.drain(() => {}, limit as number)).toThrow(/limit must be a positive integer or Infinity/);
    expect(rx.stats().queued).toBe(1); // nothing was consumed by the refused calls
    expect(rx.drain(() => {}, 1)).toBe(1);
    expectUsable(tx, rx);
  });
});

describe("options", () => {
  const capacities: [unknown, RegExp, ErrorConstructor][] = [
    [0, /capacity must be from 1/, RangeError],
    [-3, /capacity must be from 1/, RangeError],
    [1.5, /capacity must be an integer, got 1.5/, TypeError],
    [Number.NaN, /capacity must be an integer, got NaN/, TypeError],
    ["4", /capacity must be an integer, got string/, TypeError],
    [1e9, /capacity must be from 1 to \d+, got 1000000000/, RangeError],
  ];
  for (const [capacity, message, type] of capacities) {
    test(`capacity ${String(capacity)} (${typeof capacity}) is a ${type.name}`, () => {
      expect(() => channel(capacity as number)).toThrow(type);
      expect(() => channel(capacity as number)).toThrow(message);
    });
  }

  test("bad maxPacketSize, maxLanes and arena options name themselves", () => {
    expect(() => channel(4, { maxPacketSize: 4000 })).toThrow(/maxPacketSize for an arena of 2048-byte frames must be from 0 to 2040/);
    expect(() => channel(4, { maxPacketSize: -1 })).toThrow(RangeError);
    expect(() => channel(4, { maxLanes: 0 })).toThrow(/maxLanes must be from 1/);
    expect(() => Arena.create({ frameBytes: 3000 })).toThrow(/frameBytes must be a power of two/);
    expect(() => Arena.create({ bytes: 10 })).toThrow(/arena bytes must be an integer from/);
    expect(() => channel(4, null as never)).toThrow(/channel options must be an object/);
  });
});

describe("handles", () => {
  test("things that are not handles are TypeErrors", () => {
    const [tx, rx] = channel(4);
    const real = tx.toHandle();
    const fakes: [unknown, RegExp][] = [
      [null, /expected a Sluice sender handle, got null/],
      [42, /got number/],
      [{}, /sluice field is undefined/],
      [{ ...real, sluice: "receiver" }, /sluice field is "receiver"/],
      [{ ...real, version: 99 }, /version 99/],
      [{ ...real, memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }) }, /not a Sluice arena/],
      [{ ...real, memory: new WebAssembly.Memory({ initial: 1 }) }, /not a shared WebAssembly.Memory/],
      [{ ...real, channel: 12345 }, /malformed|does not name a live channel/],
      [{ ...real, nonce: real.nonce + 1 }, /does not name a live channel/],
      [{ ...real, lane: real.lane + 2048 }, /names no lane/],
    ];
    for (const [fake, message] of fakes) expect(() => Sender.fromHandle(fake as SenderHandle)).toThrow(message);
    expect(() => Receiver.fromHandle(real as never)).toThrow(TypeError);
    // The real handle still works, once.
    const other = Sender.fromHandle(real);
    expect(() => Sender.fromHandle(real)).toThrow(/already used/);
    other.close();
    expectUsable(tx, rx);
  });

  test("a handle of a channel that has ended names the problem", async () => {
    const [tx, rx] = channel(4);
    const handle = tx.toHandle();
    Sender.fromHandle(handle).close();
    tx.close();
    expect(await rx.recv()).toBeUndefined(); // every party gone: the channel is freed
    expect(() => Sender.fromHandle(handle)).toThrow(/does not name a live channel/);
  });

  test("a moved receiver throws on use; a receiver handle works once", () => {
    const [tx, rx] = channel(4);
    const handle = rx.toHandle();
    expect(() => rx.tryRecv()).toThrow(/moved to another thread/);
    const moved = Receiver.fromHandle(handle);
    expect(() => Receiver.fromHandle(handle)).toThrow(/already used/);
    expectUsable(tx, moved);
  });

  test("more lanes than maxLanes is a RangeError; the channel stays usable", () => {
    const [tx, rx] = channel(4, { maxLanes: 2 });
    tx.toHandle();
    expect(() => tx.toHandle()).toThrow(/maximum of lanes/);
    expectUsable(tx, rx);
  });

  test("closed senders: trySend answers closed, clone and toHandle throw", () => {
    const [tx, rx] = channel(4);
    const keep = tx.clone();
    tx.close();
    expect(tx.trySend(new Uint8Array(1))).toBe("closed");
    expect(() => tx.clone()).toThrow(/closed Sender/);
    expect(() => tx.toHandle()).toThrow(/closed Sender/);
    expectUsable(keep, rx);
  });
});
