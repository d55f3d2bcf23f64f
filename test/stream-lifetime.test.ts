// Streams as users rely on them, through "sluice" alone: the README's order (write 1 MiB + 1 byte,
// await writer.close(), and only then acceptStream()) cannot deadlock; flush() awaits the peer's
// acknowledgement; a cancelled reader tells the writer (STOP_SENDING), whose writes and close()
// reject at once; a stream lives as long as its connection, however long its writer is silent.
import { createHash } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import type { Transport } from "sluice";
import { caught } from "./support/errors.ts";
import { readAll } from "./support/streams.ts";
import { closeAll, connectedPair, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

/** `promise`'s outcome, or "pending" if it has none within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([promise, new Promise<"pending">((resolve) => setTimeout(resolve, ms, "pending"))]);
}

test("the README's order: 1 MiB + 1 byte written, writer.close() awaited before the peer accepts: no deadlock", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const bigChunk = new Uint8Array(2 ** 20 + 1).fill(7);
  const writer = atJoiner.openStream().getWriter();
  await writer.write(bigChunk);
  expect(await within(writer.close(), 2000)).toBeUndefined(); // the end is queued: the stream's window (1 MiB) cannot hold it yet
  const flushed = atJoiner.flush();
  expect(await within(flushed, 200)).toBe("pending"); // the last byte and the end wait for the reader
  const readable = (await atGateway.acceptStream())!;
  expect(await readAll(readable)).toEqual({ bytes: bigChunk.length, sha256: createHash("sha256").update(bigChunk).digest("hex") });
  await flushed; // everything acknowledged now
});

test("a cancelled reader tells the writer: its pending and later writes and close() reject with ERR_SLUICE_STREAM_CANCELLED", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const writer = atJoiner.openStream().getWriter();
  await writer.write(new Uint8Array(1000));
  const reader = (await atGateway.acceptStream())!.getReader();
  await reader.read();
  // The reader holds off: a write takes the stream its window (1 MiB) ahead of it, and the next one waits.
  await writer.write(new Uint8Array(1 << 20));
  const waiting = writer.write(new Uint8Array(1 << 20));
  expect(await within(waiting, 100)).toBe("pending");
  const started = performance.now();
  await reader.cancel(new Error("enough"));
  expect(await caught(() => waiting)).toMatchObject({ name: "SluiceError", code: "ERR_SLUICE_STREAM_CANCELLED", message: "stream 0 was cancelled by its reader" });
  expect(performance.now() - started).toBeLessThan(500);
  // The stream is errored now (WHATWG): later writes and `closed` give the same error; close() gives
  // the TypeError ERR_INVALID_STATE WHATWG specifies for an errored stream.
  expect(await caught(() => writer.write(new Uint8Array(1)))).toMatchObject({ code: "ERR_SLUICE_STREAM_CANCELLED" });
  expect(await caught(() => writer.closed)).toMatchObject({ code: "ERR_SLUICE_STREAM_CANCELLED" });
  expect(await caught(() => writer.close())).toMatchObject({ name: "TypeError", code: "ERR_INVALID_STATE" });
  expect(atJoiner.stats().delivery.sendBufferedBytes).toBe(0); // what it held is let go
  await atJoiner.flush(); // a cancelled stream holds up nothing

  // With no write pending, close() itself rejects with it.
  const idle = atJoiner.openStream().getWriter();
  await idle.write(new Uint8Array(10));
  const idleReader = (await atGateway.acceptStream())!.getReader();
  await idleReader.read();
  await idleReader.cancel();
  await new Promise((resolve) => setTimeout(resolve, 100)); // the STOP_SENDING's way to the writer
  expect(await caught(() => idle.close())).toMatchObject({ name: "SluiceError", code: "ERR_SLUICE_STREAM_CANCELLED", message: "stream 1 was cancelled by its reader" });
  // The connection goes on, and so do other streams.
  const other = atJoiner.openStream().getWriter();
  await other.write(new Uint8Array(5000));
  await other.close();
  expect((await readAll((await atGateway.acceptStream())!)).bytes).toBe(5000);
});

// Over real sockets, with keep-alives every 100 ms: a silence of 12 keep-alive periods disturbs nothing.
// The Session's own timers are proven in virtual time (test/reliability.test.ts: a writer silent for a
// minute), so the wall-clock silence here need not outlast the 5 s writer-inactivity reset there was.
test("a stream lives as long as its connection: a writer silent through a dozen keep-alives goes on, then ends it", async () => {
  const reliability = { keepAliveMs: 100, maxKeepAliveMs: 100 };
  const { atJoiner, atGateway } = await connectedPair(bind, { reliability }, { reliability });
  const writer = atJoiner.openStream().getWriter();
  await writer.write(new Uint8Array(100).fill(1));
  const reader = (await atGateway.acceptStream())!.getReader();
  expect((await reader.read()).value!.length).toBe(100);
  const next = reader.read();
  const packetsBefore = atJoiner.stats().delivery.packetsSent;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  expect(atJoiner.stats().delivery.packetsSent).toBeGreaterThan(packetsBefore + 3); // keep-alives went meanwhile
  await writer.write(new Uint8Array(50).fill(2));
  await writer.close();
  expect((await next).value).toEqual(new Uint8Array(50).fill(2));
  expect((await reader.read()).done).toBe(true);
  expect(atGateway.stats().delivery.streamErrors).toBe(0);
});
