// RELAY (0x05) against a real gateway: forged and stolen relay ids, reflection toward an address
// that never proved itself, sizes at and past the limits, a relay after its pair closed, one pair's
// budget against another's, and a gateway that does not relay. The relayed peers are evil peers on
// 127.0.0.2 and 127.0.0.4; strangers and victims live on 127.0.0.6 and up.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import type { Transport } from "sluice";
import { EvilSocket, sleep } from "./evil-peer.ts";
import { joinGateway, requestIntroduction, sendRelay, stillWorks, takeRelays } from "./gateway-peers.ts";
import { bindSluice, closedAfterEach, countedSince, describe3, eventually, figure } from "./harness.ts";
import { MAX_ACCEPTED_DATAGRAM_BYTES, RELAY_HEADER_BYTES, relayPacket } from "./wire.ts";

const track = closedAfterEach();

type GatewayOptions = Parameters<typeof bindSluice>[0];

async function relayedPair(options: GatewayOptions = {}, hosts = ["127.0.0.2", "127.0.0.4"], existing?: Transport) {
  const gateway = existing ?? track(await bindSluice({ host: "127.0.0.1", gateway: true, ...options }));
  const a = await joinGateway(gateway, hosts[0]);
  const b = await joinGateway(gateway, hosts[1]);
  track(a.peer);
  track(b.peer);
  const { relayA, relayB } = await requestIntroduction(a, b);
  return { gateway, a, b, relayA, relayB };
}

/** What the gateway counted once it received `count` datagrams since `before` (and had 100 ms more to act). */
async function settled(gateway: Transport, before: ReturnType<Transport["stats"]>, count: number, timeoutMs = 2000) {
  expect(await eventually(() => gateway.stats().datagramsReceived - before.datagramsReceived >= count, timeoutMs)).toBe(true);
  await sleep(100);
  return countedSince(gateway, before);
}

describe3("relays (0x05)", () => {
  test("a RELAY is forwarded once, its id rewritten, byte for byte and never larger", async () => {
    const { gateway, a, b, relayA, relayB } = await relayedPair();
    expect(relayA).toBeDefined();
    expect(relayB).toBeDefined();
    expect(relayA).not.toBe(0);
    const inner = randomBytes(300);
    const before = gateway.stats();
    sendRelay(a.peer.socket, gateway, relayA!, inner);
    expect(await eventually(() => b.peer.socket.inbox.length > 0)).toBe(true);
    await sleep(50);
    const got = takeRelays(b.peer.socket);
    expect(got).toHaveLength(1);
    expect(got[0].relayId).toBe(relayB);
    expect(Buffer.from(got[0].inner).equals(inner)).toBe(true);
    expect(got[0].bytes.length).toBe(RELAY_HEADER_BYTES + inner.length);
    expect(countedSince(gateway, before)).toMatchObject({ relayed: 1, bytesRelayed: expect.any(Number), listenerErrors: 0 });
  });

  test("forged and stolen relay ids: counted unknownSender, nothing forwarded", async () => {
    const { gateway, a, b, relayA, relayB } = await relayedPair();
    const stranger = track(await EvilSocket.bind("127.0.0.6"));
    const inner = randomBytes(100);
    const before = gateway.stats();
    const unknownIds = Array.from({ length: 50 }, (_, i) => 1 + ((relayA! + relayB! + 7919 * (i + 1)) >>> 0) % 0xfffffffe).filter(
      (id) => id !== relayA && id !== relayB,
    );
    for (const id of unknownIds) sendRelay(a.peer.socket, gateway, id, inner); // ids never offered, from a peer of the relay
    for (let i = 0; i < 20; i++) sendRelay(stranger, gateway, relayA!, inner); // the right id from an address that is not A's
    for (let i = 0; i < 20; i++) sendRelay(a.peer.socket, gateway, relayB!, inner); // B's id from A's address
    for (let i = 0; i < 20; i++) sendRelay(b.peer.socket, gateway, relayA!, inner); // and A's from B's
    const sent = unknownIds.length + 60;
    const d = await settled(gateway, before, sent);
    figure("forged relay ids", { ...d, sent, atA: takeRelays(a.peer.socket).length, atB: takeRelays(b.peer.socket).length, atStranger: stranger.datagramsReceived });
    expect(d.relayed).toBe(0);
    expect(d.unknownSender).toBe(sent);
    expect(d.listenerErrors).toBe(0);
    expect(stranger.datagramsReceived).toBe(0);
    expect(takeRelays(a.peer.socket)).toHaveLength(0);
    expect(takeRelays(b.peer.socket)).toHaveLength(0);
    // The relay still works for its owners.
    sendRelay(a.peer.socket, gateway, relayA!, inner);
    expect(await eventually(() => b.peer.socket.inbox.length > 0)).toBe(true);
  });

  test("relay id 0, a RELAY too short or too long: malformed; a RELAY inside a RELAY goes on opaque, never larger", async () => {
    const { gateway, a, b, relayA } = await relayedPair();
    const before = gateway.stats();
    const header = relayPacket(relayA!, new Uint8Array(0)); // 6 bytes: no datagram inside
    const zeroId = relayPacket(0, randomBytes(64));
    const tooLong = relayPacket(relayA!, randomBytes(MAX_ACCEPTED_DATAGRAM_BYTES - RELAY_HEADER_BYTES + 1));
    for (const packet of [header, zeroId, tooLong]) a.peer.socket.send(packet, gateway.address);
    const d = await settled(gateway, before, 3);
    figure("malformed relays", d);
    expect(d.relayed).toBe(0);
    expect(d.malformed).toBe(3);
    expect(d.listenerErrors).toBe(0);
    expect(takeRelays(b.peer.socket)).toHaveLength(0);
    // wire.md: "A RELAY inside a RELAY is malformed". The gateway does not read what it relays, so
    // it forwards one as it is (the same size: no gain) and the receiving peer is left to drop it.
    const nested = relayPacket(relayA!, relayPacket(relayA!, randomBytes(64)));
    a.peer.socket.send(nested, gateway.address);
    expect(await eventually(() => b.peer.socket.inbox.length > 0)).toBe(true);
    const [forwardedNested] = takeRelays(b.peer.socket);
    expect(forwardedNested.bytes.length).toBe(nested.length);
    // The largest accepted (1500 B) goes through and stays 1500 B: the gateway never adds a byte.
    const largest = relayPacket(relayA!, randomBytes(MAX_ACCEPTED_DATAGRAM_BYTES - RELAY_HEADER_BYTES));
    a.peer.socket.send(largest, gateway.address);
    expect(await eventually(() => b.peer.socket.inbox.length > 0)).toBe(true);
    const [forwarded] = takeRelays(b.peer.socket);
    expect(forwarded.bytes.length).toBe(MAX_ACCEPTED_DATAGRAM_BYTES);
  });

  test("the other side moved to an unproven address: nothing is relayed there, ≤ 3× what it sent", async () => {
    const { gateway, a, b, relayA } = await relayedPair();
    const victim = track(await EvilSocket.bind("127.0.0.8"));
    victim.handler = () => {}; // the victim only counts; it never answers a challenge
    b.session.answerChallenges = false;
    // B's connection moves to the victim: one authenticated PING from the victim's address (spoofed).
    b.session.send([{ type: "ping" }], { via: victim });
    expect(await eventually(() => gateway.stats().perConnection.some((c) => c.remoteAddress.port === victim.address.port))).toBe(true);
    const before = gateway.stats();
    const inner = randomBytes(1000);
    for (let i = 0; i < 100; i++) sendRelay(a.peer.socket, gateway, relayA!, inner);
    const d = await settled(gateway, before, 100);
    figure("relay toward a moved, unvalidated peer", { ...d, toVictim: victim.bytesReceived, fromVictim: victim.bytesSent });
    expect(d.relayed).toBe(0);
    expect(d.unknownSender).toBe(100);
    expect(victim.bytesReceived).toBeLessThanOrEqual(3 * victim.bytesSent);
    // The move is never validated, so the gateway goes back to B's proven address and relays there again.
    const back = await eventually(() => gateway.stats().perConnection.some((c) => c.remoteAddress.port === b.peer.socket.address.port), 4000);
    expect(back).toBe(true);
    sendRelay(a.peer.socket, gateway, relayA!, inner);
    expect(await eventually(() => takeRelays(b.peer.socket).length > 0)).toBe(true);
    expect(victim.bytesReceived).toBeLessThanOrEqual(3 * victim.bytesSent);
  });

  test("a relay after one of its connections closed: gone, counted, nothing forwarded", async () => {
    const { gateway, a, b, relayA, relayB } = await relayedPair();
    const relaysBefore = gateway.stats().relays;
    expect(relaysBefore).toBeGreaterThan(0);
    b.session.send([{ type: "close", code: 0 }]);
    expect(await eventually(() => b.inbound.closed)).toBe(true);
    expect(await eventually(() => gateway.stats().relays < relaysBefore)).toBe(true);
    const before = gateway.stats();
    for (let i = 0; i < 20; i++) sendRelay(a.peer.socket, gateway, relayA!, randomBytes(200));
    for (let i = 0; i < 20; i++) sendRelay(b.peer.socket, gateway, relayB!, randomBytes(200)); // the closed side's id
    const d = await settled(gateway, before, 40);
    figure("relay after close", d);
    expect(d.relayed).toBe(0);
    expect(d.listenerErrors).toBe(0);
    expect(takeRelays(a.peer.socket)).toHaveLength(0);
    expect(takeRelays(b.peer.socket)).toHaveLength(0);
    expect(await stillWorks(a)).toBe(true); // A's own connection is untouched
  });

  test("one pair flooding past its budget does not starve another pair", async () => {
    const perRelay = 64 * 1024;
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true, relay: { bytesPerSecond: perRelay, totalBytesPerSecond: 8 * perRelay } }));
    const flood = await relayedPair({}, ["127.0.0.2", "127.0.0.4"], gateway);
    const quiet = await relayedPair({}, ["127.0.0.3", "127.0.0.5"], gateway);
    const before = gateway.stats();
    const started = performance.now();
    const inner = randomBytes(1000);
    // The quiet pair stays inside its own burst (a quarter of a second: 16 KiB); the flood sends
    // 1 MB, past its own bucket and past what the total bucket (512 KiB/s) holds in the same time,
    // so a flood charged to the total before its own bucket refused it would starve the quiet pair.
    const quietSent = 10;
    for (let i = 0; i < 1000; i++) {
      sendRelay(flood.a.peer.socket, gateway, flood.relayA!, inner);
      if (i % 100 === 50) sendRelay(quiet.a.peer.socket, gateway, quiet.relayA!, inner);
      if (i % 100 === 99) await sleep(1); // let the gateway read: we measure its budget, not the kernel's buffer
    }
    const d = await settled(gateway, before, 1000 + quietSent, 3000);
    const seconds = (performance.now() - started) / 1000;
    const floodGot = takeRelays(flood.b.peer.socket);
    const quietGot = takeRelays(quiet.b.peer.socket);

    const floodBytes = floodGot.reduce((n, r) => n + r.bytes.length, 0);
    figure("relay budgets", { seconds: seconds.toFixed(2), floodForwarded: floodGot.length, floodBytes, quietForwarded: `${quietGot.length}/${quietSent}`, ...d });
    // A quarter of a second of burst, then the rate: the flooder gets no more than its own bucket.
    expect(floodBytes).toBeLessThanOrEqual(perRelay * (0.25 + seconds) + 2 * 1006);
    expect(d.relayBudget).toBeGreaterThan(0);
    expect(quietGot.length).toBe(quietSent);
  });

  test("a gateway with relaying off: no RELAY_OFFER, and RELAY datagrams for any id go nowhere", async () => {
    const { gateway, a, b, relayA, relayB } = await relayedPair({ relay: { enabled: false } });
    expect(relayA).toBeUndefined();
    expect(relayB).toBeUndefined();
    expect(gateway.stats().relays).toBe(0);
    const before = gateway.stats();
    for (let id = 1; id <= 200; id++) sendRelay(a.peer.socket, gateway, id, randomBytes(64));
    const d = await settled(gateway, before, 200);
    figure("relaying off", d);
    expect(d.relayed).toBe(0);
    expect(d.unknownSender + d.malformed).toBe(200);
    expect(d.listenerErrors).toBe(0);
    expect(takeRelays(b.peer.socket)).toHaveLength(0);
  });
});
