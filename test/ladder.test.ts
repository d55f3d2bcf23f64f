// The connection ladder over loopback, through the public API: two peers whose "NATs" (a firewall in
// front of each socket, refusing every source but the gateway while closed) let no direct packet in
// connect through the gateway's relay when the introduction's direct rungs get no answer, and move
// to the direct path, without losing or reordering a byte, once the firewalls open. With relaying off
// the connect fails naming every rung it tried.
import { expect, test } from "vitest";
import { PROBE_INTERVAL_MS, RELAY_AFTER_MS, type AddressChange, type AddressChangeIterator } from "sluice";
import { openNodeSocket, type SocketFactory } from "sluice/internal";
import { caught, expectCoded } from "./support/errors.ts";
import { streamDigests, transportsPerTest } from "./support/transports.ts";

const bind = transportsPerTest();

/** A socket that, while `wall.closed`, drops every datagram not from port `wall.open` (the gateway's). */
function firewalled(wall: { closed: boolean; open: number }): SocketFactory {
  return (options) => openNodeSocket({
    ...options,
    onDatagram: (datagram, host, port) => {
      if (wall.closed && port !== wall.open) return;
      options.onDatagram(datagram, host, port);
    },
  });
}

/** A gateway, and two firewalled peers connected to it. */
async function walledPeers(gatewayOptions: Parameters<typeof bind>[0] = {}, peerOptions: Parameters<typeof bind>[0] = {}) {
  const gateway = await bind({ gateway: true, acceptRamp: [], ...gatewayOptions });
  const wall = { closed: true, open: gateway.address.port };
  const peer = async () => {
    const node = await bind({ socket: firewalled(wall), ...peerOptions });
    const [toGateway] = await Promise.all([node.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    return { node, toGateway };
  };
  return { gateway, wall, a: await peer(), b: await peer() };
}

async function next(changes: AddressChangeIterator): Promise<AddressChange> {
  const { value, done } = await changes.next();
  if (done === true) throw new Error("the connection ended");
  return value;
}

test("no direct path: the introduced peers connect through the gateway's relay, then move to the direct path once it opens, losing nothing, and search its path MTU there", async () => {
  const { gateway, wall, a, b } = await walledPeers();
  const started = performance.now();
  const [ab, ba] = await Promise.all([a.node.connectVia(a.toGateway, b.node.publicKey), b.node.accept()]);
  expect(performance.now() - started).toBeGreaterThanOrEqual(RELAY_AFTER_MS); // the relay rung comes after the direct ones had their time
  expect(ab.path).toBe("relayed");
  expect(ab.remoteAddress).toMatchObject({ port: gateway.address.port, relay: expect.any(Number) });
  expect(ba!.remoteAddress).toMatchObject({ port: gateway.address.port, relay: expect.any(Number) });
  const changes = ab.addressChanges();
  let opened = 0;
  const { sent, received } = await streamDigests(ab, ba!, 4 * 1024 * 1024, async () => {
    await new Promise((resolve) => setTimeout(resolve, 200)); // data flows over the relay meanwhile
    wall.closed = false;
    opened = performance.now();
    // This side's probe is answered ("direct"), or the peer's was first and its packets came from
    // its direct address ("moved", then "validated" by this side's challenge).
    let change = await next(changes);
    expect(change).toMatchObject({ address: b.node.address, previous: { port: gateway.address.port } });
    if (change.kind === "moved") change = await next(changes);
    expect(change.kind).toMatch(/^(direct|validated)$/);
    expect(performance.now() - opened).toBeLessThan(2 * PROBE_INTERVAL_MS + 500);
  });
  expect(received).toBe(sent); // nothing lost, nothing out of order, across the move
  expect(ab.remoteAddress).toEqual(b.node.address);
  expect(ab.path).toBe("direct");
  // The peer follows the move (its path moves to A's direct address, validated by its challenge).
  await expect.poll(() => ba!.remoteAddress.relay, { timeout: 3000 }).toBeUndefined();
  const relayed = gateway.stats().datagramsRelayed;
  await ab.send(new Uint8Array(100));
  await ba!.recv();
  expect(gateway.stats().datagramsRelayed).toBe(relayed); // the relay is left
  // Over the relay datagrams stayed at 1200 bytes; on the direct path the search starts and reaches the ceiling.
  await expect.poll(() => ab.stats().delivery.pathMtuBytes, { timeout: 3000 }).toBe(1472);
  await expect.poll(() => ba!.stats().delivery.pathMtuBytes, { timeout: 3000 }).toBe(1472);
}, 30_000);

test("relaying off and no direct path: connectVia() fails after its deadline, naming every rung it tried", async () => {
  const { a, b } = await walledPeers({ relay: { enabled: false } });
  const retry = { deadlineMs: 2500 };
  const failing = caught(() => a.node.connectVia(a.toGateway, b.node.publicKey, { retry }));
  const error = await failing;
  expectCoded(error, Error, "ERR_SLUICE_CONNECT_TIMEOUT", /no path opened within 2500 ms/);
  expect((error as Error).message).toMatch(new RegExp(`the address the introducer sees it at, 127\\.0\\.0\\.1:${b.node.address.port} \\(no answer\\)`));
  expect((error as Error).message).toMatch(/no relay \(the introducer offered none/);
}, 15_000);

test("peers under load (every intro needs a cookie): the COOKIE crosses the relay too, and the relayed connect completes", async () => {
  const { gateway, a, b } = await walledPeers({}, { underLoadIntrosPerSecond: 0 });
  const [ab, ba] = await Promise.all([a.node.connectVia(a.toGateway, b.node.publicKey), b.node.accept()]);
  expect(ab.path).toBe("relayed");
  expect(a.node.stats().cookiesSent + b.node.stats().cookiesSent).toBeGreaterThan(0);
  const { sent, received } = await streamDigests(ab, ba!, 256 * 1024);
  expect(received).toBe(sent);
  expect(gateway.stats().datagramsRelayed).toBeGreaterThan(0);
});

test("dual-stack peers (bound to \"::\") behind an IPv4 gateway: relayed, then direct, and then no move back and forth between an address and its IPv4-mapped form", async () => {
  // A socket on "::" hears the peer's IPv4 address (from the introduction, probed) as ::ffff:a.b.c.d.
  // Before the fix, each side took the peer's next packet for a move to a new address: "direct",
  // then "moved" to the mapped form of the same address, and a needless validation.
  const { gateway, wall, a, b } = await walledPeers({}, { host: "::" });
  const [ab, ba] = await Promise.all([a.node.connectVia(a.toGateway, b.node.publicKey), b.node.accept()]);
  expect(ab.path).toBe("relayed");
  const kinds = async (connection: typeof ab, into: string[]) => {
    for await (const change of connection.addressChanges()) into.push(change.kind);
  };
  const atA: string[] = [];
  const atB: string[] = [];
  void kinds(ab, atA);
  void kinds(ba!, atB);
  const { sent, received } = await streamDigests(ab, ba!, 2 * 1024 * 1024, async () => {
    await new Promise((resolve) => setTimeout(resolve, 200)); // data flows over the relay meanwhile
    wall.closed = false;
    await expect.poll(() => ab.path === "direct" && ba!.path === "direct", { timeout: 2 * PROBE_INTERVAL_MS + 1000 }).toBe(true);
  });
  expect(received).toBe(sent);
  for (let i = 0; i < 20; i++) { // traffic both ways on the direct path, over a few probe intervals' worth of packets
    await ab.send(new Uint8Array(100));
    await ba!.recv();
    await ba!.send(new Uint8Array(100));
    await ab.recv();
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Each side either answered a probe ("direct"), or followed the peer's move ("moved"), validated by
  // its challenge or by its own probe's answer coming first ("validated" or "direct"); then nothing.
  for (const seen of [atA, atB]) expect([["direct"], ["moved", "validated"], ["moved", "direct"]]).toContainEqual(seen);
  expect(ab.remoteAddress.port).toBe(b.node.address.port);
  expect(ba!.remoteAddress.port).toBe(a.node.address.port);
  expect(gateway.stats().datagramsRelayed).toBeGreaterThan(0);
}, 30_000);
