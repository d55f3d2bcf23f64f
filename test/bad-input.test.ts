// Each misuse gets a TypeError or RangeError with a code, as Node's validators give, that names the
// problem, enqueues nothing, and leaves the channel usable.
import { describe, expect, test } from "vitest";
import { Arena, channel, Receiver, Sender, type SenderHandle } from "sluice";
import { caught, expectCoded } from "./support/errors.ts";

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
      expectCoded(await caught(() => tx.trySend(value as Uint8Array)), TypeError, "ERR_INVALID_ARG_TYPE", /The "packet" argument must be an instance of Uint8Array/);
      expectCoded(await caught(() => tx.send(value as Uint8Array)), TypeError, "ERR_INVALID_ARG_TYPE");
      expect(rx.stats().sent).toBe(0);
      expectUsable(tx, rx);
    });
  }

  test("a packet over maxPacketSize is a RangeError naming both sizes", async () => {
    const [tx, rx] = channel(4, { maxPacketSize: 100 });
    expectCoded(await caught(() => tx.trySend(new Uint8Array(101))), RangeError, "ERR_OUT_OF_RANGE",
      /The value of "packet.byteLength" is out of range. It must be <= 100 \(the channel's maxPacketSize\). Received 101/);
    expectCoded(await caught(() => tx.send(new Uint8Array(101))), RangeError, "ERR_OUT_OF_RANGE");
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
    expectCoded(await caught(() => rx.drain(null as never)), TypeError, "ERR_INVALID_ARG_TYPE", /The "visit" argument must be of type function. Received null/);
    expectCoded(await caught(() => rx.recvBatch("nope" as never)), TypeError, "ERR_INVALID_ARG_TYPE");
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      expectCoded(await caught(() => rx.drain(() => {}, limit)), RangeError, "ERR_OUT_OF_RANGE", /The value of "limit" is out of range. It must be an integer >= 1/);
    }
    expectCoded(await caught(() => rx.drain(() => {}, "3" as never)), TypeError, "ERR_INVALID_ARG_TYPE", /The "limit" argument must be of type number/);
    expect(rx.stats().queued).toBe(1); // nothing was consumed by the refused calls
    expect(rx.drain(() => {}, 1)).toBe(1);
    expectUsable(tx, rx);
  });
});

describe("options", () => {
  const capacities: [unknown, RegExp, ErrorConstructor, string][] = [
    [0, /The value of "capacity" is out of range. It must be an integer from 1 to \d+. Received 0/, RangeError, "ERR_OUT_OF_RANGE"],
    [-3, /Received -3/, RangeError, "ERR_OUT_OF_RANGE"],
    [1.5, /It must be an integer from 1 to \d+. Received 1.5/, RangeError, "ERR_OUT_OF_RANGE"],
    [Number.NaN, /Received NaN/, RangeError, "ERR_OUT_OF_RANGE"],
    ["4", /The "capacity" argument must be of type number. Received type string \('4'\)/, TypeError, "ERR_INVALID_ARG_TYPE"],
    [1e9, /Received 1000000000/, RangeError, "ERR_OUT_OF_RANGE"],
  ];
  for (const [capacity, message, type, code] of capacities) {
    test(`capacity ${String(capacity)} (${typeof capacity}) is a ${type.name} ${code}`, async () => {
      expectCoded(await caught(() => channel(capacity as number)), type, code, message);
    });
  }

  test("bad maxPacketSize, maxLanes and arena options name themselves", async () => {
    expectCoded(await caught(() => channel(4, { maxPacketSize: 4000 })), RangeError, "ERR_OUT_OF_RANGE",
      /The value of "options.maxPacketSize" is out of range. It must be an integer from 0 to 2040. Received 4000/);
    expectCoded(await caught(() => channel(4, { maxPacketSize: -1 })), RangeError, "ERR_OUT_OF_RANGE");
    expectCoded(await caught(() => channel(4, { maxLanes: 0 })), RangeError, "ERR_OUT_OF_RANGE", /"options.maxLanes" is out of range. It must be an integer from 1/);
    expectCoded(await caught(() => channel(4, { maxLane: 2 } as never)), TypeError, "ERR_INVALID_ARG_VALUE", /'options.maxLane' is not an option \(did you mean 'maxLanes'\?\)/);
    expectCoded(await caught(() => Arena.create({ frames: 64 } as never)), TypeError, "ERR_INVALID_ARG_VALUE", /'options.frames' is not an option/);
    // An arena that is not one was read as one (a TypeError with no code, from inside).
    expectCoded(await caught(() => channel(8, { arena: {} as Arena })), TypeError, "ERR_INVALID_ARG_TYPE", /"options.arena" .*must be an instance of Arena/);
    expectCoded(await caught(() => Arena.create({ frameBytes: 3000 })), TypeError, "ERR_INVALID_ARG_VALUE",
      /The property 'options.frameBytes' must be one of: 1024, 2048, 4096, 8192, 16384, 32768, 65536. Received 3000/);
    expectCoded(await caught(() => Arena.create({ frameBytes: 512 })), RangeError, "ERR_OUT_OF_RANGE", /"options.frameBytes"/);
    expectCoded(await caught(() => Arena.create({ bytes: 10 })), RangeError, "ERR_OUT_OF_RANGE", /The value of "options.bytes" is out of range. It must be an integer from \d+ to \d+. Received 10/);
    expectCoded(await caught(() => channel(4, null as never)), TypeError, "ERR_INVALID_ARG_TYPE", /The "options" argument must be of type object. Received null/);
  });
});

describe("handles", () => {
  test("things that are not handles are TypeErrors", async () => {
    const [tx, rx] = channel(4);
    const real = tx.toHandle();
    const fakes: [unknown, RegExp, ErrorConstructor, string][] = [
      [null, /The "handle" argument must be of type object. Received null/, TypeError, "ERR_INVALID_ARG_TYPE"],
      [42, /Received type number \(42\)/, TypeError, "ERR_INVALID_ARG_TYPE"],
      [{}, /The property 'handle.sluice' must be one of: 'sender'. Received undefined/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, sluice: "receiver" }, /'handle.sluice' must be one of: 'sender'. Received 'receiver'/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, version: 99 }, /'handle.version' must be one of: 1. Received 99/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }) }, /'handle.memory' is not a Sluice arena/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, memory: new WebAssembly.Memory({ initial: 1 }) }, /"handle.memory" property must be a shared WebAssembly.Memory/, TypeError, "ERR_INVALID_ARG_TYPE"],
      [{ ...real, channel: 12345 }, /'handle.channel' does not name a live channel/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, channel: "12345" }, /"handle.channel" property must be of type number/, TypeError, "ERR_INVALID_ARG_TYPE"],
      [{ ...real, nonce: real.nonce + 1 }, /does not name a live channel/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, lane: real.lane + 2048 }, /'handle.lane' names no lane of its channel/, TypeError, "ERR_INVALID_ARG_VALUE"],
      [{ ...real, maxPacketSize: 4096 }, /"handle.maxPacketSize" is out of range. It must be an integer from 0 to 2040/, RangeError, "ERR_OUT_OF_RANGE"],
    ];
    for (const [fake, message, type, code] of fakes) expectCoded(await caught(() => Sender.fromHandle(fake as SenderHandle)), type, code, message);
    expect(() => Receiver.fromHandle(real as never)).toThrow(TypeError);
    // The real handle still works, once.
    const other = Sender.fromHandle(real);
    expectCoded(await caught(() => Sender.fromHandle(real)), TypeError, "ERR_INVALID_ARG_VALUE", /'handle.lane' was already claimed: each handle works once/);
    other.close();
    expectUsable(tx, rx);
  });

  test("a handle of a channel that has ended names the problem", async () => {
    const [tx, rx] = channel(4);
    const handle = tx.toHandle();
    Sender.fromHandle(handle).close();
    tx.close();
    expect(await rx.recv()).toBeUndefined(); // every party gone: the channel is freed
    expectCoded(await caught(() => Sender.fromHandle(handle)), TypeError, "ERR_INVALID_ARG_VALUE", /does not name a live channel/);
  });

  test("a moved receiver throws on use; a receiver handle works once", async () => {
    const [tx, rx] = channel(4);
    const handle = rx.toHandle();
    expect(() => rx.tryRecv()).toThrow(/moved to another thread/);
    const moved = Receiver.fromHandle(handle);
    expectCoded(await caught(() => Receiver.fromHandle(handle)), TypeError, "ERR_INVALID_ARG_VALUE", /'handle.token' was already claimed/);
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
