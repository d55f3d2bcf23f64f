// Every pair connects: the ladder of connectVia() through the kernel's NAT. Two hosts behind one NAT
// that does not hairpin meet on their LAN; two peers behind symmetric NATs meet through the gateway's
// relay and move to a direct path when the NATs relax, mid-transfer, losing nothing; a double NAT
// connects; a gateway that does not relay makes the connect fail naming each rung; a relayed pair
// over its budget is slowed while another pair on the same gateway is not.
import { expect, it } from "vitest";
import { PROBE_INTERVAL_MS, RELAY_AFTER_MS } from "sluice";
import type { Bed } from "./support/bed.ts";
import type { Peer, PeerOptions } from "./support/peer.ts";
import {
  checkStream, CONE, describeNetns, figure, FULL_CONE, introduce, joinGateway, mibPerSecond, MiB, ms, natPair, show, SYMMETRIC, useBed,
} from "./support/scenario.ts";

/** The gateway on the public segment at port 7000. */
async function gatewayOn(bed: Bed, internet: Awaited<ReturnType<Bed["internet"]>>, options: PeerOptions = {}) {
  const host = await bed.host("gateway", internet);
  const gateway = bed.peer(host);
  const bound = await gateway.bind({ port: 7000, gateway: true, ...options });
  return { gateway, gatewayAddress: { host: host.address, port: bound.address.port } };
}

describeNetns("two hosts behind one NAT that does not hairpin", () => {
  const bed = useBed();

  it("meet on their LAN (the local-address rung), and a stream arrives intact", async () => {
    const internet = await bed().internet();
    const { gateway, gatewayAddress } = await gatewayOn(bed(), internet);
    const nat = await bed().nat("nat", internet, CONE);
    const hostA = await bed().host("a", nat.lan);
    const hostB = await bed().host("b", nat.lan);
    const [a, b] = [bed().peer(hostA), bed().peer(hostB)];
    await Promise.all([a.bind(), b.bind()]);
    const aToGateway = await joinGateway(a, gateway, gatewayAddress);
    await joinGateway(b, gateway, gatewayAddress);
    const { ab, ba, asked } = await introduce(a, aToGateway, b);
    // The address the gateway sees B at is the NAT's, which B's neighbour cannot reach (no hairpin).
    expect(asked.remoteAddress).toEqual({ host: hostB.address, port: (await b.info()).address.port });
    expect(asked.path).toBe("direct");
    await checkStream(a, ab, b, ba);
    figure("same NAT, no hairpin", `connected over the LAN (${show(asked.remoteAddress)}) in ${ms(asked.ms)}; 1 MiB intact`);
  }, 30_000);
});

describeNetns("both peers behind symmetric NATs", () => {
  const bed = useBed();

  it(`connect through the gateway's relay, then, the NATs relaxed mid-transfer, move to a direct path within 2 probe intervals; 8 MiB intact`, async () => {
    // A relay budget of 2 MiB/s keeps the transfer going for seconds, so the move falls inside it.
    const pair = await natPair(bed(), SYMMETRIC, SYMMETRIC, { relay: { bytesPerSecond: 2 * MiB } });
    const { a, b, gateway, gatewayAddress } = pair;
    const aToGateway = await joinGateway(a, gateway, gatewayAddress);
    await joinGateway(b, gateway, gatewayAddress);
    const { ab, ba, asked, accepted } = await introduce(a, aToGateway, b);
    expect(asked.ms).toBeGreaterThanOrEqual(RELAY_AFTER_MS);
    expect(asked.path).toBe("relayed");
    expect(asked.remoteAddress).toMatchObject({ ...gatewayAddress, relay: expect.any(Number) });
    expect(accepted.path).toBe("relayed");

    const bytes = 8 * MiB;
    const writing = a.writeStream(ab, bytes, 40_000);
    const reading = b.readStream(ba, 40_000, 256 * 1024);
    await b.event((e) => e.event === "progress" && e.bytes! >= 512 * 1024, 10_000, "512 KiB read over the relay");
    await Promise.all([pair.natA.configure(FULL_CONE), pair.natB.configure(FULL_CONE)]);
    const relaxedAt = performance.timeOrigin + performance.now();
    // This side's probe answered ("direct"), or the peer's first and then this side's challenge ("validated").
    const direct = await a.event((e) => e.event === "address" && e.connection === ab && (e.kind === "direct" || e.kind === "validated") && e.address?.relay === undefined,
      10_000, "the move to a direct path");
    const [written, read] = await Promise.all([writing, reading]);
    expect(read.bytes).toBe(bytes);
    expect(read.sha256).toBe(written.sha256); // nothing lost, reordered or duplicated across the move
    expect(read.lastAt).toBeGreaterThan(direct.at); // the move happened mid-transfer
    const info = await a.info(ab);
    expect(info.path, JSON.stringify(a.events())).toBe("direct");
    expect(info.remoteAddress).toMatchObject({ host: pair.natB.wan });
    await expect.poll(async () => (await b.info(ba)).path, { timeout: 5000, message: JSON.stringify(b.events()) }).toBe("direct");
    const moveMs = direct.at - relaxedAt;
    figure("symmetric NATs: relayed, then direct", `connected relayed in ${ms(asked.ms)}; moved to ${show(direct.address)} (${direct.kind}) ${ms(moveMs)} after the NATs relaxed ` +
      `(bound ${2 * PROBE_INTERVAL_MS} ms); 8 MiB intact in ${ms(written.ms)}; gateway relayed ${(await gateway.info()).stats.datagramsRelayed} datagrams`);
    expect(moveMs).toBeLessThanOrEqual(2 * PROBE_INTERVAL_MS);
  }, 60_000);
});

describeNetns("a double NAT on one side (a NAT behind a NAT, as carriers do)", () => {
  const bed = useBed();

  it("connects (direct or relayed, reported), and a stream arrives intact", async () => {
    const internet = await bed().internet();
    const { gateway, gatewayAddress } = await gatewayOn(bed(), internet);
    const carrier = await bed().nat("carrier", internet, CONE);
    const home = await bed().nat("home", carrier.lan, CONE);
    const natB = await bed().nat("natB", internet, CONE);
    const [a, b] = [bed().peer(await bed().host("a", home.lan)), bed().peer(await bed().host("b", natB.lan))];
    await Promise.all([a.bind(), b.bind()]);
    const aToGateway = await joinGateway(a, gateway, gatewayAddress);
    await joinGateway(b, gateway, gatewayAddress);
    const { ab, ba, asked } = await introduce(a, aToGateway, b);
    expect(asked.remotePublicKey).toBe(b.publicKey);
    const tookMs = await checkStream(a, ab, b, ba);
    figure("double NAT", `connected ${asked.path} to ${show(asked.remoteAddress)} in ${ms(asked.ms)}; 1 MiB intact in ${ms(tookMs)}`);
  }, 30_000);
});

describeNetns("a gateway with relaying off, both peers behind symmetric NATs", () => {
  const bed = useBed();

  it("the connect fails after its deadline, naming every rung it tried", async () => {
    const pair = await natPair(bed(), SYMMETRIC, SYMMETRIC, { relay: { enabled: false } });
    const { a, b, gateway, gatewayAddress } = pair;
    const aToGateway = await joinGateway(a, gateway, gatewayAddress);
    const bToGateway = await joinGateway(b, gateway, gatewayAddress);
    const bSeenAt = (await b.info(bToGateway)).observedAddress!;
    // Past RELAY_AFTER_MS (1 s), when the relay rung is asked for, and not much more.
    const failed = await a.connectVia(aToGateway, b.publicKey, { deadlineMs: 1500 }).then(() => undefined, (error: Error) => error);
    expect(failed?.message).toMatch(/no path opened within 1500 ms/);
    expect(failed?.message).toContain(`not its local addresses ${pair.hostB.address}:`);
    expect(failed?.message).toContain(`the address the introducer sees it at, ${show(bSeenAt)} (no answer)`);
    expect(failed?.message).toMatch(/no relay \(the introducer offered none/);
    figure("relaying off", failed!.message.replace(/^.*?introduced/, "introduced").slice(0, 400));
  }, 30_000);
});

describeNetns("relay budgets: two relayed pairs on one gateway", () => {
  const bed = useBed();

  it("the pair over its budget is slowed (drops counted) while the other pair's transfer is not held back", async () => {
    const budget = 1 * MiB;
    const HEAVY_BYTES = 2 * MiB; // two seconds at the budget: long enough for the budget to bite
    const internet = await bed().internet();
    const { gateway, gatewayAddress } = await gatewayOn(bed(), internet, { acceptRamp: [], relay: { bytesPerSecond: budget } });
    const natA = await bed().nat("natA", internet, SYMMETRIC);
    const natB = await bed().nat("natB", internet, SYMMETRIC);
    const peers = [
      bed().peer(await bed().host("a", natA.lan)), bed().peer(await bed().host("c", natA.lan)),
      bed().peer(await bed().host("b", natB.lan)), bed().peer(await bed().host("d", natB.lan)),
    ];
    await Promise.all(peers.map((peer) => peer.bind()));
    const [a, c, b, d] = peers as [Peer, Peer, Peer, Peer];
    const toGateway: number[] = [];
    for (const peer of peers) toGateway.push(await joinGateway(peer, gateway, gatewayAddress));
    const heavy = await introduce(a, toGateway[0]!, b);
    const light = await introduce(c, toGateway[1]!, d);
    expect([heavy.asked.path, light.asked.path]).toEqual(["relayed", "relayed"]);
    const [heavyMs, lightMs] = await Promise.all([checkStream(a, heavy.ab, b, heavy.ba, HEAVY_BYTES), checkStream(c, light.ab, d, light.ba, 256 * 1024)]);
    const stats = (await gateway.info()).stats;
    expect(stats.drops.relayBudget).toBeGreaterThan(0);
    expect(HEAVY_BYTES / (heavyMs / 1000)).toBeLessThan(3 * budget);
    expect(lightMs).toBeLessThan(heavyMs / 2);
    figure("relay budgets", `pair over its ${budget / MiB} MiB/s budget: ${HEAVY_BYTES / MiB} MiB at ${mibPerSecond(HEAVY_BYTES, heavyMs)} (${stats.drops.relayBudget} datagrams dropped, counted); ` +
      `the other pair: 256 KiB in ${ms(lightMs)}`);
  }, 60_000);
});
