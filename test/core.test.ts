// The WebAssembly core's contract with the host: one import (a shared memory), no static data, the
// JS mirrors of its constants, and the linking rules the arena relies on.
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { Arena, channel } from "sluice";

const wasm = readFileSync(new URL("../build/core.wasm", import.meta.url));
const module = new WebAssembly.Module(wasm);

test("the module imports exactly one thing, env.memory, and has no data segment to re-apply", () => {
  expect(WebAssembly.Module.imports(module)).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
  // A data segment would be re-written into the shared memory by every thread's instantiation.
  const wat = readFileSync(new URL("../build/core.wat", import.meta.url), "utf8");
  expect(wat).not.toMatch(/\(data /);
  expect(wasm.byteLength).toBeLessThan(16 * 1024);
});

test("the host's mirrors of layout constants match the module's exports", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, WebAssembly.Global>;
  expect(exports.ARENA_MAGIC_VALUE!.value).toBe(0x534c4331);
  expect(exports.AR_MAGIC!.value).toBe(0);
  expect(exports.AR_ID!.value).toBe(4);
  expect(exports.FRAME_DATA!.value).toBe(8);
  expect(exports.FRAME_LENGTH!.value).toBe(0);
});

test("linking: a non-shared memory or a larger maximum than the module's is refused", () => {
  expect(() => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } })).toThrow(/shared/);
  const tooBig = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  expect(() => new WebAssembly.Instance(module, { env: { memory: tooBig } })).toThrow(/maximum/);
});

test("two arenas on one thread are independent", () => {
  const a = Arena.create({ bytes: 1 << 20, frameBytes: 1024 });
  const b = Arena.create({ bytes: 1 << 20, frameBytes: 1024 });
  expect(a.id).not.toBe(b.id);
  const [ta, ra] = channel(2, { arena: a, maxPacketSize: 16 });
  const [tb, rb] = channel(2, { arena: b, maxPacketSize: 16 });
  ta.trySend(new Uint8Array([1]));
  tb.trySend(new Uint8Array([2]));
  expect(ra.tryRecv()).toEqual(new Uint8Array([1]));
  expect(rb.tryRecv()).toEqual(new Uint8Array([2]));
});
