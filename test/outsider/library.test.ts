// The evil peer against our own minimal responder, in-process: frames, handshake, cookie, replay,
// forgery, key update. Passing here means a disagreement with Sluice points at Sluice or the spec.
import { afterEach, expect, test } from "vitest";
import { EvilPeer, HandshakeFailed, PacketNumbers, randomIntro, timestampUs, type EvilSession } from "./evil-peer.ts";
import { MiniResponder } from "./mini-responder.ts";
import {
  generateKeyPair,
  hmac,
  keyPairFrom,
  readIkMessage1,
  readIkMessage2,
  transportSeal,
  writeIkMessage1,
  writeIkMessage2,
  writeIntro,
} from "./noise.ts";
import {
  decodeAddress,
  decodeFrames,
  encodeAddress,
  encodeFrames,
  introductionBody,
  PROTOCOL_3_0,
  readIntroduction,
  readRelay,
  relayPacket,
  type Frame,
} from "./wire.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((c) => c()));
});

async function pair(underLoad = false) {
  const responder = await MiniResponder.bind("127.0.0.1");
  responder.underLoad = underLoad;
  const peer = await EvilPeer.bind("127.0.0.2");
  cleanup.push(() => responder.close(), () => peer.close());
  return { responder, peer };
}

const responderSession = async (responder: MiniResponder): Promise<EvilSession> => {
  for (let i = 0; i < 100 && responder.sessions.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return [...responder.sessions.values()][0];
};

const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("HMAC-BLAKE2s matches Python's hmac with hashlib.blake2s", () => {
  const range = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
  expect(toHex(hmac(new TextEncoder().encode("key"), new TextEncoder().encode("msg")))).toBe(
    "7732085652cb630ef3c124b68f2470f5f6209189c913dabc862b2b062f0242c8",
  );
  expect(toHex(hmac(range(32), Uint8Array.of(1)))).toBe("0eb5b63e94eb0ee56be66329386c25cca6d38e699ce487595a1bfa66e6968f35");
  expect(toHex(hmac(range(70), range(100)))).toBe("9d7a7c4cfc56c7cd3198f9acf41bf9c02a42179bce803b54337424c1707d344b");
});

// Noise_IK_25519_ChaChaPoly_BLAKE2s, the vector noise-c publishes (prologue "Prologue123").
test("the Noise IK core reproduces noise-c's Noise_IK_25519_ChaChaPoly_BLAKE2s vector", () => {
  const initiator = keyPairFrom(fromHex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"));
  const initiatorEphemeral = keyPairFrom(fromHex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"));
  const responder = keyPairFrom(fromHex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"));
  const responderEphemeral = keyPairFrom(fromHex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"));
  expect(toHex(responder.public)).toBe("31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62");
  const prologue = fromHex("50726f6c6f677565313233");
  const m0 = fromHex("4c756477696720766f6e204d69736573");
  const one = writeIkMessage1(prologue, initiator, responder.public, initiatorEphemeral, m0);
  expect(toHex(one.message)).toBe(
    "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79440b03ddc7aac5123d06a1b23b71670e32e76c28239a7ca4ac8f784de7e44c1adb78f2058771dfd4229fbdc85c5fba3b587b1d171ce368229c7b752ac25b8faf4e7b2fab7326f0d6fa1fdbef58de623245",
  );
  const read = readIkMessage1(prologue, responder, one.message)!;
  expect(read.payload).toEqual(m0);
  const m1 = fromHex("4d757272617920526f746862617264");
  const two = writeIkMessage2(read, responderEphemeral, m1);
  expect(toHex(two.message)).toBe(
    "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843d9b5a8927f0ac9655ef76833bc7e55269c081ec38c61031f76fe15b2aaaad5",
  );
  const done = readIkMessage2(one.state, two.message)!;
  expect(done.payload).toEqual(m1);
  expect(done.secrets).toEqual(two.secrets);
  const { initiatorToResponder: i2r, responderToInitiator: r2i } = done.secrets;
  expect(toHex(transportSeal(i2r, 0, fromHex("462e20412e20486179656b")))).toBe("2c256ed08fcd08c2980f954ee4beaccb61c9581340f5dd2fd1cf3b");
  expect(toHex(transportSeal(r2i, 0, fromHex("4361726c204d656e676572")))).toBe("d6033f70eee20945c7c9dba304e397ee3b284ff5e00fd9efb095d3");
  expect(toHex(transportSeal(i2r, 1, fromHex("4a65616e2d426170746973746520536179")))).toBe(
    "a9c068ca5d8babf72560652d8e851adbfac35c8a66e810d560863173e96adf4cfe",
  );
});

test("every frame encodes and decodes to itself", () => {
  const frames: Frame[] = [
    { type: "ack", delayUs: 25_000, ranges: [{ high: 100, low: 90 }, { high: 88, low: 88 }, { high: 10, low: 0 }] },
    { type: "ping" },
    { type: "close", code: 1 },
    { type: "messageData", sequence: 7, total: 5000, offset: 1200, bytes: Uint8Array.of(1, 2, 3) },
    { type: "streamData", fin: true, stream: 3, offset: 2 ** 40, bytes: Uint8Array.of(9) },
    { type: "messageCredit", byteLimit: 2 ** 33, sequenceLimit: 2048 },
    { type: "streamCredit", stream: 2, byteLimit: 1 << 20 },
    { type: "streamsCredit", limit: 16 },
    { type: "streamReset", stream: 5, code: 1 },
    { type: "pathChallenge", data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
    { type: "pathResponse", data: Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1) },
    { type: "stopSending", stream: 2 ** 32 - 1, code: 0 },
    { type: "messageRefused", sequence: 4, declared: 2 ** 32 - 1, largest: 64 << 20 },
    { type: "control", controlType: 0x25, sequence: 2 ** 31, body: Uint8Array.of(1, 2, 3) },
    { type: "control", controlType: 0x2f, sequence: 0, body: new Uint8Array(0) },
    { type: "padding", length: 5 },
  ];
  expect(decodeFrames(encodeFrames(frames))).toEqual(frames);
  expect(() => decodeFrames(Uint8Array.of(0x77))).toThrow(/unknown frame/);
  expect(() => decodeFrames(Uint8Array.of(0x13, 1, 2))).toThrow(/past the end/);
  expect(() => decodeFrames(Uint8Array.of(0x22, 0, 0, 0, 0, 9, 0, 1))).toThrow(/past the end/); // a control body cut short
});

test("RELAY packets and rendezvous bodies read back as written", () => {
  const inner = Uint8Array.of(2, 9, 9, 9);
  expect(readRelay(relayPacket(0xdeadbeef, inner))).toEqual({ relayId: 0xdeadbeef, inner });
  expect(readRelay(Uint8Array.of(0x05, 2, 1, 0, 0, 0))).toBeUndefined(); // nothing inside
  const key = new Uint8Array(32).fill(7);
  const locals = [{ host: "10.0.0.2", port: 4000 }, { host: "192.168.1.9", port: 65535 }];
  const body = introductionBody(12, key, { host: "203.0.113.5", port: 9 }, locals);
  expect(body.length).toBe(4 + 32 + 19 + 1 + 2 * 19);
  expect(readIntroduction(body)).toEqual({ requestId: 12, peerKey: key, seenAt: { host: "203.0.113.5", port: 9 }, locals });
});

test("packet numbers merge into ranges from the top down", () => {
  const numbers = new PacketNumbers();
  for (const n of [5, 3, 4, 9, 0]) numbers.add(n);
  numbers.add(10, 12);
  expect(numbers.ranges).toEqual([{ high: 12, low: 9 }, { high: 5, low: 3 }, { high: 0, low: 0 }]);
  expect([numbers.has(4), numbers.has(6), numbers.largest]).toEqual([true, false, 12]);
});

test("observed addresses encode in 19 bytes, IPv4-mapped IPv6 as IPv4", () => {
  expect(decodeAddress(encodeAddress({ host: "127.0.0.3", port: 4242 }))).toEqual({ host: "127.0.0.3", port: 4242 });
  expect(encodeAddress({ host: "::ffff:10.1.2.3", port: 1 })).toEqual(encodeAddress({ host: "10.1.2.3", port: 1 }));
  expect(decodeAddress(encodeAddress({ host: "fe80::1:2", port: 9 }))).toEqual({ host: "fe80:0:0:0:0:0:1:2", port: 9 });
});

test("the initiator completes a handshake and both sides exchange frames", async () => {
  const { responder, peer } = await pair();
  const session = await peer.connect(responder.socket.address, responder.staticKey.public);
  const other = await responderSession(responder);
  session.send([{ type: "messageData", sequence: 0, total: 2, offset: 0, bytes: Uint8Array.of(4, 2) }]);
  expect(await other.until(() => other.frames().some((f) => f.type === "messageData"))).toBe(true);
  expect(other.frames()).toContainEqual({ type: "confirm" });
  expect(await session.until(() => session.frames().some((f) => f.type === "confirmAck"))).toBe(true);
  expect(await session.until(() => session.acked.has(1))).toBe(true); // the message's packet, acknowledged
  other.send([{ type: "ping" }]);
  expect(await session.until(() => session.frames().some((f) => f.type === "ping"))).toBe(true);
});

test("under load the initiator takes the cookie round trip", async () => {
  const { responder, peer } = await pair(true);
  await peer.connect(responder.socket.address, responder.staticKey.public);
  expect(responder.cookiesSent).toBe(1);
  expect(peer.cookiesReceived).toBe(1);
});

test("replayed, forged, random and wrong-version intros are refused", async () => {
  const { responder, peer } = await pair();
  const intros: Uint8Array[] = [];
  await peer.connect(responder.socket.address, responder.staticKey.public, { onIntro: (i) => intros.push(i) });
  peer.socket.send(intros[0], responder.socket.address);
  const victim = generateKeyPair();
  const forged = writeIntro({
    initiator: { public: victim.public, secret: peer.staticKey.secret },
    responderStatic: responder.staticKey.public,
    senderId: 5,
    timestampUs: timestampUs(),
    version: PROTOCOL_3_0,
  });
  peer.socket.send(forged.packet, responder.socket.address);
  peer.socket.send(randomIntro(), responder.socket.address);
  await new Promise((r) => setTimeout(r, 50));
  // replayed: ours, and on a loaded machine the peer's own re-sent intro may come in late too (seen: 2).
  expect(responder.drops).toMatchObject({ decryptFailed: 1, badMac: 1 });
  expect(responder.drops.replayed).toBeGreaterThanOrEqual(1);
  expect(responder.drops.replayed).toBeLessThanOrEqual(2);
  const old = { ...PROTOCOL_3_0, major: 2, minimumMajor: 2 };
  await expect(peer.connect(responder.socket.address, responder.staticKey.public, { version: old })).rejects.toThrow(
    HandshakeFailed,
  );
});

test("a key update moves both sides on, twice, and the old phase still opens reordered packets", async () => {
  const { responder, peer } = await pair();
  const session = await peer.connect(responder.socket.address, responder.staticKey.public);
  const other = await responderSession(responder);
  const late = session.seal([{ type: "ping" }]); // phase 0, sent after the update
  session.updateKey();
  session.send([{ type: "ping" }]);
  expect(await other.until(() => other.receivePhase === 1)).toBe(true);
  expect(other.sendPhase).toBe(1);
  responder.socket.send(late, responder.socket.address); // a reordered phase-0 packet
  other.send([{ type: "ping" }]);
  expect(await session.until(() => session.received.some((p) => p.phase === 1))).toBe(true);
  other.updateKey();
  other.send([{ type: "ping" }]);
  expect(await session.until(() => session.receivePhase === 2)).toBe(true);
  expect(other.failedToOpen).toBe(0);
  expect(session.failedToOpen).toBe(0);
});

test("a tampered data packet does not open", async () => {
  const { responder, peer } = await pair();
  const session = await peer.connect(responder.socket.address, responder.staticKey.public);
  const other = await responderSession(responder);
  const packet = session.seal([{ type: "ping" }]);
  packet[5] ^= 1; // the packet number is authenticated data
  peer.socket.send(packet, responder.socket.address);
  expect(await other.until(() => other.failedToOpen === 1)).toBe(true);
});

test("a key pair from a secret matches node:crypto's public key", () => {
  const pair = generateKeyPair();
  expect(keyPairFrom(pair.secret).public).toEqual(pair.public);
});
