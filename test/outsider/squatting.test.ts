// Locking legitimate peers out cheaply: one captured intro re-sent from 1,000 ports, random intros
// from many ports against a young gateway's accept ramp, and one IP completing handshakes from many
// ports. Attackers live on 127.0.0.2 (and 127.0.1.x), legitimate peers on 127.0.0.3 and up.
import { expect, test } from "vitest";
import { DEFAULT_MAX_CONNECTIONS_PER_IP } from "sluice";
import { bindMany, closeSockets, EvilPeer, randomIntro, sleep, type EvilSocket } from "./evil-peer.ts";
import { bindSluice, closedAfterEach, describe3, figure, hex, mac1Intro } from "./harness.ts";
import { packetKind } from "./wire.ts";

const track = closedAfterEach();
const trackSockets = (sockets: EvilSocket[]) => (track({ close: () => closeSockets(sockets) }), sockets);

/** Settles every connect; answers how many succeeded and the errors of the rest. */
async function outcomes(connects: Promise<unknown>[]) {
  const settled = await Promise.allSettled(connects);
  return {
    succeeded: settled.filter((s) => s.status === "fulfilled").length,
    errors: settled.flatMap((s) => (s.status === "rejected" ? [String(s.reason)] : [])),
  };
}

describe3("slots", () => {
  test("one captured intro re-sent from 1,000 ports holds no slot: 15 legitimate connects and the gateway's own connect succeed", async () => {
    // No accept ramp here: 15 connects from one IP in 3 s are more than a young gateway's ramp gives
    // one IP by design, and this test is about handshake slots.
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true, acceptRamp: [] }));
    const elsewhere = track(await bindSluice({ host: "127.0.0.4", gateway: true }));
    // The intro of a peer whose handshake completed, as an observer on its path captured it.
    const observed = track(await EvilPeer.bind("127.0.0.9"));
    let intro: Uint8Array | undefined;
    await observed.connect(gateway.address, gateway.publicKey, { onIntro: (i) => void (intro ??= i) });
    await gateway.accept(); // completed at the gateway too: a copy of a pending one may get its cached RESPONSE
    const squatters = trackSockets(await bindMany("127.0.0.2", 1000));
    let replies = 0;
    for (const s of squatters) s.handler = (d) => void (packetKind(d.bytes) !== undefined && replies++);
    const squat = async () => {
      for (let round = 0; round < 4; round++) {
        for (const s of squatters) s.send(intro!, gateway.address);
        await sleep(300);
      }
    };
    const legitimate = await Promise.all(Array.from({ length: 15 }, () => bindSluice().then(track)));
    const squatting = squat();
    await sleep(50);
    const result = await outcomes([
      ...legitimate.map((node, i) => sleep(i * 50).then(() => node.connect(gateway.address, gateway.publicKey))),
      gateway.connect(elsewhere.address, elsewhere.publicKey),
    ]);
    await squatting;
    figure("squatting from 1,000 ports", { ...result, of: 16, repliesToSquatters: replies, gatewayDrops: gateway.stats().drops });
    expect(result.errors).toEqual([]);
    expect(replies).toBe(0);
  }, 15_000);

  test("random and mac1-valid intros from 1,000 ports leave a young gateway's accept ramp usable", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const flooders = trackSockets(await bindMany("127.0.0.2", 1000));
    let sent = 0;
    const flood = setInterval(() => {
      for (let i = 0; i < 5; i++, sent++) {
        flooders[sent % flooders.length].send(sent % 2 === 0 ? randomIntro() : mac1Intro(gateway.publicKey), gateway.address);
      }
    }, 10);
    try {
      await sleep(500);
      const legitimate = await Promise.all(Array.from({ length: 3 }, () => bindSluice().then(track)));
      const result = await outcomes(legitimate.map((n, i) => sleep(i * 300).then(() => n.connect(gateway.address, gateway.publicKey))));
      figure("accept ramp under 500 junk intros/s", { ...result, of: 3, junkIntros: sent, gatewayDrops: gateway.stats().drops });
      expect(result.errors).toEqual([]);
    } finally {
      clearInterval(flood);
    }
  });

  test("one IP completing handshakes from many ports gets at most its per-IP share; another IP still connects", async () => {
    // No accept ramp (it would slow the attacker down by itself): the per-IP cap alone.
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true, acceptRamp: [] }));
    const attackers = await Promise.all(
      Array.from({ length: DEFAULT_MAX_CONNECTIONS_PER_IP + 16 }, () => EvilPeer.bind("127.0.0.2").then(track)),
    );
    const attempts: Promise<unknown>[] = [];
    for (const a of attackers) {
      attempts.push(a.connect(gateway.address, gateway.publicKey, { deadlineMs: 2500 }));
      await sleep(5);
    }
    const attack = await outcomes(attempts);
    const legitimate = track(await bindSluice());
    const connection = await legitimate.connect(gateway.address, gateway.publicKey);
    expect(hex(connection.remotePublicKey)).toBe(hex(gateway.publicKey));
    figure("one IP, many ports", {
      completed: attack.succeeded,
      of: attackers.length,
      perIpCap: DEFAULT_MAX_CONNECTIONS_PER_IP,
      gatewayConnections: gateway.stats().connections,
      drops: gateway.stats().drops,
    });
    expect(attack.succeeded).toBeLessThanOrEqual(DEFAULT_MAX_CONNECTIONS_PER_IP);
  }, 15_000);
});
