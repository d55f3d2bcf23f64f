// Path MTU discovery (reliable/path-mtu.ts) in virtual time, over a seeded network whose path drops
// datagrams over a size: the search finds what the path carries, falls back when it narrows, its
// probes' loss costs no window and no data, and whatever the sizes do, data arrives byte-identical
// and in order.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { Connection, Transport, TransportOptions } from "sluice";
import type { TransportSeams } from "sluice/internal";
import { SimNetwork, type LinkOptions } from "./support/sim-network.ts";
import { mulberry32 } from "./support/random.ts";
import { bindTest, closeAll, connectedPair, filteredSocket, publicBinder, streamDigests } from "./support/transports.ts";
import { caught, expectCoded } from "./support/errors.ts";
import type { ReliabilityOptions } from "../src/reliable/options.ts";

function sha256(parts: Iterable<Uint8Array>): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

function source(bytes: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = Math.floor(random() * 256);
  return data;
}

/** A 10 ms, 400 Mbit/s path with a drop-tail queue: what the transfers below cross. */
const LINK: LinkOptions = { delayMs: 10, bytesPerMs: 50_000, queueBytes: 256 * 1024 };
const MIB = 2 ** 20;

describe("path MTU discovery in virtual time", () => {
  it("reaches the 1472-byte ceiling on a clean path: a stream arrives byte-identical in fewer packets than at 1200", () => {
    const data = source(4 * MIB, 1);
    const packets: Record<string, number> = {};
    for (const [name, options] of [["fixed", { maxDatagramBytes: 1200 }], ["discovery", {}]] as Array<[string, ReliabilityOptions]>) {
      const net = new SimNetwork(11, LINK, options);
      const { done, received } = net.stream(data, 600_000);
      expect(done).toBe(true);
      expect(sha256(received)).toBe(sha256([data]));
      packets[name] = net.sessions[0].stats().packetsSent;
      const stats = net.sessions[0].stats();
      expect(stats.pathMtuBytes).toBe(name === "fixed" ? 1200 : 1472);
      // Full: a data frame cut short by the packet's room ends up to 7 bytes sooner (aligned for the receiver's copy).
      if (name === "fixed") expect(net.links[0].largestDelivered).toBeGreaterThanOrEqual(1193);
      if (name === "fixed") expect(net.links[0].largestDelivered).toBeLessThanOrEqual(1200);
      else expect(net.links[0].largestDelivered).toBe(1472); // the probes are padded to the size tried
      if (name === "discovery") expect(stats.mtuProbesLost).toBe(0);
      else expect(stats.mtuProbesSent).toBe(0);
    }
    // 1443 bytes of stream data a packet rather than 1171: about 19% fewer packets.
    expect(packets.discovery! / packets.fixed!).toBeLessThan(0.85);
  });

  it.each([1350, 1300, 1250, 1201])("a path that drops datagrams over %i: settles at the largest size ≤ it (within 20 bytes), nothing lost, the window intact", (limit) => {
    const net = new SimNetwork(limit, { ...LINK, maxDatagramBytes: limit });
    const data = source(2 * MIB, limit);
    const { done, received } = net.stream(data, 600_000);
    expect(done).toBe(true);
    expect(sha256(received)).toBe(sha256([data]));
    net.run(() => false, net.now + 10_000); // idle: the search goes on (a lost probe is found by the tail-loss probe's ACK)
    const stats = net.sessions[0].stats();
    expect(stats.pathMtuBytes).toBeLessThanOrEqual(limit);
    expect(stats.pathMtuBytes).toBeGreaterThanOrEqual(Math.max(1200, limit - 20));
    expect(stats.mtuProbesLost).toBeGreaterThanOrEqual(3); // the ceiling, three times, at least
    expect(stats.mtuBlackHoles).toBe(0);
    // Only probes were dropped, and no data packet was lost: the window was never cut for them.
    expect(net.links[0].oversizeDrops).toBe(stats.mtuProbesLost);
    expect(stats.packetsLost).toBe(stats.mtuProbesLost);
    expect(stats.retransmissionTimeouts).toBe(0);
    expect(stats.congestionWindowBytes).toBeGreaterThan(64 * 1024);
  });

  it("a black hole: the path narrows from 1472 to 1300 mid-transfer; back to 1200 within a second, data intact and in order, then ≤ 1300 found again after the cooldown", () => {
    const net = new SimNetwork(7, LINK);
    const [a] = net.sessions;
    const data = source(8 * MIB, 7);
    let narrowedAt = -1;
    let fellBackAt = -1;
    const { done, received } = net.stream(data, 600_000, () => {
      if (narrowedAt < 0 && a.stats().pathMtuBytes === 1472 && a.stats().bytesInFlight > 64 * 1024) {
        narrowedAt = net.now;
        net.links[0].maxDatagramBytes = 1300;
      }
      if (narrowedAt >= 0 && fellBackAt < 0 && a.stats().pathMtuBytes === 1200) fellBackAt = net.now;
    });
    expect(done).toBe(true);
    expect(sha256(received)).toBe(sha256([data]));
    expect(narrowedAt).toBeGreaterThan(0);
    expect(fellBackAt - narrowedAt).toBeGreaterThan(0);
    expect(fellBackAt - narrowedAt).toBeLessThan(1000); // a tail-loss probe and one retransmission timeout (200 ms floor)
    expect(a.stats().mtuBlackHoles).toBe(1);
    // Idle now; the search runs again after the 60 s cooldown and finds what the path carries.
    net.run(() => a.stats().mtuProbesSent > 0 && a.stats().pathMtuBytes > 1200 && a.stats().pathMtuBytes <= 1300 && net.now > fellBackAt + 60_000 + 1000, fellBackAt + 120_000);
    expect(net.now).toBeGreaterThanOrEqual(fellBackAt + 60_000);
    expect(a.stats().pathMtuBytes).toBeGreaterThan(1280);
    expect(a.stats().pathMtuBytes).toBeLessThanOrEqual(1300);
    expect(a.state).toBe("open");
  });

  it("a path that widens is found by the raise timer: 1300 at first, 1472 ten minutes after the path grew", () => {
    const net = new SimNetwork(3, { ...LINK, maxDatagramBytes: 1300 });
    const [a] = net.sessions;
    net.run(() => false, 60_000);
    expect(a.stats().pathMtuBytes).toBeLessThanOrEqual(1300);
    net.links[0].maxDatagramBytes = Infinity;
    net.run(() => a.stats().pathMtuBytes === 1472, 700_000);
    expect(a.stats().pathMtuBytes).toBe(1472);
    expect(net.now).toBeGreaterThan(600_000); // not before the raise timer
  });

  it("maxDatagramBytes: 1200 keeps every datagram at 1200 or less, probes none", () => {
    const net = new SimNetwork(5, LINK, { maxDatagramBytes: 1200 });
    const data = source(MIB, 5);
    const { done, received } = net.stream(data, 600_000);
    expect(done).toBe(true);
    expect(sha256(received)).toBe(sha256([data]));
    expect(net.links[0].largestDelivered).toBeLessThanOrEqual(1200);
    expect(net.links[0].largestDelivered).toBeGreaterThanOrEqual(1193); // full, to within the data's alignment
    expect(net.links[1].largestDelivered).toBeLessThanOrEqual(1200);
    expect(net.sessions[0].stats().mtuProbesSent).toBe(0);
    expect(net.sessions[1].stats().mtuProbesSent).toBe(0);
  });

  it("restartPathMtu (a new path) goes back to 1200 at once, and 1200 as the ceiling ends the search", () => {
    const net = new SimNetwork(9, LINK);
    const [a] = net.sessions;
    net.run(() => a.stats().pathMtuBytes === 1472, 10_000);
    a.restartPathMtu(1200);
    expect(a.stats().pathMtuBytes).toBe(1200);
    const sent = a.stats().mtuProbesSent;
    net.run(() => false, 30_000);
    expect(a.stats().mtuProbesSent).toBe(sent);
    a.restartPathMtu(1400);
    net.run(() => a.stats().pathMtuBytes === 1400, 40_000);
    expect(a.stats().pathMtuBytes).toBe(1400);
  });

  it("seeded property: random path MTUs that change mid-transfer, with loss, duplication and reordering: streams and messages arrive byte-identical, in order", () => {
    let blackHoles = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const random = mulberry32(seed * 7919);
      const limit = () => 1200 + Math.floor(random() * 300);
      const link: LinkOptions = { delayMs: 2 + random() * 8, loss: random() * 0.05, duplicate: random() * 0.05, jitterMs: random() * 4, maxDatagramBytes: limit() };
      const net = new SimNetwork(seed, link, {}, { ...link, maxDatagramBytes: limit() });
      const [a, b] = net.sessions;
      const data = source(256 * 1024, seed);
      const messages = Array.from({ length: 40 }, (_, i) => source(Math.floor(random() * 4000), seed * 100 + i));
      const got: Uint8Array[] = [];
      let next = 0;
      let changes = 0;
      const { done, received } = net.stream(data, 600_000, () => {
        // The path changes size now and then: wider, narrower, or a black hole at once.
        if (random() < 0.01 && changes < 8) {
          changes++;
          net.links[Math.floor(random() * 2)]!.maxDatagramBytes = random() < 0.2 ? Infinity : limit();
        }
        while (next < messages.length && a.writable) a.sendMessage(messages[next++]!);
        for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) got.push(m);
      });
      expect(done, `seed ${seed}`).toBe(true);
      net.run(() => got.length === messages.length, net.now + 600_000, () => {
        for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) got.push(m);
      });
      expect(sha256(received), `seed ${seed}`).toBe(sha256([data]));
      expect(got.length, `seed ${seed}`).toBe(messages.length);
      got.forEach((m, i) => expect(Buffer.from(m).equals(Buffer.from(messages[i]!)), `seed ${seed} message ${i}`).toBe(true));
      expect(b.stats().streamErrors).toBe(0);
      blackHoles += a.stats().mtuBlackHoles;
    }
    expect(blackHoles).toBeGreaterThan(0); // some paths narrowed under the data: the fall-back was exercised
  });
});

describe("path MTU discovery over real sockets on 127.0.0.1", () => {
  const open: Transport[] = [];
  afterEach(() => closeAll(...open.splice(0)));
  const bindSeamed = async (options: TransportOptions & TransportSeams) => {
    const transport = await bindTest(options);
    open.push(transport);
    return transport;
  };

  /** Waits (polling every 20 ms, up to 10 s) until `settled(pathMtuBytes)` holds for `connection`; answers its pathMtuBytes then. */
  async function settledMtu(connection: Connection, settled: (bytes: number) => boolean): Promise<number> {
    for (let waited = 0; waited < 10_000; waited += 20) {
      const { pathMtuBytes } = connection.stats().delivery;
      if (settled(pathMtuBytes)) return pathMtuBytes;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return connection.stats().delivery.pathMtuBytes;
  }

  it("nothing dropped: both ends reach the 1472-byte ceiling (the public entry, default options)", async () => {
    const { atJoiner, atGateway } = await connectedPair(publicBinder(open));
    const { sent, received } = await streamDigests(atJoiner, atGateway, 2 ** 20);
    expect(received).toBe(sent);
    expect(await settledMtu(atJoiner, (bytes) => bytes === 1472)).toBe(1472);
    expect(await settledMtu(atGateway, (bytes) => bytes === 1472)).toBe(1472);
    expect(atJoiner.stats().delivery.mtuProbesLost).toBe(0);
  });

  it("over IPv6 (::1) the ceiling is 20 bytes less: 1452; a dual-stack gateway's IPv4 peer (::ffff:127.0.0.1) gets 1472", async () => {
    const bind = publicBinder(open);
    const gateway = await bind({ gateway: true, host: "::1" });
    const joiner = await bind({ host: "::1" });
    const [toGateway, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
    expect(await settledMtu(toGateway, (bytes) => bytes === 1452)).toBe(1452);
    expect(await settledMtu(atGateway!, (bytes) => bytes === 1452)).toBe(1452);
    const dual = await bind({ gateway: true, host: "::" });
    const v4 = await bind({ host: "127.0.0.1" });
    const [, atDual] = await Promise.all([v4.connect({ host: "127.0.0.1", port: dual.address.port }, dual.publicKey), dual.accept()]);
    expect(atDual!.remoteAddress.host).toBe("::ffff:127.0.0.1");
    expect(await settledMtu(atDual!, (bytes) => bytes === 1472)).toBe(1472);
  });

  it("a socket that drops datagrams over 1300 both ways: a stream arrives intact, and the search settles at 1280-1300", async () => {
    const seen: Uint8Array[] = [];
    const narrow = () => filteredSocket((datagram) => datagram.length <= 1300, seen);
    const { atJoiner, atGateway } = await connectedPair(bindSeamed, { socket: narrow() }, { socket: narrow() });
    const { sent, received } = await streamDigests(atJoiner, atGateway, 2 ** 20);
    expect(received).toBe(sent);
    for (const end of [atJoiner, atGateway]) {
      const bytes = await settledMtu(end, (at) => at > 1280);
      expect(bytes).toBeGreaterThan(1280);
      expect(bytes).toBeLessThanOrEqual(1300);
      const { mtuProbesLost, mtuBlackHoles } = end.stats().delivery;
      expect(mtuProbesLost).toBeGreaterThanOrEqual(3);
      expect(mtuBlackHoles).toBe(0);
    }
    expect(seen.some((datagram) => datagram.length > 1300)).toBe(true); // probes were tried, and dropped
  });

  it("a black hole mid-transfer (the path narrows to 1300 after 1 MiB): the sender falls back to 1200 and the stream arrives intact", async () => {
    let narrowed = false;
    const seen: Uint8Array[] = [];
    const narrowing = () => filteredSocket((datagram) => !narrowed || datagram.length <= 1300, seen);
    const { atJoiner, atGateway } = await connectedPair(bindSeamed, { socket: narrowing() }, { socket: narrowing() });
    expect(await settledMtu(atJoiner, (bytes) => bytes === 1472)).toBe(1472);
    const total = 4 * 2 ** 20;
    const writer = atJoiner.openStream().getWriter();
    const chunk = source(64 * 1024, 7);
    const expected = createHash("sha256");
    const writing = (async () => {
      for (let at = 0; at < total; at += chunk.length) {
        await writer.write(chunk);
        expected.update(chunk);
      }
      await writer.close();
    })();
    const reader = (await atGateway.acceptStream())!.getReader();
    const hash = createHash("sha256");
    let received = 0;
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      hash.update(read.value);
      received += read.value.length;
      if (received >= 2 ** 20) narrowed = true;
    }
    await writing;
    expect(received).toBe(total);
    expect(hash.digest("hex")).toBe(expected.digest("hex"));
    const { pathMtuBytes, mtuBlackHoles } = atJoiner.stats().delivery;
    expect(mtuBlackHoles).toBeGreaterThanOrEqual(1);
    expect(pathMtuBytes).toBe(1200); // searched again only after the 60 s cooldown
    expect(seen.some((datagram) => datagram.length === 1472)).toBe(true);
  }, 30_000);

  it("reliability.maxDatagramBytes outside 1200..1500 or not an integer is a RangeError naming the option", async () => {
    const bind = publicBinder(open);
    for (const bad of [1199, 1501, 1300.5, Number.NaN]) {
      expectCoded(await caught(() => bind({ reliability: { maxDatagramBytes: bad } })), RangeError, "ERR_OUT_OF_RANGE",
        /The value of "options\.reliability\.maxDatagramBytes" is out of range. It must be an integer from 1200 to 1500/);
    }
  });

  it("reliability.maxDatagramBytes: 1200 keeps every datagram either way at 1200 or less", async () => {
    const seen: Uint8Array[] = [];
    const options = { socket: filteredSocket(() => true, seen), reliability: { maxDatagramBytes: 1200 } };
    const { atJoiner, atGateway } = await connectedPair(bindSeamed, options, options);
    const { sent, received } = await streamDigests(atJoiner, atGateway, 2 ** 20);
    expect(received).toBe(sent);
    const largest = Math.max(...seen.map((datagram) => datagram.length));
    expect(largest).toBeLessThanOrEqual(1200);
    expect(largest).toBeGreaterThanOrEqual(1193); // full, to within the data's alignment
    expect(atJoiner.stats().delivery.pathMtuBytes).toBe(1200);
    expect(atJoiner.stats().delivery.mtuProbesSent).toBe(0);
  });
});
