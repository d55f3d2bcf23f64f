// The same package in real Deno (the pinned `deno` npm package): type-checked, imported by name, same-thread
// send/recv, and a Web Worker producer into a receiver that parks on Atomics.waitAsync.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;

test("Deno type-checks both entries, as a Deno program importing \"sluice\" or \"sluice/internal\" does", async () => {
  const entries = ["src/index.ts", "src/internal.ts", "bench/deno/listener.ts", "bench/deno/handshake.ts"];
  await expect(run(deno, ["check", ...entries], { cwd: root, timeout: 60_000 })).resolves.toBeDefined();
}, 60_000);

test("Deno: import by name, same-thread channel, Web Worker producer, a parked receiver keeps Deno alive", async () => {
  const { stdout } = await run(deno, ["run", "--allow-read", "test/deno/smoke.ts"], { cwd: root, timeout: 20_000 });
  expect(JSON.parse(stdout)).toEqual({
    sameThread: ["sent", "sent", "full"],
    sameThreadReceived: [1, 2],
    workerReceived: 20_000,
    workerOrdered: true,
    keptAlive: 9,
  });
});

for (const [flags, socket] of [[["--unstable-net"], "Deno.listenDatagram"], [[], "node:dgram"]] as const) {
  test(`Deno: two transports complete a handshake and exchange messages over ${socket}`, async () => {
    const { stdout } = await run(deno, ["run", "--allow-read", "--allow-net", "--allow-env", ...flags, "test/deno/transport.ts"], { cwd: root, timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ socket, first: "from deno", second: "and back", listenerErrors: 0, keysMatch: true, handshakeUnder1s: true, identity: true, trace: true });
  });
}

// 16 MiB: 16 stream windows, 4 send buffers; the benchmark (bench/run.mjs) moves the demo's 64.
test("Deno: a 16 MiB stream over Deno.listenDatagram arrives with the same SHA-256", async () => {
  const { stdout } = await run(deno, ["run", "--allow-read", "--allow-net", "--allow-env", "--unstable-net", "demo/deno-transfer.ts", "16"], { cwd: root, timeout: 60_000 });
  const result = JSON.parse(stdout);
  expect(result).toMatchObject({ socket: "Deno.listenDatagram", bytes: 16 * 2 ** 20, sameSha256: true, listenerErrors: 0 });
  console.log(`Deno 16 MiB transfer: ${result.mibPerSecond} MiB/s`);
}, 90_000);

test("Deno without --unstable-net warns once, through a transport's log, naming the flag and deno.json's \"unstable\": [\"net\"]", async () => {
  const script = ["run", "--allow-read", "--allow-net", "--allow-env"];
  const [without, withFlag] = await Promise.all([
    run(deno, [...script, "test/deno/unstable-net-warning.ts"], { cwd: root, timeout: 20_000 }),
    run(deno, [...script, "--unstable-net", "test/deno/unstable-net-warning.ts"], { cwd: root, timeout: 20_000 }),
  ]);
  const fallback = JSON.parse(without.stdout) as { socket: string; warnings: string[] };
  expect(fallback.socket).toBe("node:dgram");
  expect(fallback.warnings).toHaveLength(1); // the silent transport does not use it up; the third is not told again
  expect(fallback.warnings[0]).toContain("--unstable-net");
  expect(fallback.warnings[0]).toContain('"unstable": ["net"]');
  expect(JSON.parse(withFlag.stdout)).toEqual({ socket: "Deno.listenDatagram", warnings: [] });
});

test("Deno without the net permission: bind() rejects with ERR_SLUICE_BIND_FAILED on both socket paths (its cause Deno's NotCapable)", async () => {
  const script = ["run", "--no-prompt", "--allow-read", "--allow-env"];
  const answers = await Promise.all([[], ["--unstable-net"]].map(async (flags) => JSON.parse((await run(deno, [...script, ...flags, "test/deno/no-net.ts"], { cwd: root, timeout: 20_000 })).stdout)));
  for (const answer of answers) expect(answer).toEqual({ name: "SluiceError", code: "ERR_SLUICE_BIND_FAILED", cause: "NotCapable" });
});

test("Deno with --allow-net that denies the peer's port: connect() times out naming the failed sends, the last its cause, on both socket paths", async () => {
  const script = ["run", "--no-prompt", "--allow-read", "--allow-env", "--allow-net=127.0.0.1:0"];
  const [nodeDgram, listenDatagram] = await Promise.all([[], ["--unstable-net"]].map(async (flags) => JSON.parse((await run(deno, [...script, ...flags, "test/deno/denied-send.ts"], { cwd: root, timeout: 20_000 })).stdout)));
  // Deno.listenDatagram's send rejects with NotCapable; Deno's node:dgram reports "send UNKNOWN".
  expect(listenDatagram).toEqual({ code: "ERR_SLUICE_CONNECT_TIMEOUT", namesSends: true, cause: "NotCapable", sendErrors: true });
  expect(nodeDgram).toEqual({ code: "ERR_SLUICE_CONNECT_TIMEOUT", namesSends: true, cause: "Error", sendErrors: true });
});

test("Deno: a stream written a chunk that is not a Uint8Array is reset: its reader fails at once, and its slot comes back", async () => {
  const { stdout } = await run(deno, ["run", "--allow-read", "--allow-net", "--allow-env", "--unstable-net", "test/deno/stream-bad-chunk.ts"], { cwd: root, timeout: 15_000 });
  expect(JSON.parse(stdout)).toEqual({ writeError: "ERR_INVALID_ARG_TYPE", reader: "ERR_SLUICE_RESET", opened: 1200, openError: "none" });
});

test("Deno: a call that waits rejects an options key it does not know ({ timeout }, a misspelt signal) at once, naming signal", async () => {
  const { stdout } = await run(deno, ["run", "--allow-read", "--allow-net", "--allow-env", "--unstable-net", "test/deno/misspelt-wait-options.ts"], { cwd: root, timeout: 15_000 });
  const named = "ERR_INVALID_ARG_VALUE, names signal";
  const hinted = `${named}, did you mean signal`;
  expect(JSON.parse(stdout)).toEqual({ accept: named, recv: named, acceptStream: hinted, flush: named, connect: hinted, connectVia: named });
});

test("Deno: a message, a stream's pieces and a channel's packet type-check and work as BufferSources (crypto.subtle.digest, Blob, Response, TextDecoderStream)", async () => {
  await run(deno, ["check", "test/deno/received-bytes.ts"], { cwd: root, timeout: 30_000 });
  const { stdout } = await run(deno, ["run", "--allow-read", "--allow-net", "--allow-env", "--unstable-net", "test/deno/received-bytes.ts"], { cwd: root, timeout: 15_000 });
  expect(JSON.parse(stdout)).toEqual({ message: true, textDecoderStream: true, stream: true, byob: true, byobReleased: true, packet: true });
}, 45_000);
