// Attacks on the handshake: impersonation of the peer a gateway connects to, replayed intros,
// forgeries during a simultaneous open, low-order keys. The attacker sits on the path (a relay it
// runs) or beside it, and speaks only what the wire spec describes.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import type { Connection, Transport } from "sluice";
import { EvilPeer, EvilSocket, Relay, sleep, timestampUs, type Datagram } from "./evil-peer.ts";
import { bindSluice, bytes, closedAfterEach, describe3, eventually, figure, hex, text } from "./harness.ts";
import { dh, generateKeyPair, mac, mac1Key, mac1Valid, writeIntro, type KeyPair } from "./noise.ts";
import {
  COOKIE_BYTES,
  INTRO,
  KIND,
  PROTOCOL_3_0,
  RESPONSE,
  RESPONSE_BYTES,
  handshakeHeader,
  packetKind,
  readU32,
} from "./wire.ts";

const track = closedAfterEach();

const compareKeys = (a: KeyPair, b: KeyPair) => Buffer.compare(a.public, b.public);

/** Two key pairs, the first lower (bytewise, by public key) than the second. */
function orderedKeys(): [KeyPair, KeyPair] {
  const a = generateKeyPair();
  const b = generateKeyPair();
  return compareKeys(a, b) < 0 ? [a, b] : [b, a];
}

/** A key pair on the given side (bytewise) of `than`. */
function keyOnSide(than: KeyPair, side: "above" | "below"): KeyPair {
  for (;;) {
    const k = generateKeyPair();
    if (compareKeys(k, than) > 0 === (side === "above")) return k;
  }
}

/** An intro that claims `claimed` as the initiator's key without its secret: the ss part cannot open. */
function forgedIntro(claimed: Uint8Array, responderStatic: Uint8Array, version = PROTOCOL_3_0): Uint8Array {
  return writeIntro({
    initiator: { public: claimed, secret: randomBytes(32) },
    responderStatic,
    senderId: readU32(randomBytes(4), 0) || 1,
    timestampUs: timestampUs(),
    version,
  }).packet;
}

/** A real intro from a key of the attacker's own, any version: the crypto is sound. */
function ownIntro(responderStatic: Uint8Array, version = PROTOCOL_3_0): Uint8Array {
  return writeIntro({
    initiator: generateKeyPair(),
    responderStatic,
    senderId: readU32(randomBytes(4), 0) || 1,
    timestampUs: timestampUs(),
    version,
  }).packet;
}

/** A RESPONSE for `initiatorId` with a correct mac1 (S_I is public) and random crypto. */
function forgedResponse(initiatorId: number, initiatorStatic: Uint8Array): Uint8Array {
  const packet = new Uint8Array(RESPONSE_BYTES);
  packet.set(handshakeHeader(KIND.response, initiatorId));
  packet.set(randomBytes(RESPONSE.mac1 - RESPONSE.ephemeral), RESPONSE.ephemeral);
  packet.set(mac(mac1Key(initiatorStatic), packet.subarray(0, RESPONSE.mac1)), RESPONSE.mac1);
  return packet;
}

/** A COOKIE for `initiatorId` that no responder sealed. */
function forgedCookie(initiatorId: number): Uint8Array {
  const packet = new Uint8Array(randomBytes(COOKIE_BYTES));
  packet.set(handshakeHeader(KIND.cookie, initiatorId));
  return packet;
}

const VERSIONS = [
  { major: 2, minor: 0, minimumMajor: 2, minimumMinor: 0 },
  { major: 9, minor: 0, minimumMajor: 9, minimumMinor: 0 },
  PROTOCOL_3_0,
];

const acceptWithin = (transport: Transport, ms: number) =>
  Promise.race([transport.accept(), sleep(ms).then(() => undefined)]);

/** Every handshake reply (RESPONSE or COOKIE) among `datagrams` after time `since`. */
const handshakeReplies = (datagrams: Datagram[], since: number) =>
  datagrams.filter((d) => d.at >= since && (packetKind(d.bytes) === "response" || packetKind(d.bytes) === "cookie"));

describe3("impersonation", () => {
  test("a gateway's connect(X, K) completes only with K, whatever X's owner sends it first", async () => {
    const [low, high] = orderedKeys(); // the gateway's key sorts above K: the case that was open
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true, secretKey: high.secret }));
    const real = track(await bindSluice({ host: "127.0.0.4", gateway: true, secretKey: low.secret }));
    // X is the attacker's relay in front of the real holder of K.
    const relay = track(await Relay.open(real.address, "127.0.0.2"));
    const attacker = new EvilPeer(relay.front, generateKeyPair(), true);
    const attackerSessions: Promise<unknown>[] = [];
    let injected = 0;
    relay.intercept = (d, direction) => {
      if (direction === "toClient") return true;
      if (attacker.claim(d)) return false;
      if (packetKind(d.bytes) !== "intro" || injected > 0) return true;
      // The gateway's first intro: answer it with everything X's owner can make, then let it through.
      const id = readU32(d.bytes, INTRO.senderId);
      for (const side of ["above", "below"] as const) {
        const impostor = new EvilPeer(relay.front, keyOnSide(high, side), true);
        const claim = relay.intercept!;
        relay.intercept = (e, dir) => dir === "toServer" && impostor.claim(e) ? false : claim(e, dir);
        attackerSessions.push(impostor.connect(gateway.address, gateway.publicKey).catch((e) => e));
      }
      for (const version of VERSIONS) relay.front.send(forgedIntro(low.public, gateway.publicKey, version), gateway.address);
      relay.front.send(forgedResponse(id, gateway.publicKey), gateway.address);
      relay.front.send(forgedCookie(id), gateway.address);
      injected++;
      setTimeout(() => relay.back.send(d.bytes, real.address), 100);
      return false;
    };
    const connection = await gateway.connect(relay.front.address, low.public);
    expect(hex(connection.remotePublicKey)).toBe(hex(low.public));
    const atReal = (await real.accept())!;
    expect(hex(atReal.remotePublicKey)).toBe(hex(high.public));
    await connection.send(bytes("only K reads this"));
    expect(text(await atReal.recv())).toBe("only K reads this");
    // The attacker's own handshakes are a gateway's business as usual, under the attacker's keys only.
    const outcomes = await Promise.all(attackerSessions);
    const inbound: Connection[] = [];
    for (let c = await acceptWithin(gateway, 100); c !== undefined; c = await acceptWithin(gateway, 100)) inbound.push(c);
    expect(inbound.map((c) => hex(c.remotePublicKey))).not.toContain(hex(low.public));
    const stats = gateway.stats();
    figure("impersonation", {
      connectResolvedWith: "K",
      attackerHandshakes: outcomes.map((o) => (o instanceof Error ? o.message : "completed")),
      acceptedFromAttacker: inbound.length,
      drops: stats.drops,
    });
  });
});

describe3("replayed intro", () => {
  test("a replayed intro is answered by nothing, changes nothing, and does not lock a restarting peer out", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const key = generateKeyPair();
    const relay = track(await Relay.open(gateway.address, "127.0.0.2")); // the peer's address, as the gateway sees it
    const stranger = track(await EvilSocket.bind("127.0.0.5"));
    let node: Transport = track(await bindSluice({ secretKey: key.secret }));
    const first = await node.connect(relay.front.address, gateway.publicKey);
    let inbound = (await gateway.accept())!;
    const [intro] = relay.intros();
    const replay = () => {
      relay.back.send(intro, gateway.address); // from the address the peer used
      stranger.send(intro, gateway.address); // and from elsewhere
    };
    const answered = (since: number) => handshakeReplies([...relay.toClient, ...stranger.inbox], since).length;

    // While connected.
    let since = performance.now();
    for (let i = 0; i < 3; i++) replay();
    await sleep(300);
    expect(answered(since)).toBe(0);
    await first.send(bytes("still here"));
    expect(text(await inbound.recv())).toBe("still here");
    expect(gateway.stats()).toMatchObject({ connections: 1, handshakes: 0 });

    // The peer restarts (no CLOSE: it crashed) and connects again, same key and address, while the
    // attacker keeps replaying its old intro.
    await node.close();
    node = track(await bindSluice({ secretKey: key.secret }));
    const replaying = setInterval(replay, 20);
    const started = performance.now();
    let second: Connection;
    try {
      second = await node.connect(relay.front.address, gateway.publicKey);
    } finally {
      clearInterval(replaying);
    }
    const restartMs = performance.now() - started;
    figure("restart connect while the old intro is replayed every 20 ms (ms)", restartMs.toFixed(1));
    expect(restartMs).toBeLessThan(1000);
    inbound = (await gateway.accept())!;
    await second.send(bytes("after restart"));
    expect(text(await inbound.recv())).toBe("after restart");

    // After a graceful close: at once, and after the 2 s a closed connection used to be remembered.
    await second.close();
    await eventually(() => gateway.stats().connections === 0);
    since = performance.now();
    replay();
    await sleep(2200);
    replay();
    await sleep(200);
    expect(answered(since)).toBe(0);
    const stats = gateway.stats();
    expect(stats).toMatchObject({ connections: 0, handshakes: 0 });
    figure("replayed intros: gateway drops", stats.drops);
  });
});

describe3("simultaneous open", () => {
  test("forged and replayed intros, responses and cookies during a simultaneous open fail neither connect", async () => {
    const keys = orderedKeys();
    const a = track(await bindSluice({ host: "127.0.0.3", secretKey: keys[0].secret }));
    const b = track(await bindSluice({ host: "127.0.0.6", secretKey: keys[1].secret }));
    const pathToB = track(await Relay.open(b.address, "127.0.0.2"));
    const pathToA = track(await Relay.open(a.address, "127.0.0.7"));
    const stranger = track(await EvilSocket.bind("127.0.0.5"));
    const forgeOn = (relay: Relay, sender: KeyPair, target: Transport) => {
      let done = false;
      relay.intercept = (d, direction) => {
        if (direction !== "toServer" || done || packetKind(d.bytes) !== "intro") return true;
        done = true;
        const id = readU32(d.bytes, INTRO.senderId);
        const toTarget = (p: Uint8Array) => {
          relay.back.send(p, target.address); // "from the sender", as the target sees it
          stranger.send(p, target.address);
        };
        for (const version of VERSIONS) {
          toTarget(forgedIntro(sender.public, target.publicKey, version));
          toTarget(ownIntro(target.publicKey, version));
        }
        for (let i = 0; i < 5; i++) stranger.send(d.bytes, target.address); // a replay from elsewhere
        // Toward the sender, which waits for a RESPONSE to this id.
        relay.front.send(forgedResponse(id, sender.public), d.from);
        relay.front.send(forgedCookie(id), d.from);
        setTimeout(() => relay.back.send(d.bytes, target.address), 50);
        return false;
      };
    };
    forgeOn(pathToB, keys[0], b);
    forgeOn(pathToA, keys[1], a);
    const [atA, atB] = await Promise.all([
      a.connect(pathToB.front.address, b.publicKey),
      b.connect(pathToA.front.address, a.publicKey),
    ]);
    expect(hex(atA.remotePublicKey)).toBe(hex(b.publicKey));
    expect(hex(atB.remotePublicKey)).toBe(hex(a.publicKey));
    await atA.send(bytes("a to b"));
    await atB.send(bytes("b to a"));
    expect(text(await atB.recv())).toBe("a to b");
    expect(text(await atA.recv())).toBe("b to a");
    expect(a.stats().connections).toBe(1);
    expect(b.stats().connections).toBe(1);
    figure("simultaneous open under forgery: drops at the lower and the higher key", [a.stats().drops, b.stats().drops]);
  });
});

describe3("simultaneous open, afterwards", () => {
  test("the higher side's intro, which the lower side opened and did not answer, is answered by nothing when replayed later", async () => {
    const [low, high] = orderedKeys();
    const a = track(await bindSluice({ host: "127.0.0.3", secretKey: low.secret }));
    const b = track(await bindSluice({ host: "127.0.0.6", secretKey: high.secret }));
    const pathToA = track(await Relay.open(a.address, "127.0.0.7")); // an observer on B's way to A
    const [atA, atB] = await Promise.all([a.connect(b.address, b.publicKey), b.connect(pathToA.front.address, a.publicKey)]);
    const [captured] = pathToA.intros();
    const stranger = track(await EvilSocket.bind("127.0.0.8"));
    for (let i = 0; i < 5; i++) stranger.send(captured, a.address);
    await sleep(300);
    const replies = handshakeReplies(stranger.inbox, 0);
    figure("replays of the higher side's intro at the lower side", {
      replies: replies.map((d) => `${packetKind(d.bytes)} ${d.bytes.length} B`),
      lowerSide: (({ connections, handshakes, drops }) => ({ connections, handshakes, drops }))(a.stats()),
    });
    await atA.send(bytes("the live connection"));
    expect(text(await atB.recv())).toBe("the live connection");
    expect(replies).toEqual([]);
    expect(a.stats().handshakes).toBe(0);
  });
});

// Points of small order on Curve25519 (and non-canonical encodings of them): X25519 with any of them
// gives all zeros.
const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((h) => new Uint8Array(Buffer.from(h, "hex")));

describe3("low-order keys", () => {
  test("connect() to a low-order or all-zero key is a RangeError that says so, and leaves nothing behind", async () => {
    const me = generateKeyPair();
    for (const point of LOW_ORDER_POINTS) expect(dh(me.secret, point).every((x) => x === 0)).toBe(true);
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const node = track(await bindSluice({ maxHandshakes: 2 }));
    for (const point of LOW_ORDER_POINTS) {
      const error = await Promise.resolve()
        .then(() => node.connect(gateway.address, point))
        .then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(RangeError);
      expect((error as RangeError & { code?: unknown }).code).toBeTypeOf("string");
      expect((error as Error).message).toMatch(/order|zero/i);
    }
    expect(node.stats().handshakes).toBe(0);
    const connection = await node.connect(gateway.address, gateway.publicKey);
    expect(hex(connection.remotePublicKey)).toBe(hex(gateway.publicKey));
  });
});

describe3("identity hiding", () => {
  test("the initiator's static key never travels in the clear (a candidate list still confirms it through the response's mac1)", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const relay = track(await Relay.open(gateway.address, "127.0.0.2")); // a passive observer on the path
    const node = track(await bindSluice());
    await node.connect(relay.front.address, gateway.publicKey);
    await sleep(100);
    const seen = [...relay.toServer, ...relay.toClient].map((d) => Buffer.from(d.bytes));
    expect(seen.filter((d) => d.includes(Buffer.from(node.publicKey)))).toEqual([]);
    // What the spec's mac1 lets an observer do anyway: test candidate keys against the RESPONSE.
    const response = relay.toClient.find((d) => packetKind(d.bytes) === "response")!.bytes;
    const candidates = Array.from({ length: 1000 }, () => generateKeyPair().public);
    candidates.splice(500, 0, node.publicKey);
    const confirmed = candidates.filter((k) => mac1Valid(response, k, RESPONSE.mac1));
    figure("passive observer with 1,001 candidate keys, by the RESPONSE's mac1", `${confirmed.length} confirmed, the initiator's: ${confirmed.some((k) => hex(k) === hex(node.publicKey))}`);
  });
});
