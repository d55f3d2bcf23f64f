// Floods of intros a node cannot speak: a protocol version it does not accept (sound crypto, so it
// takes an X25519 and is answered by a RESPONSE with status 1, wire.md "Cheap checks first", step 8)
// and another wire version in byte 1 (dropped unread). The answers must be no larger than the intros,
// within the source IP's intro budget (16 at once, 8 per second), counted, and hold no slot.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { bindAcrossIps, closeSockets, EvilPeer, EvilSocket, sleep, timestampUs } from "./evil-peer.ts";
import { bindSluice, closedAfterEach, countedSince, describe3, eventually, figure } from "./harness.ts";
import { generateKeyPair, readResponse, writeIntro, type InitiatorState } from "./noise.ts";
import { INTRO_BYTES, packetKind, RESPONSE_BYTES, RESPONSE_STATUS_CODE_MASK, type ProtocolVersion } from "./wire.ts";

const track = closedAfterEach();

const FUTURE: ProtocolVersion = { major: 9, minor: 0, minimumMajor: 9, minimumMinor: 0 };

/** Sound intros from fresh keys, speaking `version`, with their initiator states. */
function intros(count: number, responderStatic: Uint8Array, version = FUTURE): { packet: Uint8Array; state: InitiatorState }[] {
  return Array.from({ length: count }, (_, i) =>
    writeIntro({ initiator: generateKeyPair(), responderStatic, senderId: 1000 + i, timestampUs: timestampUs(), version }),
  );
}

describe3("intros of another version", () => {
  test("300 intros of an unknown protocol version from one IP: status-1 RESPONSEs (114 B for 146 B) within the IP's budget, counted, no slot; then a genuine peer connects", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const attacker = track(await EvilSocket.bind("127.0.0.2"));
    const flood = intros(300, gateway.publicKey);
    const before = gateway.stats();
    const started = performance.now();
    for (const [i, { packet }] of flood.entries()) {
      attacker.send(packet, gateway.address);
      if (i % 50 === 49) await sleep(1);
    }
    await eventually(() => countedSince(gateway, before).dropped >= flood.length, 2000);
    await sleep(100); // the queued X25519s' answers
    const seconds = (performance.now() - started) / 1000;
    const d = countedSince(gateway, before);
    const replies = attacker.inbox.filter((r) => packetKind(r.bytes) === "response");
    const statuses = replies.map((r) => {
      const state = flood[r.bytes[2] + (r.bytes[3] << 8) - 1000]?.state;
      return state && readResponse(r.bytes, state)?.status;
    });
    figure("unknown-version intros from one IP", { sent: flood.length, replies: replies.length, seconds: +seconds.toFixed(2), versionMismatch: d.versionMismatch, rateLimited: d.rateLimited, overCapacity: d.overCapacity, bytesIn: attacker.bytesSent, bytesOut: attacker.bytesReceived });
    expect(d.received).toBe(flood.length);
    expect(attacker.inbox.length).toBe(replies.length); // nothing but RESPONSEs
    expect(replies.length).toBeGreaterThan(0);
    expect(replies.length).toBeLessThanOrEqual(16 + Math.ceil(8 * seconds));
    expect(replies.every((r) => r.bytes.length === RESPONSE_BYTES && RESPONSE_BYTES < INTRO_BYTES)).toBe(true);
    expect(statuses.every((s) => s !== undefined && (s & RESPONSE_STATUS_CODE_MASK) === 1)).toBe(true);
    expect(attacker.bytesReceived).toBeLessThan(attacker.bytesSent);
    expect(d.versionMismatch).toBe(replies.length); // each answered one counted
    // Past the budget, rateLimited; within it, past the IP's 8 pending-handshake slots (which intros
    // waiting for their X25519 hold: their version is not known before it), overCapacity.
    expect(d.versionMismatch + d.rateLimited + d.overCapacity).toBe(flood.length);
    expect(d.versionMismatch).toBeLessThanOrEqual(16);
    expect(d.listenerErrors).toBe(0);
    const after = gateway.stats();
    expect(after.handshakes).toBe(0);
    expect(after.connections).toBe(0);
    // Nothing of the accept ramp or the slots went: a genuine peer connects at once.
    const peer = track(await EvilPeer.bind("127.0.0.3"));
    await peer.connect(gateway.address, gateway.publicKey);
    expect(await gateway.accept()).toBeDefined();
  });

  test("unknown-version intros from 32 IPs at a gateway and a node, and 2,000 handshake packets of another wire version: each answer no larger than its intro, within its IP's budgets; the other wire version never answered", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const node = track(await bindSluice({ host: "127.0.0.1" }));
    const sockets = await bindAcrossIps(7, 32);
    const floods = [gateway, node].map((target) => ({ target, flood: intros(8 * sockets.length, target.publicKey) }));
    // Another wire version in byte 1: INTRO, RESPONSE and COOKIE kinds at their lengths.
    const otherWire: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      const [kind, length] = ([[1, 146], [3, 114], [4, 50]] as const)[i % 3];
      const packet = new Uint8Array(randomBytes(length));
      packet[0] = kind;
      packet[1] = [0, 1, 3, 255][i % 4];
      otherWire.push(packet);
    }
    const start = [gateway.stats(), node.stats()];
    const started = performance.now();
    for (const { target, flood } of floods) flood.forEach(({ packet }, i) => sockets[i % sockets.length].send(packet, target.address));
    // Every intro arrived and was refused or answered (the X25519s run off the listener): each one ends as a counted drop.
    const done = await eventually(() => floods.every(({ target, flood }, i) => {
      const d = countedSince(target, start[i]);
      return d.received === flood.length && d.dropped === d.received;
    }), 3000);
    expect(done).toBe(true);
    const before = { gateway: gateway.stats(), node: node.stats() };
    otherWire.forEach((packet, i) => sockets[i % sockets.length].send(packet, i % 2 === 0 ? gateway.address : node.address));
    await eventually(() => countedSince(gateway, before.gateway).received + countedSince(node, before.node).received >= otherWire.length, 2000);
    await sleep(100);
    const seconds = (performance.now() - started) / 1000;
    const g = countedSince(gateway, before.gateway);
    const n = countedSince(node, before.node);
    const budget = 16 + Math.ceil(8 * seconds);
    const answers = sockets.map((s) => {
      const from = (t: typeof gateway, kind: string) => s.inbox.filter((r) => r.from.port === t.address.port && packetKind(r.bytes) === kind).length;
      return { in: s.bytesReceived, out: s.bytesSent, all: s.inbox.length, gatewayResponses: from(gateway, "response"), gatewayCookies: from(gateway, "cookie"), nodeResponses: from(node, "response"), nodeCookies: from(node, "cookie") };
    });
    const sum = (key: keyof (typeof answers)[number]) => answers.reduce((a, s) => a + s[key], 0);
    figure("unknown-version intros from 32 IPs", { seconds: +seconds.toFixed(2), gatewayResponses: sum("gatewayResponses"), gatewayCookies: sum("gatewayCookies"), nodeResponses: sum("nodeResponses"), nodeCookies: sum("nodeCookies"), otherWireAt: { gateway: g.versionMismatch, node: n.versionMismatch } });
    for (const a of answers) {
      expect(a.in).toBeLessThan(a.out);
      expect(a.all).toBe(a.gatewayResponses + a.gatewayCookies + a.nodeCookies); // nothing else
      expect(a.gatewayResponses).toBeLessThanOrEqual(budget);
      expect(a.gatewayCookies + a.nodeCookies).toBeLessThanOrEqual(2 * budget); // a budget of their own, per responder
    }
    expect(sockets.every((s) => s.inbox.every((r) => r.bytes.length <= INTRO_BYTES))).toBe(true);
    // A node answers a key it does not know with nothing but, under load, a COOKIE (before any X25519).
    expect(sum("nodeResponses")).toBe(0);
    // The other wire version: dropped at parsing, counted, never answered.
    expect(g.versionMismatch).toBe(g.received);
    expect(n.versionMismatch).toBe(n.received);
    expect(g.received + n.received).toBe(otherWire.length);
    expect(g.sent + n.sent).toBe(0);
    expect(gateway.stats().listenerErrors + node.stats().listenerErrors).toBe(0);
    expect(gateway.stats().handshakes + node.stats().handshakes).toBe(0);
    await closeSockets(sockets);
  });
});
