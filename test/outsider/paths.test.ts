// Paths: an authenticated peer that moves its address onto a victim to reflect traffic there, and
// forged packets with a known connection id trying to keep a real NAT rebinding from being adopted.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { bindMany, closeSockets, EvilPeer, EvilSocket, sleep } from "./evil-peer.ts";
import { bindSluice, closedAfterEach, describe3, eventually, figure } from "./harness.ts";
import { sealData } from "./noise.ts";

const track = closedAfterEach();

async function connected() {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
  const peer = track(await EvilPeer.bind("127.0.0.2"));
  const session = await peer.connect(gateway.address, gateway.publicKey);
  const inbound = (await gateway.accept())!;
  return { gateway, peer, session, inbound };
}

describe3("path validation", () => {
  test("a peer moved onto a victim's address and acknowledging blindly: bytes to the victim ≤ 3× bytes from it", async () => {
    const { session, inbound } = await connected();
    const victim = track(await EvilSocket.bind("127.0.0.8"));
    victim.handler = () => {}; // the victim only counts what reaches it
    session.send([{ type: "messageCredit", byteLimit: 2 ** 40, sequenceLimit: 2 ** 20 }]); // take all it sends
    inbound.send(new Uint8Array(16 * 1024 * 1024)).catch(() => {});
    expect(await session.until(() => session.received.length > 200)).toBe(true); // the window is open
    session.autoAck = false;
    session.answerChallenges = false; // the victim never answers: the attacker cannot see its traffic
    const phases: { strategy: string; toVictim: number; fromVictim: number }[] = [];
    const run = async (strategy: string, packet: () => Parameters<typeof session.send>[0]) => {
      const [sent, received] = [victim.bytesSent, victim.bytesReceived];
      const timer = setInterval(() => session.send(packet(), { via: victim }), 5);
      await sleep(600);
      clearInterval(timer);
      await sleep(100);
      phases.push({ strategy, toVictim: victim.bytesReceived - received, fromVictim: victim.bytesSent - sent });
    };
    // First the path alone (PINGs from the victim's address), then blind ACKs that guess how far
    // the gateway has sent (40 packets per 5 ms) and acknowledge all of it.
    await run("pings", () => [{ type: "ping" }]);
    let guess = session.receivedNumbers.largest;
    await run("blind ACKs", () => [{ type: "ack", delayUs: 0, ranges: [{ high: (guess += 40), low: 0 }] }]);
    const toVictim = phases.reduce((n, p) => n + p.toVictim, 0);
    const fromVictim = phases.reduce((n, p) => n + p.fromVictim, 0);
    figure("reflection toward an unvalidated address", phases.map((p) => `${p.strategy}: ${p.toVictim} B to the victim for ${p.fromVictim} B from it (${(p.toVictim / p.fromVictim).toFixed(2)}×)`).join("; "));
    for (const p of phases) expect(p.toVictim, p.strategy).toBeLessThanOrEqual(3 * p.fromVictim);
    expect(toVictim).toBeLessThanOrEqual(3 * fromVictim);
  });

  test("1,000 forged packets/s with the connection id do not keep a real NAT rebinding from being adopted", async () => {
    const { gateway, peer, session, inbound } = await connected();
    const sockets = await bindMany("127.0.0.6", 20);
    track({ close: () => closeSockets(sockets) });
    let forgedNumber = session.nextPacketNumber + 10; // above anything the peer will really send
    let forged = 0;
    const forging = setInterval(() => {
      for (let i = 0; i < 10; i++, forged++) { // 1,000/s asked: timers run late on a busy machine
        const packet = sealData(randomBytes(32), 0, session.remoteId, forgedNumber++, randomBytes(40));
        sockets[forged % sockets.length].send(packet, gateway.address);
      }
    }, 10);
    try {
      await sleep(200);
      // The NAT rebinds: the peer's packets now leave from a new port, and the old one is gone.
      const rebound = track(await EvilSocket.bind("127.0.0.2"));
      rebound.handler = (d) => void session.handle(d);
      session.socket = rebound;
      await peer.socket.close().catch(() => {});
      const started = performance.now();
      const messages: string[] = [];
      (async () => {
        for (let m = await inbound.recv(); m !== undefined; m = await inbound.recv()) messages.push(new TextDecoder().decode(m));
      })().catch(() => {});
      const hello = new TextEncoder().encode("from the new port");
      session.send([{ type: "messageData", sequence: 0, total: hello.length, offset: 0, bytes: hello }]);
      expect(await eventually(() => messages.includes("from the new port"))).toBe(true);
      const adopted = await eventually(
        () => gateway.stats().perConnection.some((c) => c.remoteAddress.port === rebound.address.port),
        1500,
      );
      const before = rebound.datagramsReceived;
      await inbound.send(new TextEncoder().encode("to the new port"));
      const reached = await session.until(() => session.frames().some((f) => f.type === "messageData"), 1500);
      figure("rebinding under forgery", {
        forgedPerSecond: Math.round((forged / (performance.now() - started + 200)) * 1000),
        adoptedMs: (performance.now() - started).toFixed(0),
        datagramsAtNewPort: rebound.datagramsReceived - before,
        gateway: (({ datagramsReceived, datagramsRouted, drops }) => ({ datagramsReceived, datagramsRouted, drops }))(gateway.stats()),
      });
      expect(adopted).toBe(true);
      expect(reached).toBe(true);
    } finally {
      clearInterval(forging);
    }
  });

  test("forged packets with a known connection id are counted apart from routed ones", async () => {
    const { gateway, session } = await connected();
    const forger = track(await EvilSocket.bind("127.0.0.6"));
    const before = gateway.stats();
    const forged = 100;
    for (let i = 0; i < forged; i++) {
      forger.send(sealData(randomBytes(32), 0, session.remoteId, session.nextPacketNumber + 1 + i, randomBytes(40)), gateway.address);
    }
    expect(await eventually(() => gateway.stats().datagramsReceived - before.datagramsReceived >= forged)).toBe(true);
    const after = gateway.stats();
    const routed = after.datagramsRouted - before.datagramsRouted;
    figure("forged packets with a known connection id", {
      received: after.datagramsReceived - before.datagramsReceived,
      routed,
      dropsAfter: after.drops,
      connection: after.perConnection[0]?.drops,
    });
    expect(routed, "forged packets counted as routed").toBeLessThanOrEqual(after.datagramsReceived - before.datagramsReceived - forged);
  });
});

describe3("path MTU probes", () => {
  test("a peer that drops every datagram over 1200 bytes draws at most 15 probes (3 a size, 5 sizes), keeps 1200 and gets its data", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const socket = await EvilSocket.bind("127.0.0.2");
    const peer = track(new EvilPeer(socket, undefined, true));
    let dropped = 0;
    socket.handler = (d) => {
      if (d.bytes.length > 1200) dropped++; // as a path that carries no more would
      else if (!peer.claim(d)) socket.inbox.push(d);
    };
    const session = await peer.connect(gateway.address, gateway.publicKey);
    const inbound = (await gateway.accept())!;
    session.send([{ type: "messageCredit", byteLimit: 2 ** 30, sequenceLimit: 2 ** 20 }]);
    inbound.send(new Uint8Array(256 * 1024)).catch(() => {});
    const probes = () => inbound.stats().delivery;
    expect(await eventually(() => probes().mtuProbesSent >= 15, 5000)).toBe(true);
    await sleep(1500); // the search is over: nothing more for the raise timer's 10 minutes
    const { mtuProbesSent, mtuProbesLost, pathMtuBytes, mtuBlackHoles } = probes();
    figure("path MTU probes toward a peer that drops them", { mtuProbesSent, mtuProbesLost, pathMtuBytes, mtuBlackHoles, dropped });
    expect(mtuProbesSent).toBe(15);
    expect(mtuProbesLost).toBe(15);
    expect(pathMtuBytes).toBe(1200);
    expect(mtuBlackHoles).toBe(0);
    expect(dropped).toBe(15); // the probes alone were larger: data stayed at 1200 bytes
    const data = session.frames().filter((f) => f.type === "messageData");
    expect(data.length).toBeGreaterThan(0);
  });

  test("no probe goes to an address that is not validated: a peer moved onto a victim's address, the gateway back at 1200 bytes there", async () => {
    const { session, inbound } = await connected();
    expect(await eventually(() => inbound.stats().delivery.pathMtuBytes === 1472, 5000)).toBe(true); // the validated path carried 1472
    const victim = track(await EvilSocket.bind("127.0.0.8"));
    let largest = 0;
    let toVictim = 0;
    victim.handler = (d) => {
      largest = Math.max(largest, d.bytes.length);
      toVictim += d.bytes.length;
    };
    session.answerChallenges = false; // the victim never answers: the address stays unvalidated
    session.send([{ type: "messageCredit", byteLimit: 2 ** 30, sequenceLimit: 2 ** 20 }]);
    inbound.send(new Uint8Array(1024 * 1024)).catch(() => {});
    // Padded to 1,100 bytes: the 3× allowance would let a 1472-byte probe through; only validation keeps it back.
    const timer = setInterval(() => session.send([{ type: "ping" }, session.ackFrame(), { type: "padding", length: 1000 }], { via: victim }), 5);
    await sleep(400);
    clearInterval(timer);
    figure("datagrams toward an unvalidated address", { largest, toVictim, fromVictim: victim.bytesSent, pathMtuBytes: inbound.stats().delivery.pathMtuBytes });
    expect(toVictim).toBeGreaterThan(10_000); // the allowance was used: the gateway sent there
    expect(largest).toBeLessThanOrEqual(1200);
  });
});
