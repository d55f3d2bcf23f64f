// What the application receives is its own: transferring or detaching the `.buffer` of a received
// message, stream chunk or channel packet (postMessage with a transfer list, structuredClone with
// { transfer }) never breaks the library nor loses a byte, and no received buffer shows another
// connection's plaintext, nor bytes not yet delivered.
import { createHash } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import { channel, type Transport } from "sluice";
import { closeAll, connectedPair, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

/** Detaches `bytes.buffer`, as a transfer to a worker does. */
function detach(bytes: Uint8Array): void {
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  expect(bytes.byteLength).toBe(0);
}

/** Whether `needle` occurs anywhere in the whole buffer of `bytes` (not just its view). */
function bufferHolds(bytes: Uint8Array, needle: string): boolean {
  return Buffer.from(bytes.buffer).includes(Buffer.from(needle));
}

test("detaching received messages' buffers: later messages arrive intact, sends and close work", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  // Small messages (carved from a slab), one of a block, one large; queued before they are read.
  const sizes = [2, 100, 1100, 3000, 20_000, 1100, 2, 70_000, 5];
  for (let round = 0; round < 3; round++) {
    for (const [i, size] of sizes.entries()) await atJoiner.send(new Uint8Array(size).fill(round * 16 + i));
    for (const [i, size] of sizes.entries()) {
      const message = (await atGateway.recv())!;
      expect(message.length).toBe(size);
      expect(message.every((byte) => byte === round * 16 + i)).toBe(true);
      detach(message); // the next one must not care
    }
  }
  await atGateway.send(new Uint8Array([1, 2, 3]));
  expect(await atJoiner.recv()).toEqual(new Uint8Array([1, 2, 3]));
  await atJoiner.close();
  expect(await atGateway.recv()).toBeUndefined();
});

test("transferring a small message's buffer takes the earlier ones it shares with along (documented); a slice() copy does not", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  for (const text of ["first", "second", "third"]) await atJoiner.send(Buffer.from(text));
  const first = (await atGateway.recv())!;
  const second = (await atGateway.recv())!;
  detach(second.slice()); // a copy: nothing else goes with it
  expect(Buffer.from(first).toString()).toBe("first");
  detach(second); // its buffer is the connection's delivery slab, which `first` was carved from too
  expect(first.byteLength).toBe(0);
  expect(Buffer.from((await atGateway.recv())!).toString()).toBe("third"); // later ones are unharmed
});

test("a received message's buffer holds only what its own connection delivered before it", async () => {
  const gateway = await bind({ gateway: true });
  const [alice, bob] = [await bind(), await bind()];
  const [fromAlice] = await Promise.all([alice.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const [fromBob, atGatewayBob] = await Promise.all([bob.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  // Interleaved: Alice's secret arrives and is opened at the gateway between Bob's messages.
  await fromBob.send(Buffer.from("bob-1"));
  await fromAlice.send(Buffer.from("ALICE-SECRET"));
  await fromBob.send(Buffer.from("bob-2"));
  await fromBob.send(Buffer.from("bob-3"));
  const first = (await atGatewayBob!.recv())!;
  await new Promise((resolve) => setTimeout(resolve, 50)); // bob-2, bob-3 (and Alice's) have arrived, not been read
  expect(bufferHolds(first, "ALICE-SECRET")).toBe(false);
  expect(bufferHolds(first, "bob-2")).toBe(false); // not yet delivered: not in the buffer handed out
  const second = (await atGatewayBob!.recv())!;
  expect(bufferHolds(second, "ALICE-SECRET")).toBe(false);
  expect(Buffer.from(second).toString()).toBe("bob-2");
  await fromBob.close();
  await fromAlice.close();
});

test("a channel packet's buffer holds no transport's plaintext, and detaching it breaks neither", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const [tx, rx] = channel(16);
  await atJoiner.send(Buffer.from("TRANSPORT-PLAINTEXT"));
  expect(Buffer.from((await atGateway.recv())!).toString()).toBe("TRANSPORT-PLAINTEXT");
  tx.trySend(new Uint8Array([1, 2]));
  const packet = rx.tryRecv() as Uint8Array;
  expect(packet).toEqual(new Uint8Array([1, 2]));
  expect(bufferHolds(packet, "TRANSPORT-PLAINTEXT")).toBe(false);
  detach(packet);
  tx.trySend(new Uint8Array([3]));
  expect(rx.tryRecv()).toEqual(new Uint8Array([3]));
  await atJoiner.send(Buffer.from("still fine"));
  expect(Buffer.from((await atGateway.recv())!).toString()).toBe("still fine");
  tx.close();
  rx.close();
});

test("recv() takes packets in batches: detaching one handed out loses none of those taken with it", async () => {
  const [tx, rx] = channel(16);
  for (let i = 0; i < 8; i++) tx.trySend(new Uint8Array([i, i, i]));
  const first = (await rx.recv())!; // takes all 8 in one look
  expect(first).toEqual(new Uint8Array([0, 0, 0]));
  expect(bufferHolds(first, "\u0001\u0001\u0001")).toBe(false); // packets not yet handed out are not in its buffer
  detach(first);
  for (let i = 1; i < 8; i++) expect(await rx.recv()).toEqual(new Uint8Array([i, i, i]));
  tx.close();
  expect(await rx.recv()).toBeUndefined();
});

test("a reader that detaches every chunk's buffer still reads the whole stream, intact", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const total = 4 * 2 ** 20;
  const source = new Uint8Array(total);
  for (let i = 0; i < total; i++) source[i] = (i * 2654435761) >>> 24;
  const writing = (async () => {
    const writer = atJoiner.openStream().getWriter();
    for (let at = 0; at < total; at += 100_000) await writer.write(source.subarray(at, Math.min(total, at + 100_000)));
    await writer.close();
  })();
  const hash = createHash("sha256");
  let bytes = 0;
  const reader = (await atGateway.acceptStream())!.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    const chunk = read.value;
    hash.update(chunk);
    bytes += chunk.length;
    detach(chunk);
  }
  await writing;
  expect(bytes).toBe(total);
  expect(hash.digest("hex")).toBe(createHash("sha256").update(source).digest("hex"));
});
