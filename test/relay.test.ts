// Relays over loopback: two peers that a gateway joins by a relay (granted here through the internal
// seams; introductions carry them in the rendezvous) open their own end-to-end connection through it.
// The gateway forwards opaque datagrams: it cannot read them, and what it alters is refused by the
// peer. Only the connection a relay id belongs to may use it, within its byte budget.
import { afterEach, expect, test } from "vitest";
import type { Transport } from "sluice";
import { grantRelay, openNodeSocket, openRelay, type SocketFactory } from "sluice/internal";
import { bindTest, closeAll, streamDigests } from "./support/transports.ts";
import { mulberry32 } from "./support/random.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

async function bind(options: Parameters<typeof bindTest>[0] = {}): Promise<Transport> {
  const transport = await bindTest(options);
  open.push(transport);
  return transport;
}

/** A gateway, two peers connected to it, a relay between them: the peers' end-to-end connection over it. */
async function relayedPair(gatewayOptions: Parameters<typeof bindTest>[0] = {}, existing?: Transport) {
  const gateway = existing ?? await bind({ gateway: true, ...gatewayOptions });
  const a = await bind();
  const b = await bind();
  const [, atGatewayA] = await Promise.all([a.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const [, atGatewayB] = await Promise.all([b.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const ids = openRelay(gateway, atGatewayA!, atGatewayB!);
  const viaA = grantRelay(a, gateway.address, ids.a);
  const viaB = grantRelay(b, gateway.address, ids.b);
  const [ab, ba] = await Promise.all([a.connect(viaA, b.publicKey), b.connect(viaB, a.publicKey)]);
  return { gateway, a, b, ab, ba, ids };
}

test("two peers connect through a gateway's relay, end to end: their keys, their data, the gateway only forwards; no path MTU probe crosses the relay", async () => {
  const { gateway, a, b, ab, ba } = await relayedPair();
  expect(ab.remotePublicKey).toEqual(b.publicKey);
  expect(ba.remotePublicKey).toEqual(a.publicKey);
  expect(ab.remoteAddress).toMatchObject({ host: "127.0.0.1", port: gateway.address.port });
  expect(ab.remoteAddress.relay).toBeGreaterThan(0);
  const { sent, received } = await streamDigests(ab, ba, 1024 * 1024);
  expect(received).toBe(sent);
  const stats = gateway.stats();
  expect(stats.datagramsRelayed).toBeGreaterThan(900);
  expect(stats.relays).toBe(1);
  expect(stats.connections).toBe(2); // the gateway holds no connection of the pair's own
  // A relayed path gets no path MTU probe: its datagrams stay at 1200 bytes (design.md, "Path MTU discovery").
  for (const end of [ab, ba]) expect(end.stats().delivery).toMatchObject({ pathMtuBytes: 1200, mtuProbesSent: 0 });
});

test("the gateway cannot alter what it relays: a datagram it tampers with is refused by the peer, the data arrives intact", async () => {
  const random = mulberry32(11);
  // Every 20th relayed datagram the gateway sends has a byte of its payload flipped (seeded).
  const tampering: SocketFactory = async (options) => {
    const socket = await openNodeSocket(options);
    return {
      ...socket,
      address: socket.address,
      kind: socket.kind,
      send(chunks, host, port) {
        const datagram = chunks.length === 1 ? new Uint8Array(chunks[0]!) : new Uint8Array(Buffer.concat(chunks));
        if (datagram[0] === 0x05 && random() < 0.05) datagram[6 + Math.floor(random() * (datagram.length - 6))]! ^= 0x40;
        socket.send([datagram], host, port);
      },
      close: () => socket.close(),
    };
  };
  const { a, b, ab, ba } = await relayedPair({ socket: tampering });
  const { sent, received } = await streamDigests(ab, ba, 512 * 1024);
  expect(received).toBe(sent);
  const refused = a.stats().drops.decryptFailed + b.stats().drops.decryptFailed + a.stats().drops.badMac + b.stats().drops.badMac;
  expect(refused).toBeGreaterThan(0);
});

test("only the connection a relay id belongs to may use it: the same bytes from a stranger's address are dropped", async () => {
  const { gateway, ids } = await relayedPair();
  const stranger = await bind();
  const before = gateway.stats();
  const datagram = new Uint8Array(60);
  datagram[0] = 0x05;
  datagram[1] = 2;
  new DataView(datagram.buffer).setUint32(2, ids.a, true);
  datagram[6] = 0x02;
  const { createSocket } = await import("node:dgram");
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  for (let i = 0; i < 100; i++) socket.send(datagram, gateway.address.port, "127.0.0.1");
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.close();
  const after = gateway.stats();
  expect(after.drops.unknownSender - before.drops.unknownSender).toBe(100);
  expect(after.datagramsRelayed - before.datagramsRelayed).toBeLessThan(100); // only the pair's own acknowledgements
  expect(stranger.stats().datagramsReceived).toBe(0);
});

test("a relay past its byte budget drops (counted) and slows its pair; another pair on the same gateway keeps its own budget", async () => {
  const budget = { bytesPerSecond: 500_000, totalBytesPerSecond: 10_000_000 };
  const first = await relayedPair({ relay: budget });
  const second = await relayedPair({}, first.gateway);
  const timed = async (pair: typeof first, bytes: number) => {
    const started = performance.now();
    const { sent, received } = await streamDigests(pair.ab, pair.ba, bytes);
    expect(received).toBe(sent);
    return performance.now() - started;
  };
  const [heavyMs, lightMs] = await Promise.all([timed(first, 1024 * 1024), timed(second, 64 * 1024)]);
  expect(first.gateway.stats().drops.relayBudget).toBeGreaterThan(0);
  expect((1024 * 1024) / (heavyMs / 1000)).toBeLessThan(3 * budget.bytesPerSecond); // held near its budget
  expect(lightMs).toBeLessThan(heavyMs / 2); // the other pair is not held back by the first's traffic
}, 30_000);
