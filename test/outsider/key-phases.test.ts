// Key updates abused from the wire: a peer that moves to the next key phase on every packet, without
// waiting for an acknowledgement in the current one (what the spec asks of a sender), and forged
// packets with the other phase bit and packet numbers above any sent, which make the receiver try
// the next key. Neither may throw, cost more than one AEAD per packet, or move a phase that the
// real peer did not move.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { EvilSocket } from "./evil-peer.ts";
import { joinGateway } from "./gateway-peers.ts";
import { bindSluice, bytes, closedAfterEach, describe3, eventually, figure, text } from "./harness.ts";
import { sealData } from "./noise.ts";

const track = closedAfterEach();

async function connected() {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
  const { peer, session, inbound } = await joinGateway(gateway, "127.0.0.2");
  track(peer);
  const got: string[] = [];
  (async () => {
    for (let m = await inbound.recv(); m !== undefined; m = await inbound.recv()) got.push(text(m)!);
  })().catch(() => {});
  return { gateway, session, inbound, got };
}

describe3("key phases from the wire", () => {
  test("a new key phase on every packet, 200 in a row: the gateway follows each, delivers every message, and answers in the newest", async () => {
    const { gateway, session, got } = await connected();
    const COUNT = 200;
    for (let i = 0; i < COUNT; i++) {
      session.updateKey();
      const b = bytes(`message ${i}`);
      session.send([{ type: "messageData", sequence: session.nextMessage++, total: b.length, offset: 0, bytes: b }]);
    }
    expect(await eventually(() => got.length === COUNT, 3000)).toBe(true);
    expect(got).toEqual(Array.from({ length: COUNT }, (_, i) => `message ${i}`));
    // The gateway followed by as many phases between two of its packets as it liked: this side (which
    // tries one phase either way) catches up by hand, and a PING in phase COUNT is answered in it.
    session.receivePhase = COUNT;
    session.send([{ type: "ping" }]);
    expect(await session.until(() => session.received.some((p) => p.phase === COUNT))).toBe(true);
    figure("a key update per packet", { phases: COUNT, gatewayAnsweredIn: Math.max(...session.received.map((p) => p.phase)), decryptFailed: gateway.stats().drops.decryptFailed });
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(gateway.stats().drops.decryptFailed).toBe(0);
  });

  test("forged packets with the other phase bit, numbered above anything sent: decryptFailed, no reply, and the phase stays where the peer keeps it", async () => {
    const { gateway, session, got } = await connected();
    const forger = track(await EvilSocket.bind("127.0.0.5"));
    const before = gateway.stats().drops.decryptFailed;
    const FORGED = 2000;
    for (let i = 0; i < FORGED; i++) {
      const from = i % 2 === 0 ? forger : session.socket; // a stranger's address and the peer's own
      from.send(sealData(new Uint8Array(randomBytes(32)), 1, session.remoteId, session.nextPacketNumber + 1000 + i, randomBytes(40)), gateway.address);
    }
    expect(await eventually(() => gateway.stats().drops.decryptFailed - before >= FORGED, 3000)).toBe(true);
    // The peer, still in phase 0 with packet numbers below the forged ones, is heard and answered in phase 0.
    const b = bytes("after the forgeries");
    session.send([{ type: "messageData", sequence: session.nextMessage++, total: b.length, offset: 0, bytes: b }]);
    expect(await eventually(() => got.includes("after the forgeries"))).toBe(true);
    figure("forged next-phase packets", { forged: FORGED, decryptFailed: gateway.stats().drops.decryptFailed - before, repliesToForger: forger.datagramsReceived });
    expect(forger.datagramsReceived).toBe(0);
    expect(session.received.every((p) => p.phase === 0)).toBe(true);
    expect(gateway.stats().listenerErrors).toBe(0);
  });
});
