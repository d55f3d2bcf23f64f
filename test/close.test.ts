// Closing, as a user relies on it: the CLOSE reaches the peer before the socket closes (node:dgram
// drops a send issued just before socket.close()); `closed` is true when close() resolves and
// `whenClosed` settles on both sides; a dead peer is noticed within reliability.deadPeerTimeoutMs,
// by a pending close() and a pending recv(); a close() gives up on a peer that stopped reading; recv()
// after close() delivers what had arrived; fire-and-forget sends never crash the process.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, expect, test } from "vitest";
import { DEFAULT_RELIABILITY, Transport, type Connection, type TransportOptions } from "sluice";
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

test("close() does not wait forever on a peer that stopped reading: ERR_SLUICE_CLOSE_TIMEOUT after deadPeerTimeoutMs without progress; a peer that reads is waited for", async () => {
  const window: TransportOptions = { reliability: { messageWindowBytes: 64 * 1024 } };
  // Keep-alives every 100 ms: with nothing to send either way, they are how the peer is heard from.
  const reliability = { deadPeerTimeoutMs: 400, keepAliveMs: 100 };
  // The peer acknowledges but reads nothing: 256 KiB written, its 64 KiB window full.
  const stuck = await connectedPair(bind, window, { reliability });
  for (let i = 0; i < 8; i++) await stuck.atJoiner.send(new Uint8Array(32 * 1024));
  const started = performance.now();
  const error = await caught(() => stuck.atJoiner.close());
  expect(error).toMatchObject({ name: "SluiceError", code: "ERR_SLUICE_CLOSE_TIMEOUT", message: expect.stringMatching(/^close\(\) gave up: the peer took none of the \d+ bytes still to deliver for 400 ms/) });
  expect(performance.now() - started).toBeGreaterThanOrEqual(400);
  expect(stuck.atJoiner.closed).toBe(true);
  expect(stuck.atJoiner.error).toBe(error);
  // The peer got one CLOSE: it reads what had arrived whole, then its end.
  let received = 0;
  for (let message = await stuck.atGateway.recv(); message !== undefined; message = await stuck.atGateway.recv()) received += message.length;
  expect(received).toBeGreaterThan(0);
  expect(received).toBeLessThan(8 * 32 * 1024);

  // A peer that reads, slowly (a pause after each message), takes longer than deadPeerTimeoutMs in all: the close waits for it.
  const slow = await connectedPair(bind, window, { reliability });
  for (let i = 0; i < 16; i++) await slow.atJoiner.send(new Uint8Array(16 * 1024));
  const closing = slow.atJoiner.close();
  const readStarted = performance.now();
  for (let i = 0; i < 16; i++) {
    expect((await slow.atGateway.recv())!.length).toBe(16 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await closing;
  expect(performance.now() - readStarted).toBeGreaterThan(400);
  expect(slow.atJoiner.error).toBeUndefined();
  expect(await slow.atGateway.recv()).toBeUndefined();
});

test("close() takes no stream write still pending, even one called in the same turn: it rejects with ERR_SLUICE_CLOSED, the peer's reader never ends cleanly; awaiting writer.close() first delivers it all", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const writer = atJoiner.openStream().getWriter();
  const refusals = Promise.all([writer.write(new Uint8Array(1000)), writer.close()].map((pending) => caught(() => pending)));
  await atJoiner.close(); // in the same turn: a WritableStream hands a write to its sink a turn later
  expect(await refusals).toMatchObject([{ code: "ERR_SLUICE_CLOSED" }, { code: "ERR_SLUICE_CLOSED" }]);
  expect(await atGateway.acceptStream()).toBeUndefined(); // nothing of the stream had gone

  const other = await connectedPair(bind);
  const complete = other.atJoiner.openStream().getWriter();
  void complete.write(new Uint8Array(3000));
  await complete.close(); // its bytes and end are queued: close() delivers them before its CLOSE
  await other.atJoiner.close();
  const reader = (await other.atGateway.acceptStream())!.getReader();
  let bytes = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) bytes += read.value.length;
  expect(bytes).toBe(3000);
});

test("recv() after this side's close() delivers the messages that had arrived, then ends; a stream's reader its bytes, then ERR_SLUICE_CLOSED; after abort(), nothing", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  await atJoiner.send(new TextEncoder().encode("one"));
  await atJoiner.send(new TextEncoder().encode("two"));
  const writer = atJoiner.openStream().getWriter();
  await writer.write(new TextEncoder().encode("unfinished"));
  await atJoiner.flush(); // both messages and the stream's bytes are at the gateway
  const reader = (await atGateway.acceptStream())!.getReader();
  await atGateway.close(); // with two messages and a stream unread
  expect(new TextDecoder().decode(await atGateway.recv())).toBe("one");
  expect(new TextDecoder().decode(await atGateway.recv())).toBe("two");
  expect(await atGateway.recv()).toBeUndefined();
  expect(new TextDecoder().decode((await reader.read()).value)).toBe("unfinished");
  expect(await caught(() => reader.read())).toMatchObject({ code: "ERR_SLUICE_CLOSED" });

  const other = await connectedPair(bind);
  await other.atJoiner.send(new Uint8Array([1]));
  await other.atJoiner.flush();
  other.atGateway.abort("enough");
  expect(await caught(() => other.atGateway.recv())).toMatchObject({ code: "ERR_SLUICE_ABORTED", cause: "enough" });
});

// The peer's CLOSE woke its recv() at once, and its ACK of the CLOSE was put off to the end of the
// turn (to ride with the application's answer): a peer that ended the connection in that turn (its
// transport's close, an abort) sent nothing more, and close() here waited out its dead-peer timeout
// (10 s) and rejected with ERR_SLUICE_PEER_UNREACHABLE. The ending side answers the ACK it owes.
const endsAtOnce = {
  "transport.close()": async (gateway: Transport) => gateway.close(),
  "connection.abort()": async (_: Transport, connection: Connection) => connection.abort(),
  "connection.close() then transport.close() at once": async (gateway: Transport, connection: Connection) => {
    const closing = connection.close();
    await gateway.close();
    await closing;
  },
};
test.each(Object.keys(endsAtOnce) as Array<keyof typeof endsAtOnce>)("close() resolves at once when the peer, as soon as its recv() ends, calls %s (3 of 3)", async (how) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    for (let i = 0; i < 3; i++) {
      const { gateway, atJoiner, atGateway } = await connectedPair(bind);
      await atJoiner.send(new Uint8Array([1]));
      expect(await atGateway.recv()).toEqual(new Uint8Array([1]));
      const peerSide = (async () => {
        const end = await atGateway.recv();
        await endsAtOnce[how](gateway, atGateway);
        return end;
      })();
      const started = performance.now();
      const closing = await Promise.allSettled([atJoiner.close()]);
      expect(closing[0]).toEqual({ status: "fulfilled", value: undefined });
      expect(performance.now() - started).toBeLessThan(2000); // the dead-peer timeout is 10 s
      expect(atJoiner.closed).toBe(true);
      expect(atJoiner.error).toBeUndefined();
      expect(await peerSide).toBeUndefined(); // the peer's side threw nothing
    }
    await new Promise((resolve) => setTimeout(resolve, 20)); // a rejection nobody handled is reported after its turn
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});
