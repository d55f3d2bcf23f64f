// What protects an established connection from its own peer or an on-path attacker: keys that move on
// during a long transfer (the data intact), and an optimistic ACK (acknowledging a packet number that
// was skipped on purpose, so never sent) that fails the connection with a CLOSE saying why.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import type { Transport } from "sluice";
import { keyPhaseOf } from "sluice/internal";
import { PacketWriter, parseFrames, type FrameVisitor } from "../src/reliable/frames.ts";
import { checkReliabilityOptions } from "../src/reliable/options.ts";
import { Session } from "../src/reliable/session.ts";
import { bindTest, closeAll } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

test("keys move on every 500 packets during an 8 MiB stream: both sides follow, the bytes arrive intact", async () => {
  const keyPhaseLimits = { updatePackets: 500, updateMs: 3_600_000, maxFailedOpens: 1 << 20 };
  const gateway = await bindTest({ gateway: true, keyPhaseLimits });
  const joiner = await bindTest({ keyPhaseLimits });
  open.push(gateway, joiner);
  const [toGateway, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const payload = randomBytes(8 * 1024 * 1024);
  const writer = toGateway.openStream().getWriter();
  const sent = (async () => {
    for (let at = 0; at < payload.length; at += 64 * 1024) await writer.write(payload.subarray(at, at + 64 * 1024));
    await writer.close();
  })();
  const readable = (await atGateway!.acceptStream())!;
  const hash = createHash("sha256");
  let bytes = 0;
  const reader = readable.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    hash.update(read.value);
    bytes += read.value.length;
  }
  await sent;
  expect(bytes).toBe(payload.length);
  expect(hash.digest("hex")).toBe(createHash("sha256").update(payload).digest("hex"));
  // ~7,300 data packets one way: a dozen updates at least, and the two sides at most one phase apart.
  expect(keyPhaseOf(toGateway)).toBeGreaterThanOrEqual(10);
  expect(Math.abs(keyPhaseOf(toGateway) - keyPhaseOf(atGateway!))).toBeLessThanOrEqual(1);
  expect(gateway.stats().drops.decryptFailed).toBe(0);
});

test("an ACK naming a packet number that was skipped (never sent) fails the connection, and a CLOSE says it was a protocol violation", () => {
  const config = checkReliabilityOptions(undefined, "options");
  const alwaysSkip = () => 0; // every packet number is preceded by a skipped one
  const sender = new Session(config, 0, alwaysSkip);
  sender.sendMessage(new Uint8Array(3000)); // three packets' worth
  const sent: number[] = [];
  for (let t = sender.pollTransmit(1); t !== undefined; t = sender.pollTransmit(1)) sent.push(t.packetNumber);
  expect(sent.length).toBeGreaterThanOrEqual(3);
  expect(sent.every((n) => n % 2 === 1)).toBe(true); // 0, 2, 4... were skipped

  // A blind acknowledger: everything from 0 to the highest number it saw, as one range.
  const writer = new PacketWriter(1171);
  writer.begin();
  writer.ack([[0, sent.at(-1)! + 1]], 0);
  sender.handlePacket(Buffer.concat(writer.finish()), 0, 5);
  expect(sender.state).toBe("closed");
  expect(sender.error?.message).toMatch(/protocol violation: the peer acknowledged packet \d+, which was never sent \(an optimistic ACK\)/);
  expect(sender.stats().optimisticAcks).toBe(1);

  const close = sender.pollTransmit(6);
  expect(close).toBeDefined();
  let code: number | undefined;
  const visitor = { close: (c: number) => (code = c) } as Partial<FrameVisitor>;
  parseFrames(Buffer.concat(close!.parts), new Proxy(visitor, { get: (target, name) => target[name as keyof FrameVisitor] ?? (() => {}) }) as FrameVisitor);
  expect(code).toBe(1);
  expect(sender.pollTransmit(7)).toBeUndefined();
});

test("an honest peer's acknowledgements never name a skipped number, over thousands of packets", () => {
  const config = checkReliabilityOptions(undefined, "options");
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const a = new Session(config, 0, random);
  const b = new Session(config, 0, random);
  let now = 0;
  for (let i = 0; i < 300; i++) a.sendMessage(new Uint8Array(1000).fill(i));
  for (let round = 0; round < 2000 && b.stats().messagesReceived < 300; round++) {
    now += 1;
    for (let t = a.pollTransmit(now); t !== undefined; t = a.pollTransmit(now)) b.handlePacket(Buffer.concat(t.parts), t.packetNumber, now);
    for (let t = b.pollTransmit(now); t !== undefined; t = b.pollTransmit(now)) a.handlePacket(Buffer.concat(t.parts), t.packetNumber, now);
    while (b.readMessage() !== undefined);
    if (a.nextDeadline() <= now) a.handleTimeout(now);
    if (b.nextDeadline() <= now) b.handleTimeout(now);
  }
  expect(b.stats().messagesReceived).toBe(300);
  expect(a.state).toBe("open");
  expect(a.stats().optimisticAcks).toBe(0);
});
