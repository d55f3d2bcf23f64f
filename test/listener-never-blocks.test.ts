// freenet's three "never blocks when full" tests, ported: the listener's hand-off to an established
// connection (its queue at capacity 4 with nobody reading it: 1000 routed datagrams return at once,
// at most 4 'sent', at least 996 'full', counted, never 'closed', all within 1 s), and the handshakes
// of a gateway and of a connecting side, whose work queue is bounded: 1000 intros that pass mac1 in
// one synchronous burst are routed within 1 s and all but a bounded few are refused, counted (copies
// of a queued intro are not queued again; distinct ones stop at the queue's bound). Then
// the established case again over a real socket.
import { createSocket } from "node:dgram";
import { afterEach, expect, test } from "vitest";
import type { Transport } from "sluice";
import { routeDatagram } from "sluice/internal";
import { Arena } from "../src/memory/arena.ts";
import { CoreCrypto } from "../src/handshake/core-crypto.ts";
import { HANDSHAKE_WORK_QUEUE } from "../src/handshake/endpoint.ts";
import { mac1Key, stampMacs } from "../src/handshake/macs.ts";
import { writeIntro } from "../src/handshake/noise.ts";
import { generateKeyPair } from "../src/handshake/primitives.ts";
import { INTRO_MAC1 } from "../src/wire/constants.ts";
import { PROTOCOL_VERSION } from "../src/wire/version.ts";
import { bindTest, closeAll, dataPacket } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
async function bind(options: Parameters<typeof bindTest>[0]): Promise<Transport> {
  const transport = await bindTest(options);
  open.push(transport);
  return transport;
}

const ATTEMPTS = 1000;

/** Routes `datagram` ATTEMPTS times from one address, synchronously: the queue's consumer cannot run in between. */
function routeMany(transport: Transport, datagram: Uint8Array, port: number) {
  const outcomes = { sent: 0, full: 0, closed: 0, dropped: 0 };
  const started = performance.now();
  for (let i = 0; i < ATTEMPTS; i++) outcomes[routeDatagram(transport, datagram, "127.0.0.1", port)]++;
  return { ...outcomes, ms: performance.now() - started };
}

/** A genuine intro to the holder of `publicKey` from a fresh key (so it passes mac1 and opens). */
function validIntro(publicKey: Uint8Array): Uint8Array {
  const arena = Arena.create({ bytes: 1 << 20 });
  const crypto = new CoreCrypto(arena);
  const state = writeIntro(crypto, generateKeyPair(), publicKey, { senderId: 7, timestamp: Date.now() * 1000, version: PROTOCOL_VERSION })!;
  stampMacs(crypto, state.intro, INTRO_MAC1, mac1Key(crypto, publicKey), undefined);
  crypto.dispose();
  arena.forget();
  return state.intro;
}

test("established: a connection whose consumer never reads", async () => {
  const gateway = await bind({ gateway: true, inboundQueuePackets: 4, stallConsumersOf: () => true });
  const joiner = await bind({});
  const [, held] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const result = routeMany(gateway, dataPacket(held!.stats().id), joiner.address.port);
  expect(result.ms).toBeLessThan(1000);
  expect(result.sent).toBeLessThanOrEqual(4);
  expect(result.full).toBeGreaterThanOrEqual(996);
  expect(result.closed).toBe(0);
  expect(held!.stats().drops.queueFull).toBe(result.full);
  expect(gateway.stats().drops.queueFull).toBe(result.full);
});

test("gateway handshakes: 1000 intros that pass mac1, in one burst, are routed within 1 s and cost a bounded few decryptions", async () => {
  // Slots lifted too (queued intros count against them), so the work queue is the bound met.
  const gateway = await bind({ gateway: true, introBurstPerIp: 1000, introsPerIpPerSecond: 1000, underLoadIntrosPerSecond: 100_000, maxHandshakes: 1000, maxHandshakesPerIp: 1000 });
  const intro = validIntro(gateway.publicKey);
  const result = routeMany(gateway, intro, 40001);
  expect(result.ms).toBeLessThan(1000);
  expect(gateway.stats().drops.handshakeRedundant).toBe(ATTEMPTS - 1); // copies of the queued intro are not queued again
  await new Promise((resolve) => setTimeout(resolve, 200)); // the queued one is worked through
  expect(gateway.stats().handshakes).toBe(1); // one intro opened
  // Distinct intros: the work queue is bounded.
  const distinct = Array.from({ length: 2 * HANDSHAKE_WORK_QUEUE }, () => validIntro(gateway.publicKey));
  for (const other of distinct) routeDatagram(gateway, other, "127.0.0.1", 40001);
  expect(gateway.stats().drops.queueFull).toBe(HANDSHAKE_WORK_QUEUE);
  expect(gateway.stats().listenerErrors).toBe(0);
});

test("connecting side: 1000 intros that pass mac1 while it connects are routed within 1 s; its own connect is unaffected", async () => {
  const peer = await bind({});
  const gateway = await bind({ gateway: true });
  const pending = peer.connect(gateway.address, gateway.publicKey);
  const result = routeMany(peer, validIntro(peer.publicKey), 40002);
  expect(result.ms).toBeLessThan(1000);
  const connection = await pending;
  expect(connection.remotePublicKey).toEqual(gateway.publicKey);
  expect(peer.stats().drops.rateLimited + peer.stats().drops.queueFull).toBeGreaterThanOrEqual(ATTEMPTS - 64);
});

test("established, over a real socket: 1000 datagrams to a stalled connection are counted full within 1 s", async () => {
  const gateway = await bind({ gateway: true, inboundQueuePackets: 4, stallConsumersOf: () => true });
  const joiner = await bind({});
  const [, held] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const flooder = createSocket("udp4");
  await new Promise<void>((resolve) => flooder.bind(0, "127.0.0.1", resolve));
  const before = gateway.stats().datagramsReceived;
  const started = performance.now();
  for (let i = 0; i < ATTEMPTS; i++) flooder.send(dataPacket(held!.stats().id, i), gateway.address.port, "127.0.0.1");
  while (gateway.stats().datagramsReceived - before < ATTEMPTS && performance.now() - started < 1000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const stats = gateway.stats();
  expect(stats.datagramsReceived - before).toBeGreaterThanOrEqual(ATTEMPTS); // the flood, and the joiner's few acknowledgements
  expect(performance.now() - started).toBeLessThan(1000);
  expect(held!.stats().routed).toBeLessThanOrEqual(4);
  expect(held!.stats().drops.queueFull).toBeGreaterThanOrEqual(996);
  flooder.close();
});
