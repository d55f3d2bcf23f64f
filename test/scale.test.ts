// A gateway at scale: queues share their packet frames (each keeps a reserve no stalled consumer can
// take; past it, a queue draws on one shared part), so the arena grows with the reserve and not with
// inboundQueuePackets; and a gateway holds a few hundred connections in one process.
import { afterEach, expect, test } from "vitest";
import { Arena, channel, DEFAULT_GATEWAY_KEEP_ALIVE_MS, Transport, type Connection } from "sluice";
import { reserveQueues, routeDatagram } from "sluice/internal";
import { bindTest, closeAll, dataPacket } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

test("channels under the reserve rule: a full lane takes only the shared part, and every other lane keeps its reserve", () => {
  const arena = Arena.create({ bytes: 1 << 20, frameBytes: 1024 });
  const free = arena.stats().freeFrames;
  // Three channels of capacity 256, a reserve of 4 each, 100 frames shared: keep the rest free.
  reserveQueues(arena, 4, free - 100);
  const [stalledIn, stalledOut] = channel(256, { arena, maxPacketSize: 16 });
  const [otherIn, otherOut] = channel(256, { arena, maxPacketSize: 16 });
  const [thirdIn] = channel(256, { arena, maxPacketSize: 16 });
  const packet = new Uint8Array(16);
  let stalledSent = 0;
  while (stalledIn.trySend(packet) === "sent") stalledSent++;
  // The shared part less what the thread's frame cache hides from the free count (at most 64 frames).
  expect(stalledSent).toBeGreaterThan(4 + 100 - 64 - 3 * 3);
  expect(stalledSent).toBeLessThanOrEqual(4 + 100);
  expect(stalledOut.stats().poolEmpty).toBe(1); // refused for the shared part, counted as such
  expect(stalledOut.stats().full).toBe(0);
  for (let i = 0; i < 4; i++) expect(otherIn.trySend(packet)).toBe("sent");
  expect(otherIn.trySend(packet)).toBe("full");
  for (let i = 0; i < 4; i++) expect(thirdIn.trySend(packet)).toBe("sent");
  // Once the stalled consumer reads, the shared part is there again.
  expect(stalledOut.drain(() => {})).toBe(stalledSent);
  arena.flushThreadCache();
  expect(otherIn.trySend(packet)).toBe("sent");
  expect(otherOut.stats().queued).toBe(5);
  arena.forget();
});

test("a transport's arena grows with the reserve: maxConnections 10,000 binds at the default queue of 1024", async () => {
  const gateway = await bindTest({ gateway: true, maxConnections: 10_000, inboundQueuePackets: 1024 });
  open.push(gateway);
  await expect(bindTest({ maxConnections: 65_536, inboundQueuePackets: 1024 })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE", message: /maxConnections.*at most \d+ with 1024 inboundQueuePackets/ });
});

test("stalled consumers fill only the shared part: a flood at two stalled connections leaves a third its reserve", async () => {
  const gateway = await bindTest({ gateway: true, inboundQueuePackets: 1024, sharedQueuePackets: 300, stallConsumersOf: () => true });
  const peers = await Promise.all([bindTest(), bindTest(), bindTest()]);
  open.push(gateway, ...peers);
  const held: Connection[] = [];
  for (const peer of peers) {
    const [, connection] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    held.push(connection!);
  }
  const flood = (k: number, count: number) => {
    const outcomes = { sent: 0, full: 0, closed: 0, dropped: 0 };
    for (let i = 0; i < count; i++) outcomes[routeDatagram(gateway, dataPacket(held[k]!.stats().id, 1000 + i), "127.0.0.1", peers[k]!.address.port)]++;
    return outcomes;
  };
  const first = flood(0, 2000);
  const second = flood(1, 2000);
  // Each stalled queue holds its reserve (16) and what it took of the shared part: 300, and what the
  // arena's rounding to whole 64 KiB pages and 32-frame bitmap words adds (under 64 frames).
  expect(first.sent + second.sent).toBeLessThanOrEqual(2 * 16 + 300 + 64);
  expect(first.sent).toBeGreaterThan(16);
  expect(first.full + second.full).toBe(4000 - first.sent - second.sent);
  const third = flood(2, 100);
  expect(third.sent).toBeGreaterThanOrEqual(16); // its reserve (and its own handshake packets may hold some)
  expect(gateway.stats().drops.queueFull).toBe(first.full + second.full + third.full);
  expect(held[0]!.stats().drops.queueFull).toBe(first.full);
});

test("a gateway's defaults: its connections ping after 30 s (its peers, at 5 s, ping first); a peer's after 5 s", async () => {
  const gateway = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null });
  const peer = await Transport.bind({ host: "127.0.0.1", log: null });
  open.push(gateway, peer);
  const [connection, inbound] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  expect(inbound!.stats().delivery.keepAliveIntervalMs).toBe(DEFAULT_GATEWAY_KEEP_ALIVE_MS);
  expect(connection.stats().delivery.keepAliveIntervalMs).toBe(5000);
  const chosen = await Transport.bind({ host: "127.0.0.1", gateway: true, log: null, maxConnections: 4, reliability: { keepAliveMs: 700 } });
  open.push(chosen);
  const [, chosenInbound] = await Promise.all([peer.connect(chosen.address, chosen.publicKey), chosen.accept()]);
  expect(chosenInbound!.stats().delivery.keepAliveIntervalMs).toBe(700);
});

test("300 connections on one gateway in one process, driven by its one timer structure: every keep-alive runs, none ends", async () => {
  const PEERS = 300;
  const reliability = { keepAliveMs: 100, maxKeepAliveMs: 100 };
  const gateway = await bindTest({ gateway: true, maxConnections: PEERS, maxHandshakes: 256, acceptRamp: [], reliability });
  open.push(gateway);
  const held: Connection[] = [];
  void (async () => {
    for (let connection = await gateway.accept(); connection; connection = await gateway.accept()) held.push(connection);
  })();
  // A loopback address each, as peers on the internet have (the per-IP budgets are for strangers).
  const peers = await Promise.all(Array.from({ length: PEERS }, (_, i) => bindTest({ host: `127.11.${Math.floor(i / 250)}.${(i % 250) + 1}`, maxConnections: 1, inboundQueuePackets: 16, reliability })));
  open.push(...peers);
  const connections = [];
  for (let i = 0; i < PEERS; i += 20) connections.push(...(await Promise.all(peers.slice(i, i + 20).map((peer) => peer.connect(gateway.address, gateway.publicKey)))));
  while (held.length < PEERS) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(gateway.stats().connections).toBe(PEERS);
  const sentBefore = held.map((connection) => connection.stats().delivery.packetsSent + connection.stats().delivery.packetsReceived);
  await new Promise((resolve) => setTimeout(resolve, 1000)); // ten keep-alive intervals
  expect(held.filter((connection) => connection.closed)).toEqual([]);
  expect(connections.filter((connection) => connection.closed)).toEqual([]);
  // Each connection exchanged keep-alives meanwhile: its deadline fired.
  const quiet = held.filter((connection, i) => connection.stats().delivery.packetsSent + connection.stats().delivery.packetsReceived === sentBefore[i]);
  expect(quiet).toEqual([]);
});
