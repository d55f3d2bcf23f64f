// Attacks after (or beside) a handshake: replies to strangers, replayed data packets, forged CLOSE,
// and a key update the attacker drives under a transfer.
import { createHash, randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import type { Connection, Transport } from "sluice";
import { bindAcrossIps, closeSockets, EvilPeer, EvilSocket, randomIntro, sleep, timestampUs } from "./evil-peer.ts";
import { ALWAYS_UNDER_LOAD, bindSluice, bytes, closedAfterEach, describe3, eventually, figure, mac1Intro, text } from "./harness.ts";
import { generateKeyPair, sealData, writeIntro } from "./noise.ts";
import { encodeFrames, PROTOCOL_3_0, type Frame } from "./wire.ts";

const track = closedAfterEach();

const message = (sequence: number, s: string): Frame[] => {
  const b = bytes(s);
  return [{ type: "messageData", sequence, total: b.length, offset: 0, bytes: b }];
};

/** A Sluice gateway with one evil session connected to it, and the gateway's side of it. */
async function connected(host = "127.0.0.2", options = {}) {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true, ...options }));
  const peer = track(await EvilPeer.bind(host));
  const session = await peer.connect(gateway.address, gateway.publicKey);
  const inbound = (await gateway.accept())!;
  return { gateway, peer, session, inbound };
}

/** Collects every message `connection` delivers, in order, until it ends. */
function collect(connection: Connection): string[] {
  const out: string[] = [];
  (async () => {
    for (let m = await connection.recv(); m !== undefined; m = await connection.recv()) out.push(text(m)!);
  })().catch(() => {});
  return out;
}

describe3("replies to strangers", () => {
  test("no reply larger than its request, nor more bytes than it, from an unauthenticated source", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const loaded = track(await bindSluice({ host: "127.0.0.1", gateway: true, ...ALWAYS_UNDER_LOAD }));
    const node = track(await bindSluice({ host: "127.0.0.1" }));
    const known = await EvilPeer.bind("127.0.0.4");
    track(known);
    const session = await known.connect(gateway.address, gateway.publicKey);
    const probes = (target: Transport): Uint8Array[] => {
      const own = (version = PROTOCOL_3_0) =>
        writeIntro({ initiator: generateKeyPair(), responderStatic: target.publicKey, senderId: 77, timestampUs: timestampUs(), version }).packet;
      const list = [
        randomIntro(),
        mac1Intro(target.publicKey),
        own(),
        own({ major: 2, minor: 0, minimumMajor: 2, minimumMinor: 0 }),
        own({ major: 9, minor: 0, minimumMajor: 9, minimumMinor: 0 }),
        writeIntro({ initiator: { public: generateKeyPair().public, secret: randomBytes(32) }, responderStatic: target.publicKey, senderId: 5, timestampUs: timestampUs(), version: PROTOCOL_3_0 }).packet,
        new Uint8Array(1),
        new Uint8Array(randomBytes(1500)),
        new Uint8Array(randomBytes(1501)),
        sealData(randomBytes(32), 0, 12345, 0, new Uint8Array(1)),
        sealData(randomBytes(32), 1, 12345, 2 ** 40, new Uint8Array(1171)),
        sealData(randomBytes(32), 0, session.remoteId, session.nextPacketNumber + 3, encodeFrames([{ type: "ping" }])),
      ];
      // Every first byte at an intro's length, the known kinds at every handshake length, and RELAY
      // (0x05, in docs/wire.md since) from its shortest to its longest.
      for (let kind = 0; kind < 256; kind++) {
        const lengths = kind === 0x05 ? [7, 50, 146, 1500] : [0x01, 0x02, 0x03, 0x04, 0x82].includes(kind) ? [50, 114, 146] : [146];
        for (const length of lengths) {
          const p = new Uint8Array(randomBytes(length));
          p[0] = kind;
          p[1] = 2;
          list.push(p);
        }
      }
      return list;
    };
    const rows: { target: string; probe: number; request: number; replies: number[] }[] = [];
    const all: EvilSocket[] = [];
    for (const [name, target] of [["gateway", gateway], ["gateway under load", loaded], ["node", node]] as const) {
      const list = probes(target);
      const sockets = await bindAcrossIps(1, list.length); // an IP each: no per-IP budget hides an answer
      all.push(...sockets);
      list.forEach((p, i) => {
        sockets[i].send(p, target.address);
        rows.push({ target: name, probe: i, request: p.length, replies: [] });
        const row = rows[rows.length - 1];
        sockets[i].handler = (d) => row.replies.push(d.bytes.length);
      });
    }
    await sleep(1200); // long enough for any re-sent reply
    await closeSockets(all);
    const answered = rows.filter((r) => r.replies.length > 0);
    const worst = Math.max(0, ...rows.map((r) => r.replies.reduce((a, b) => a + b, 0) / r.request));
    figure("replies to unauthenticated requests", `${answered.length} of ${rows.length} answered; worst total reply / request ${worst.toFixed(2)}×`);
    figure("answered (target, probe index, request B, replies B)", answered.map((r) => `${r.target} #${r.probe} ${r.request}: ${r.replies.join("+")}`).join("; "));
    for (const r of rows) {
      expect(Math.max(0, ...r.replies), `largest reply to a ${r.request} B request at ${r.target}`).toBeLessThanOrEqual(r.request);
      expect(r.replies.reduce((a, b) => a + b, 0), `total replies to a ${r.request} B request at ${r.target}`).toBeLessThanOrEqual(r.request);
    }
    expect(rows.filter((r) => r.target === "node" && r.replies.length > 0)).toEqual([]);
  });
});

describe3("replayed data", () => {
  test("a replayed data packet is never delivered: at once, from elsewhere, past the window, after a key update", async () => {
    const { session, inbound } = await connected();
    const got = collect(inbound);
    const elsewhere = track(await EvilSocket.bind("127.0.0.5"));
    const captured = session.send(message(0, "once"));
    expect(await eventually(() => got.length === 1)).toBe(true);
    const replay = (times: number) => {
      for (let i = 0; i < times; i++) {
        session.socket.send(captured, session.remote);
        elsewhere.send(captured, session.remote);
      }
    };
    replay(5);
    for (let i = 1; i <= 200; i++) {
      session.send(message(i, `m${i}`));
      if (i % 50 === 0) await sleep(20);
    }
    replay(5); // now far below the 128-packet window
    await sleep(50);
    session.updateKey();
    session.send(message(201, "after update"));
    replay(5);
    session.send(message(202, "end"));
    expect(await eventually(() => got.at(-1) === "end", 3000)).toBe(true);
    expect(got.filter((m) => m === "once")).toHaveLength(1);
    expect(got).toEqual(["once", ...Array.from({ length: 200 }, (_, i) => `m${i + 1}`), "after update", "end"]);
    figure("replayed data packets: connection drops", inbound.stats().drops);
  });
});

describe3("forged CLOSE", () => {
  test("a CLOSE not sealed by the peer's key is refused, whoever sends it and from wherever", async () => {
    const { gateway, session: victim, inbound } = await connected();
    const got = collect(inbound);
    const attacker = track(await EvilPeer.bind("127.0.0.4"));
    const own = await attacker.connect(gateway.address, gateway.publicKey);
    const attackersInbound = (await gateway.accept())!;
    const close: Frame[] = [{ type: "close", code: 0 }];
    const forged = [
      sealData(randomBytes(32), 0, victim.remoteId, victim.nextPacketNumber + 1, encodeFrames(close)),
      sealData(randomBytes(32), 1, victim.remoteId, victim.nextPacketNumber + 2, encodeFrames(close)),
      own.seal(close, { connectionId: victim.remoteId, packetNumber: victim.nextPacketNumber + 3 }), // the attacker's own key
    ];
    const tampered = victim.seal(close, { packetNumber: victim.nextPacketNumber + 4 });
    tampered[tampered.length - 1] ^= 1;
    forged.push(tampered);
    for (const packet of forged) {
      victim.socket.send(packet, victim.remote); // spoofing the victim's own address
      attacker.socket.send(packet, victim.remote);
    }
    await sleep(200);
    victim.send(message(0, "still open"));
    expect(await eventually(() => got.includes("still open"))).toBe(true);
    await inbound.send(bytes("and answering"));
    expect(await victim.until(() => victim.frames().some((f) => f.type === "messageData"))).toBe(true);
    // The attacker's own CLOSE ends only the attacker's connection.
    own.send(close);
    expect(await Promise.race([attackersInbound.recv(), sleep(2000).then(() => "timeout")])).toBeUndefined();
    victim.send(message(1, "still open after"));
    expect(await eventually(() => got.includes("still open after"))).toBe(true);
    figure("forged CLOSE: victim connection drops", inbound.stats().drops);
  });
});

describe3("key update", () => {
  test("a key update driven by the peer, twice, under a transfer: every byte arrives and the gateway follows", async () => {
    const { session, inbound } = await connected();
    const hashes: string[] = [];
    (async () => {
      for (let m = await inbound.recv(); m !== undefined; m = await inbound.recv()) {
        hashes.push(createHash("sha256").update(m).digest("hex"));
      }
    })().catch(() => {});
    const messages = Array.from({ length: 24 }, () => new Uint8Array(randomBytes(48 * 1024)));
    let phaseStart = 0;
    for (const [i, m] of messages.entries()) {
      if (i === 8 || i === 16) {
        // Only once a packet of the current phase was acknowledged (the spec's rule for a sender).
        expect(await session.until(() => session.acked.largest >= phaseStart)).toBe(true);
        session.updateKey();
        phaseStart = session.nextPacketNumber;
      }
      await session.sendMessages(m);
    }
    expect(await eventually(() => hashes.length === messages.length, 5000)).toBe(true);
    expect(hashes).toEqual(messages.map((m) => createHash("sha256").update(m).digest("hex")));
    expect(await session.until(() => session.received.some((p) => p.phase === 2))).toBe(true);
    expect(session.failedToOpen).toBe(0);
    figure("key update: phases the gateway answered in", [...new Set(session.received.map((p) => p.phase))]);
  });
});
