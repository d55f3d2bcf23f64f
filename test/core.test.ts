// The WebAssembly core's contract with the host: one import (a shared memory), no static data, and
// the host's view of its exports (build/core-constants.js, build/core-exports.d.ts, generated at build
// time) agreeing with a fresh instantiation of build/core.wasm; then the linking rules the arena relies on.
import { readFileSync } from "node:fs";
import ts from "typescript";
import { expect, test } from "vitest";
import { Arena, channel } from "sluice";
import * as generated from "../build/core-constants.js";

const wasm = readFileSync(new URL("../build/core.wasm", import.meta.url));
const module = new WebAssembly.Module(wasm);
const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
const instance = new WebAssembly.Instance(module, { env: { memory } });
const exported = (kind: string) => WebAssembly.Module.exports(module).filter((entry) => entry.kind === kind).map((entry) => entry.name);

test("the module imports exactly one thing, env.memory, and has no data segment to re-apply", () => {
  expect(WebAssembly.Module.imports(module)).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
  // A data segment would be re-written into the shared memory by every thread's instantiation.
  const wat = readFileSync(new URL("../build/core.wat", import.meta.url), "utf8");
  expect(wat).not.toMatch(/\(data /);
  expect(wasm.byteLength).toBeLessThan(16 * 1024);
});

test("the host's constants are the module's globals: every one, with its value, and no other", () => {
  const globals = Object.fromEntries(exported("global").map((name) => [name, (instance.exports[name] as WebAssembly.Global).value]));
  expect({ ...generated }).toEqual(globals);
  expect(Object.keys(globals).length).toBeGreaterThan(40);
});

test("the host's CoreExports type names every function of the module, with its parameter count, and no other", () => {
  const path = new URL("../build/core-exports.d.ts", import.meta.url).pathname;
  const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
  const declared = source.statements.find((statement): statement is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(statement) && statement.name.text === "CoreExports");
  const methods = Object.fromEntries(declared!.members.filter(ts.isMethodSignature).map((method) => [method.name.getText(source), method.parameters.length]));
  expect(declared!.members.length).toBe(Object.keys(methods).length); // methods only: the constants are literals
  const functions = Object.fromEntries(exported("function").map((name) => [name, (instance.exports[name] as (...args: number[]) => unknown).length]));
  expect(methods).toEqual(functions);
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
