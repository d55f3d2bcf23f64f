// Many streams at once over real loopback sockets, through "sluice" alone: streams past the peer's
// limit (maxIncomingStreams, 16) and bytes ahead of a stream's reader never hold up the streams the
// peer can take.
import { createHash } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import type { Connection, Transport } from "sluice";
import { mulberry32 } from "./support/random.ts";
import { readAll } from "./support/streams.ts";
import { closeAll, connectedPair, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

/** Opens a stream and writes `total` seeded bytes to it in `chunkBytes` writes, then closes it: their SHA-256. */
async function writeStream(connection: Connection, seed: number, total: number, chunkBytes: number): Promise<string> {
  const hash = createHash("sha256");
  const writer = connection.openStream().getWriter();
  const random = mulberry32(seed);
  for (let at = 0; at < total; at += chunkBytes) {
    const chunk = new Uint8Array(Math.min(chunkBytes, total - at));
    for (let i = 0; i < chunk.length; i += 64) chunk[i] = random() * 256;
    hash.update(chunk);
    await writer.write(chunk);
  }
  await writer.close();
  return hash.digest("hex");
}

test("50 streams of 256 KiB opened at once, 34 past the peer's 16: every one arrives whole, read in parallel", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const count = 50;
  const total = 256 * 1024;
  // Bytes of the 34 streams the peer has not admitted yet once filled the 4 MiB send buffer: the
  // admitted streams' writers waited for room for ever, and no stream ended to admit another.
  const writers = Promise.all(Array.from({ length: count }, (_, i) => writeStream(atJoiner, i, total, 64 * 1024)));
  const readers: Array<Promise<{ sha256: string; bytes: number }>> = [];
  for (let i = 0; i < count; i++) readers.push(readAll((await atGateway.acceptStream())!));
  const [sent, received] = await Promise.all([writers, Promise.all(readers)]);
  expect(received.map((r) => r.bytes)).toEqual(Array(count).fill(total));
  expect(new Set(received.map((r) => r.sha256))).toEqual(new Set(sent));
  await atJoiner.flush(); // the last acknowledgements
  expect(atJoiner.stats().delivery.sendBufferedBytes).toBe(0);
}, 60_000);

test("two 8 MiB streams written at once, read one after the other: the second's unread bytes do not hold up the first", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const total = 8 * 2 ** 20;
  // The second stream's bytes beyond its reader's window (1 MiB) once filled the send buffer, and the
  // first stream's writer, whose reader was waiting, could add nothing more.
  const writers = Promise.all([writeStream(atJoiner, 1, total, 64 * 1024), writeStream(atJoiner, 2, total, 64 * 1024)]);
  const first = await readAll((await atGateway.acceptStream())!);
  const second = await readAll((await atGateway.acceptStream())!);
  expect([first.bytes, second.bytes]).toEqual([total, total]);
  expect([first.sha256, second.sha256]).toEqual(await writers);
}, 60_000);
