// The ids of connections that just closed (wire.md, "Bounded work for strangers": recently closed
// grace, 2 s, at most 4 × maxConnections ids). Late packets at such an id, genuine ones replayed and
// forged ones, from the peer's address and from elsewhere, must be dropped without crypto, counted,
// unanswered; once the grace ends they are packets at an unknown id. And the table of those ids must
// stay bounded however fast one proven peer connects and closes.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { RECENTLY_CLOSED_MS, type Transport } from "sluice";
import { bindMany, closeSockets, EvilPeer, sleep, type Datagram, type EvilSession, type EvilSocket } from "./evil-peer.ts";
import { joinGateway } from "./gateway-peers.ts";
import { bindSluice, closedAfterEach, countedSince, describe3, eventually, figure } from "./harness.ts";
import { dataHeader, type Address } from "./wire.ts";

const track = closedAfterEach();

/** A DATA packet at `connectionId` that no key sealed. */
function forgedData(connectionId: number, i: number): Uint8Array {
  const packet = new Uint8Array(randomBytes(i % 2 === 0 ? 40 : 1200));
  packet.set(dataHeader(i % 2, connectionId, 1000 + i));
  return packet;
}

/** Sends each of `packets` from the sockets in turn, in bursts the kernel keeps; waits until `target` has them. */
async function sendAll(packets: Uint8Array[], sockets: EvilSocket[], to: Address, target: Transport): Promise<void> {
  const before = target.stats().datagramsReceived;
  for (let i = 0; i < packets.length; i++) {
    sockets[i % sockets.length].send(packets[i], to);
    if (i % 100 === 99) await sleep(1);
  }
  await eventually(() => target.stats().datagramsReceived - before >= packets.length, 1000);
  await sleep(50);
}

/** Whether `gateway` holds no connection any more (draining ones included). */
const gone = (gateway: Transport) => eventually(() => gateway.stats().connections === 0, 3000);

describe3("ids of connections that just closed", () => {
  test("5,000 late packets at a just-closed id (replayed genuine ones, forged ones, from the peer's address and elsewhere): recentlyClosed, no crypto, no answer; after the grace, unknownSender", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const { peer, session, inbound } = await joinGateway(gateway, "127.0.0.2");
    track(peer);
    // Genuine packets, acknowledged: what an on-path observer recorded.
    const recorded: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) recorded.push(session.send([{ type: "ping" }]));
    await sleep(50);
    session.send([{ type: "close", code: 0 }]);
    await expect(inbound.whenClosed).resolves.toBeUndefined();
    expect(await gone(gateway)).toBe(true); // done draining: its id is recently closed from now on
    const closedAt = performance.now();
    const flooders = await bindMany("127.0.0.4", 4);
    const replies: Datagram[] = [];
    for (const s of [...flooders, peer.socket]) s.handler = (d) => replies.push(d);
    const packets = Array.from({ length: 5000 }, (_, i) => (i % 4 === 0 ? recorded[i % recorded.length] : forgedData(session.remoteId, i)));
    const before = gateway.stats();
    await sendAll(packets, [...flooders, peer.socket], gateway.address, gateway);
    const d = countedSince(gateway, before);
    figure("late packets at a just-closed id", { ...d, msAfterClose: Math.round(performance.now() - closedAt) });
    expect(performance.now() - closedAt).toBeLessThan(RECENTLY_CLOSED_MS); // still within the grace
    expect(d.received).toBeGreaterThan(packets.length / 4); // the kernel may drop some; those that arrived:
    expect(d.recentlyClosed).toBe(d.received);
    expect(d.dropped).toBe(d.received);
    expect(d.decryptFailed).toBe(0);
    expect(d.sent).toBe(0);
    expect(replies).toHaveLength(0);
    expect(d.listenerErrors).toBe(0);
    // Once the grace is over, the id is unknown: the same packets are strangers'.
    await sleep(Math.max(0, RECENTLY_CLOSED_MS - (performance.now() - closedAt)) + 50);
    const later = gateway.stats();
    await sendAll(packets.slice(0, 100), flooders, gateway.address, gateway);
    const after = countedSince(gateway, later);
    expect(after.unknownSender).toBe(after.received);
    expect(after.recentlyClosed).toBe(0);
    expect(replies).toHaveLength(0);
    await closeSockets(flooders);
  });

  test("one proven peer connecting and closing 13 times (and connecting once more) at a gateway of maxConnections 2: one connection at a time, and only the newest 8 closed ids (4 × maxConnections) are kept", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true, maxConnections: 2, maxConnectionsPerIp: 2 }));
    const peer = track(await EvilPeer.bind("127.0.0.2"));
    const sessions: EvilSession[] = [];
    const replacedAt: number[] = []; // when each connection was replaced by the next: its id closed
    for (let cycle = 0; cycle < 14; cycle++) {
      const session = await peer.connect(gateway.address, gateway.publicKey);
      if (cycle > 0) replacedAt.push(performance.now());
      sessions.push(session);
      const inbound = await gateway.accept();
      expect(inbound).toBeDefined();
      expect(gateway.stats().connections).toBeLessThanOrEqual(2); // the one draining, and this one
      if (cycle < 13) session.send([{ type: "close", code: 0 }]); // and at once connects again: the new one replaces it
    }
    const live = sessions.pop()!;
    const stats = gateway.stats();
    expect(stats.connections).toBe(1);
    expect(stats.handshakes).toBe(0);
    expect(stats.perConnection).toHaveLength(1);
    // One late packet at each closed id, oldest first (the cycles take ~400 ms: within the grace,
    // unless the machine is slow; an id whose grace surely ended is expected unknown).
    const before = gateway.stats();
    const counts: string[] = [];
    const expected: string[] = [];
    const [late] = await bindMany("127.0.0.4", 1);
    track(late);
    for (const [i, session] of sessions.entries()) {
      const was = gateway.stats().drops;
      const withinGrace = performance.now() - replacedAt[i] < RECENTLY_CLOSED_MS - 100;
      expected.push(i >= sessions.length - 8 && withinGrace ? "recentlyClosed" : "unknownSender");
      late.send(forgedData(session.remoteId, 0), gateway.address);
      await eventually(() => gateway.stats().drops.recentlyClosed + gateway.stats().drops.unknownSender > was.recentlyClosed + was.unknownSender, 1000, 2);
      counts.push(gateway.stats().drops.recentlyClosed > was.recentlyClosed ? "recentlyClosed" : "unknownSender");
    }
    const d = countedSince(gateway, before);
    figure("closed ids kept after 13 connect/close cycles (maxConnections 2)", { counts, cyclesMs: Math.round(replacedAt.at(-1)! - replacedAt[0]) });
    expect(counts).toEqual(expected);
    expect(counts.at(-1)).toBe("recentlyClosed");
    expect(d.decryptFailed).toBe(0);
    expect(late.datagramsReceived).toBe(0);
    expect(d.listenerErrors).toBe(0);
    expect(gateway.stats().connections).toBe(1);
    expect(live.failedToOpen).toBe(0);
  });
});
