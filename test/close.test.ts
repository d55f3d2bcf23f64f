// Closing, as a user relies on it: the CLOSE reaches the peer before the socket closes (node:dgram
// drops a send issued just before socket.close()); `closed` is true when close() resolves and
// `whenClosed` settles on both sides; a dead peer is noticed within reliability.deadPeerTimeoutMs,
// by a pending close() and a pending recv(); fire-and-forget sends never crash the process.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, expect, test } from "vitest";
import { DEFAULT_RELIABILITY, Transport } from "sluice";
import { caught } from "./support/errors.ts";
import { bindTest, closeAll, connectedPair, filteredSocket, publicBinder } from "./support/transports.ts";

const run = promisify(execFile);
const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

test("transport.close(): its CLOSE reaches the peer, whose pending recv() ends within 1 s (5 of 5)", async () => {
  for (let i = 0; i < 5; i++) {
    const { joiner, atGateway } = await connectedPair(bind);
    const ended = atGateway.recv();
    const started = performance.now();
    await joiner.close();
    expect(await ended).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(atGateway.closed).toBe(true);
    expect(atGateway.error).toBeUndefined();
  }
});

test("connection.close(): `closed` is true when it resolves; `whenClosed` settles on both sides once drained", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  await atJoiner.send(new Uint8Array(3000));
  const closing = atJoiner.close();
  expect(atJoiner.closed).toBe(false); // the CLOSE waits for the message to be acknowledged
  await closing;
  expect(atJoiner.closed).toBe(true);
  expect(atGateway.closed).toBe(true); // it acknowledged the CLOSE: it had it
  expect((await atGateway.recv())!.length).toBe(3000);
  expect(await atGateway.recv()).toBeUndefined();
  // Both drain (three RTOs at the 200 ms floor), then settle: the passive side need not poll.
  await Promise.all([atJoiner.whenClosed, atGateway.whenClosed]);
  expect(atJoiner.stats().id).toBeGreaterThan(0);
});

test("a vanished peer is noticed within deadPeerTimeoutMs by a pending close(), and by a pending recv() within keepAliveMs more", async () => {
  expect(DEFAULT_RELIABILITY.deadPeerTimeoutMs).toBe(10_000);
  const reliability = { deadPeerTimeoutMs: 400, keepAliveMs: 200, idleTimeoutMs: 60_000 };
  const muted = { on: false };
  const bindSeamed = (options: Parameters<typeof bindTest>[0]) => bindTest(options).then((transport) => (open.push(transport), transport));
  const { atGateway } = await connectedPair(bindSeamed, { reliability }, { reliability, socket: filteredSocket(() => !muted.on) });
  const quiet = await connectedPair(bindSeamed, { reliability }, { reliability, socket: filteredSocket(() => !muted.on) });
  await new Promise((resolve) => setTimeout(resolve, 50)); // the credit each side grants at once is acknowledged
  muted.on = true; // both joiners fall silent, as a killed process would

  let started = performance.now();
  await atGateway.send(new Uint8Array(5000));
  const closeError = await caught(() => atGateway.close());
  expect(closeError).toMatchObject({ code: "ERR_SLUICE_PEER_UNREACHABLE" });
  expect(performance.now() - started).toBeLessThan(400 + 300);

  started = performance.now();
  const recvError = await caught(() => quiet.atGateway.recv());
  expect(recvError).toMatchObject({ code: "ERR_SLUICE_PEER_UNREACHABLE", message: expect.stringMatching(/nothing acknowledged for 400 ms/) });
  expect(performance.now() - started).toBeLessThan(200 + 400 + 300);
  expect(quiet.atGateway.closed).toBe(true);
  expect(await caught(() => quiet.atGateway.whenClosed)).toBe(recvError);
});

test("sends pending when this side closes reject with ERR_SLUICE_CLOSED when awaited, and un-awaited ones crash nothing", async () => {
  const { joiner, atJoiner } = await connectedPair(bind);
  const sends = Array.from({ length: 8 }, () => atJoiner.send(new Uint8Array(1 << 20)));
  await joiner.close();
  const outcomes = await Promise.allSettled(sends);
  expect(outcomes.map((o) => (o.status === "fulfilled" ? "sent" : (o.reason as { code: string }).code))).toEqual([
    "sent", "sent", "sent", "sent", "ERR_SLUICE_CLOSED", "ERR_SLUICE_CLOSED", "ERR_SLUICE_CLOSED", "ERR_SLUICE_CLOSED",
  ]);

  const child = new URL("./children/unawaited-sends.mjs", import.meta.url).pathname;
  for (const closing of ["transport", "connection"]) {
    const { stderr } = await run(process.execPath, [child, closing], { timeout: 10_000 }); // rejects on a non-zero exit
    expect(stderr, closing).not.toMatch(/unhandled/i);
    expect(stderr, closing).toBe("");
  }
});
