// The rendezvous over loopback, through the public API: a gateway introduces two of its peers
// (connectVia on one side, accept() on the other), refuses by policy, by unknown key and by rate
// (counted), an introduction not asked for is declined by policy, introduce() on the gateway's side,
// abort signals, and keys as text.
import { getEventListeners } from "node:events";
import { describe, expect, test } from "vitest";
import {
  decodeKey, encodeKey, generateKeyPair, INTRODUCTION_BURST, MAX_PENDING_INTRODUCTIONS, publicKeyOf, SluiceError, type Connection,
  type IntroductionFailure,
} from "sluice";
import { caught, expectCoded } from "./support/errors.ts";
import { bytes, text, transportsPerTest } from "./support/transports.ts";

const bind = transportsPerTest();

/** A gateway and `count` peers connected to it: each peer's connection to it, and its to each peer. */
type Options = Parameters<typeof bind>[0];
async function star(count: number, gatewayOptions: Options = {}, peerOptions: Options = {}) {
  const gateway = await bind({ gateway: true, acceptRamp: [], ...gatewayOptions }); // many peers from one IP: no ramp
  const peers = [];
  for (let i = 0; i < count; i++) {
    const node = await bind(peerOptions);
    const [toGateway, atGateway] = await Promise.all([node.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    peers.push({ node, toGateway, atGateway: atGateway! });
  }
  return { gateway, peers };
}

async function exchange(one: Connection, other: Connection): Promise<void> {
  await one.send(bytes("ping"));
  expect(text(await other.recv())).toBe("ping");
  await other.send(bytes("pong"));
  expect(text(await one.recv())).toBe("pong");
}

describe("connectVia", () => {
  test("the gateway introduces A to B: A's connectVia() and B's accept() give the two ends of a direct connection", async () => {
    const { gateway, peers: [a, b] } = await star(2);
    const [ab, ba] = await Promise.all([a!.node.connectVia(a!.toGateway, encodeKey(b!.node.publicKey)), b!.node.accept()]);
    expect(ab.remotePublicKey).toEqual(b!.node.publicKey);
    expect(ba!.remotePublicKey).toEqual(a!.node.publicKey);
    expect(ab.remoteAddress).toEqual(b!.node.address); // direct: not the gateway's
    await exchange(ab, ba!);
    expect(gateway.stats().introductions).toMatchObject({ made: 1, refused: { notAllowed: 0, unknownPeer: 0, rateLimited: 0 } });
    expect(a!.node.stats().introductions).toMatchObject({ requested: 1, received: 1, declined: 0, connectsFailed: 0 });
    expect(b!.node.stats().introductions).toMatchObject({ requested: 0, received: 1, declined: 0 });
    // Already connected: the same connection, with no request.
    expect(await a!.node.connectVia(a!.toGateway, b!.node.publicKey)).toBe(ab);
    expect(a!.node.stats().introductions.requested).toBe(1);
  });

  test("transport.close() while connectVia() checks an open connection with the peer (its PING): ERR_SLUICE_CLOSED, as any pending call", async () => {
    const { peers: [a, b] } = await star(2);
    await Promise.all([a!.node.connectVia(a!.toGateway, b!.node.publicKey), b!.node.accept()]);
    const checking = a!.node.connectVia(a!.toGateway, b!.node.publicKey);
    await a!.node.close();
    // Before: the check ended unanswered, the introducer was asked, and its connection was closed
    // too: ERR_SLUICE_INTRODUCTION_FAILED ("noAnswer"), as if the introducer had failed.
    expect(await checking.catch((error: unknown) => error)).toMatchObject({ code: "ERR_SLUICE_CLOSED" });
  });

  test("concurrent connectVia() calls for one peer share one request and one connection; one of them aborting leaves the others waiting", async () => {
    const { gateway, peers: [a, b] } = await star(2);
    const leaving = new AbortController();
    const calls = Array.from({ length: 12 }, (_, i) => a!.node.connectVia(a!.toGateway, b!.node.publicKey, i === 3 ? { signal: leaving.signal } : {}));
    leaving.abort();
    const accepted = b!.node.accept();
    const settled = await Promise.allSettled(calls);
    // Before, each call sent a request of its own, and the introducer's rate limit refused 4 of 12.
    expect(settled[3]).toMatchObject({ status: "rejected", reason: { name: "AbortError" } });
    const connections = settled.filter((_, i) => i !== 3).map((result) => (result as PromiseFulfilledResult<Connection>).value);
    expect(new Set(connections).size).toBe(1);
    expect(a!.node.stats().introductions.requested).toBe(1);
    expect(gateway.stats().introductions).toMatchObject({ made: 1, refused: { notAllowed: 0, unknownPeer: 0, rateLimited: 0 } });
    await exchange(connections[0]!, (await accepted)!);
  });

  test("connectVia() through two introducers at once: each asks its own (one that does not know the peer fails alone, the other connects)", async () => {
    const g1 = await bind({ gateway: true, acceptRamp: [] });
    const g2 = await bind({ gateway: true, acceptRamp: [] });
    const a = await bind();
    const b = await bind();
    const [aToG1] = await Promise.all([a.connect(g1.address, g1.publicKey), g1.accept()]);
    const [aToG2] = await Promise.all([a.connect(g2.address, g2.publicKey), g2.accept()]);
    await Promise.all([b.connect(g2.address, g2.publicKey), g2.accept()]); // B is known to G2 only
    const accepted = b.accept();
    // A review found the call through G2 joined the one through G1, and both failed unknownPeer.
    const [viaG1, viaG2] = await Promise.allSettled([a.connectVia(aToG1, b.publicKey), a.connectVia(aToG2, b.publicKey)]);
    expect(viaG1).toMatchObject({ status: "rejected", reason: { reason: "unknownPeer" } });
    expect(viaG2).toMatchObject({ status: "fulfilled" });
    await exchange((viaG2 as PromiseFulfilledResult<Connection>).value, (await accepted)!);
  });

  test("two connectVia() calls claim a connect an introduction started: the one that aborts leaves the other's connection open", async () => {
    const { gateway, peers: [a, b] } = await star(2);
    gateway.introduce(a!.atGateway, b!.atGateway);
    for (let turn = 0; turn < 10_000 && a!.node.stats().introductions.received === 0; turn++) await new Promise((resolve) => setImmediate(resolve));
    const leaving = new AbortController();
    const staying = a!.node.connectVia(a!.toGateway, b!.node.publicKey);
    const left = a!.node.connectVia(a!.toGateway, b!.node.publicKey, { signal: leaving.signal });
    leaving.abort();
    await expect(left).rejects.toMatchObject({ name: "AbortError" });
    const connection = await staying;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connection.closed).toBe(false); // it was aborted under the caller that stayed
    await exchange(connection, (await b!.node.accept())!);
  });

  test("two peers asking for each other at once each get their end once, from connectVia(), never from accept() as well", async () => {
    const { peers: [a, b] } = await star(2);
    const [ab, ba] = await Promise.all([
      a!.node.connectVia(a!.toGateway, b!.node.publicKey),
      b!.node.connectVia(b!.toGateway, a!.node.publicKey),
    ]);
    await exchange(ab, ba);
    // An app that reads what accept() gives and what connectVia() gives read one connection twice:
    // two recv() loops splitting its messages, and whatever it sends on a new connection sent twice.
    for (const node of [a!.node, b!.node]) {
      await expect(node.accept({ signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ name: "AbortError" });
    }
  });

  test("a node that connect()s to a peer the gateway introduces to it at that moment gets the connection once, from connect(), never from accept() as well", async () => {
    const { peers: [a, b] } = await star(2);
    // A dials B directly while B asks the gateway for A: the gateway's introduction reaches A while
    // A's own handshake with B is under way, and A's connect for it joins that handshake.
    const [ab, ba] = await Promise.all([
      a!.node.connect(b!.node.address, b!.node.publicKey),
      b!.node.connectVia(b!.toGateway, a!.node.publicKey),
    ]);
    await exchange(ab, ba);
    await expect(a!.node.accept({ signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ name: "AbortError" });
  });

  test("a peer is known to the gateway once its connect() resolves: an introduction asked for at that moment finds it", async () => {
    const { gateway, peers: [a] } = await star(1);
    const b = await bind();
    const joined = gateway.accept();
    await b.connect(gateway.address, gateway.publicKey);
    // At once, no turn of the event loop in between: B's first packet (its proof) left before connect() resolved.
    const [ab, ba] = await Promise.all([a!.node.connectVia(a!.toGateway, b.publicKey), b.accept()]);
    await exchange(ab, ba!);
    expect(gateway.stats().introductions.refused.unknownPeer).toBe(0);
    await joined;
  });

  test("keys as text: base64url (the default) and hex in and out; a key pair from generateKeyPair() binds", async () => {
    const pair = generateKeyPair();
    expect(publicKeyOf(pair.secretKey)).toEqual(pair.publicKey);
    expect(publicKeyOf(decodeKey(encodeKey(pair.secretKey)))).toEqual(pair.publicKey);
    const node = await bind({ secretKey: encodeKey(pair.secretKey, "hex") });
    expect(node.publicKey).toEqual(pair.publicKey);
    expect(encodeKey(pair.publicKey, "hex")).toMatch(/^[0-9a-f]{64}$/);
    expect(encodeKey(pair.publicKey)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(decodeKey(encodeKey(pair.publicKey))).toEqual(pair.publicKey);
    expect(decodeKey(encodeKey(pair.publicKey, "hex").toUpperCase())).toEqual(pair.publicKey);
    expectCoded(await caught(() => decodeKey("abc")), TypeError, "ERR_INVALID_ARG_VALUE", /'text' must be a 32-byte key as 64 hex digits or 43 base64url/);
    expectCoded(await caught(() => node.connect(node.address, "z".repeat(64))), TypeError, "ERR_INVALID_ARG_VALUE", /'publicKey' must be a 32-byte key/);
  });

  test("refused: a key the gateway holds no connection with (unknownPeer), and by its policy (notAllowed)", async () => {
    const seen: string[] = [];
    const { gateway, peers: [a, b, c] } = await star(3, {
      introductions: (from, to) => {
        seen.push(`${encodeKey(from).slice(0, 8)}→${encodeKey(to).slice(0, 8)}`);
        return encodeKey(to) !== encodeKey(c!.node.publicKey);
      },
    });
    const unknown = await caught(() => a!.node.connectVia(a!.toGateway, generateKeyPair().publicKey));
    expectCoded(unknown, Error, "ERR_SLUICE_INTRODUCTION_FAILED", /has no connection with [0-9a-f]{64}: that peer is not connected to it/);
    // `reason` is SluiceError's, typed (an app had to cast to read it): IntroductionFailure.
    const reason: IntroductionFailure | undefined = (unknown as SluiceError).reason;
    expect(reason).toBe("unknownPeer");
    expect(unknown).toBeInstanceOf(SluiceError);
    const refused = await caught(() => a!.node.connectVia(a!.toGateway, c!.node.publicKey));
    expectCoded(refused, Error, "ERR_SLUICE_INTRODUCTION_FAILED", /introductions policy refused/);
    expect((refused as SluiceError).reason).toBe("notAllowed");
    expect(seen).toContain(`${encodeKey(a!.node.publicKey).slice(0, 8)}→${encodeKey(c!.node.publicKey).slice(0, 8)}`);
    // Allowed by the same policy.
    const [ab] = await Promise.all([a!.node.connectVia(a!.toGateway, b!.node.publicKey), b!.node.accept()]);
    expect(ab.remotePublicKey).toEqual(b!.node.publicKey);
    expect(gateway.stats().introductions.refused).toEqual({ notAllowed: 1, unknownPeer: 1, rateLimited: 0 });
  });

  test("a node that is not a gateway introduces nobody by default", async () => {
    const hub = await bind();
    const a = await bind();
    const b = await bind();
    // Each side connects to the other at once (neither is a gateway).
    const [toHub] = await Promise.all([a.connect(hub.address, hub.publicKey), hub.connect(a.address, a.publicKey)]);
    await Promise.all([b.connect(hub.address, hub.publicKey), hub.connect(b.address, b.publicKey)]);
    const error = await caught(() => a.connectVia(toHub, b.publicKey));
    expect((error as SluiceError).reason).toBe("notAllowed");
  });

  test(`bounds: ${MAX_PENDING_INTRODUCTIONS} requests may wait on one connection; the gateway serves ${INTRODUCTION_BURST} at once and refuses the rest (counted)`, async () => {
    const { gateway, peers: [a] } = await star(1);
    const requests = Array.from({ length: MAX_PENDING_INTRODUCTIONS }, () => caught(() => a!.node.connectVia(a!.toGateway, generateKeyPair().publicKey)));
    expectCoded(await caught(() => a!.node.connectVia(a!.toGateway, generateKeyPair().publicKey)), RangeError, "ERR_OUT_OF_RANGE", /too many introduction requests waiting/);
    const reasons = (await Promise.all(requests)).map((error) => (error as SluiceError).reason);
    expect(reasons.filter((reason) => reason === "unknownPeer")).toHaveLength(INTRODUCTION_BURST);
    expect(reasons.filter((reason) => reason === "rateLimited")).toHaveLength(MAX_PENDING_INTRODUCTIONS - INTRODUCTION_BURST);
    expect(gateway.stats().introductions.refused).toEqual({ notAllowed: 0, unknownPeer: INTRODUCTION_BURST, rateLimited: MAX_PENDING_INTRODUCTIONS - INTRODUCTION_BURST });
  });

  test("a peer that does not accept introductions stays away: the requester's punch times out, the peer counts it declined", async () => {
    const { gateway, peers: [a] } = await star(1);
    const refusing = await bind({ acceptIntroductions: "none" });
    await Promise.all([refusing.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    const error = await caught(() => a!.node.connectVia(a!.toGateway, refusing.publicKey, { retry: { deadlineMs: 400, intervalMs: 100 } }));
    // Its local address is named when its LOCAL_ADDRESSES reached the gateway before the request did.
    expectCoded(error, Error, "ERR_SLUICE_CONNECT_TIMEOUT", /introduced to [0-9a-f]{64}, but no path opened within 400 ms; tried (no local address \(the peer told none\)|its local addresses 127\.0\.0\.1:\d+ \(no answer\)); the address the introducer sees it at, 127\.0\.0\.1:\d+ \(no answer\); a relay through 127\.0\.0\.1:\d+ \(no answer\)/);
    expect(refusing.stats().introductions).toMatchObject({ received: 1, declined: 1 });
    expect(a!.node.stats().introductions.connectsFailed).toBe(1);
  });

  test("an abort signal rejects with an AbortError (its cause the reason) and withdraws the request", async () => {
    const { peers: [a, b] } = await star(2);
    const controller = new AbortController();
    const pending = a!.node.connectVia(a!.toGateway, b!.node.publicKey, { signal: controller.signal });
    const reason = new Error("changed my mind");
    controller.abort(reason);
    expect(await caught(() => pending)).toMatchObject({ name: "AbortError", code: "ABORT_ERR", cause: reason });
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    const already = await caught(() => a!.node.connectVia(a!.toGateway, b!.node.publicKey, { signal: AbortSignal.abort("no") }));
    expect(already).toMatchObject({ name: "AbortError", code: "ABORT_ERR", cause: "no" });
  });

  test("bad arguments: not a connection, this node's own key, the introducer's key", async () => {
    const { peers: [a] } = await star(1);
    expectCoded(await caught(() => a!.node.connectVia({} as Connection, generateKeyPair().publicKey)), TypeError, "ERR_INVALID_ARG_TYPE", /"introducer"/);
    expectCoded(await caught(() => a!.node.connectVia(a!.toGateway, a!.node.publicKey)), TypeError, "ERR_INVALID_ARG_VALUE", /own public key/);
    expectCoded(await caught(() => a!.node.connectVia(a!.toGateway, a!.toGateway.remotePublicKey)), TypeError, "ERR_INVALID_ARG_VALUE", /introducer's own key/);
  });
});

describe("introduce() on the introducer's side", () => {
  test("both peers connect, and each gets the connection from accept()", async () => {
    const { gateway, peers: [a, b] } = await star(2);
    gateway.introduce(a!.atGateway, b!.atGateway);
    const [ab, ba] = await Promise.all([a!.node.accept(), b!.node.accept()]);
    expect(ab!.remotePublicKey).toEqual(b!.node.publicKey);
    expect(ba!.remotePublicKey).toEqual(a!.node.publicKey);
    await exchange(ab!, ba!);
    expectCoded(await caught(() => gateway.introduce(a!.atGateway, a!.atGateway)), RangeError, "ERR_INVALID_ARG_VALUE", /two different peers/);
  });

  test("by default a peer acts only on a gateway's introductions", async () => {
    const hub = await bind(); // not a gateway
    const a = await bind();
    const b = await bind();
    const [, hubToA] = await Promise.all([a.connect(hub.address, hub.publicKey), hub.connect(a.address, a.publicKey)]);
    const [, hubToB] = await Promise.all([b.connect(hub.address, hub.publicKey), hub.connect(b.address, b.publicKey)]);
    hub.introduce(hubToA, hubToB);
    await expect.poll(() => a.stats().introductions.declined + b.stats().introductions.declined).toBe(2);
    expect(a.stats().handshakes + b.stats().handshakes).toBe(0);
  });
});
