// The gateway restarts (killed, started again as itself: same key, same address) while two peers
// behind NATs hold a connection it made. It forgets every connection and relay: a relayed connection
// cannot go on through it, and fails at the dead-peer timeout; the peers register again and
// connectVia() works again. A direct connection the rendezvous made does not need the gateway: data
// keeps flowing through the restart, and once the peers registered again, the new gateway connection
// is the one a silent path asks to re-punch it.
import { expect, it } from "vitest";
import { DEFAULT_RELIABILITY, REPUNCH_AFTER_MS } from "sluice";
import type { Bed } from "./support/bed.ts";
import type { Peer, PeerOptions } from "./support/peer.ts";
import {
  checkStream, CONE, describeNetns, figure, introduce, joinGateway, MiB, ms, natPair, show, streamAcrossRemap, SYMMETRIC, useBed,
} from "./support/scenario.ts";

const now = () => performance.timeOrigin + performance.now();

type Pair = Awaited<ReturnType<typeof natPair>>;

/** Kills the gateway's process and starts a new one as the same node (same key, same port): answers it, and when it died. */
async function restartGateway(bed: Bed, pair: Pair, options: PeerOptions): Promise<{ gateway: Peer; killedAt: number; upAt: number }> {
  await pair.gateway.crash();
  const killedAt = now();
  const gateway = bed.peer(pair.gatewayHost);
  const bound = await gateway.bind({ port: pair.gatewayAddress.port, gateway: true, secretKey: pair.gatewaySecretKey, ...options });
  expect(bound.publicKey).toBe(pair.gateway.publicKey);
  return { gateway, killedAt, upAt: now() };
}

/** `peer`'s connection `connection` is over: its "closed" event (its error's code, if it failed). */
const closedEvent = (peer: Peer, connection: number, boundMs: number) =>
  peer.event((e) => e.event === "closed" && e.connection === connection, boundMs, `the end of connection ${connection}`);

/** How long a connection takes to notice the gateway forgot it: the dead-peer timeout, + a keep-alive if it was quiet, + slack for a loaded machine. */
const NOTICE_BOUND_MS = DEFAULT_RELIABILITY.deadPeerTimeoutMs + DEFAULT_RELIABILITY.keepAliveMs + 2000;

describeNetns("the gateway restarts while a relayed connection (symmetric NATs) transfers through it", () => {
  const bed = useBed();
  const gatewayOptions: PeerOptions = { relay: { bytesPerSecond: 2 * MiB } }; // 8 MiB take ~4 s: the restart falls inside

  it("both ends fail with ERR_SLUICE_PEER_UNREACHABLE within the dead-peer timeout; registered again, connectVia() relays again, 1 MiB intact", async () => {
    const pair = await natPair(bed(), SYMMETRIC, SYMMETRIC, gatewayOptions);
    const { a, b } = pair;
    const aToGateway = await joinGateway(a, pair.gateway, pair.gatewayAddress);
    const bToGateway = await joinGateway(b, pair.gateway, pair.gatewayAddress);
    const { ab, ba, asked } = await introduce(a, aToGateway, b);
    expect(asked.path).toBe("relayed");

    const writing = a.writeStream(ab, 8 * MiB, 40_000).then(() => undefined, (error: Error) => error);
    const reading = b.readStream(ba, 40_000, 256 * 1024).then(() => undefined, (error: Error) => error);
    await b.event((e) => e.event === "progress" && e.bytes! >= 512 * 1024, 10_000, "512 KiB read over the relay");
    const { gateway, killedAt, upAt } = await restartGateway(bed(), pair, gatewayOptions);

    // The new gateway knows neither the relay nor the peers' connections: what they send it is
    // dropped unanswered, and each end notices when nothing it sent is acknowledged for deadPeerTimeoutMs.
    const [aEnded, bEnded] = await Promise.all([closedEvent(a, ab, NOTICE_BOUND_MS), closedEvent(b, ba, NOTICE_BOUND_MS)]);
    expect([aEnded.code, bEnded.code]).toEqual(["ERR_SLUICE_PEER_UNREACHABLE", "ERR_SLUICE_PEER_UNREACHABLE"]);
    // The error says where to look: the relay, at the gateway's address.
    const relayNamed = `the path was the relay at ${pair.gatewayAddress.host}:${pair.gatewayAddress.port}`;
    expect(aEnded.message).toContain(relayNamed);
    expect(bEnded.message).toContain(relayNamed);
    const [writeFailed, readFailed] = await Promise.all([writing, reading]);
    expect(writeFailed?.message).toContain(relayNamed);
    expect(readFailed).toBeInstanceOf(Error);
    const readBeforeKill = Math.max(...b.events().filter((e) => e.event === "progress" && e.at <= killedAt).map((e) => e.bytes!));
    // Their gateway connections end the same way (a keep-alive unanswered, then the dead-peer timeout).
    const [aGatewayEnded, bGatewayEnded] = await Promise.all([closedEvent(a, aToGateway, NOTICE_BOUND_MS), closedEvent(b, bToGateway, NOTICE_BOUND_MS)]);
    expect([aGatewayEnded.code, bGatewayEnded.code]).toEqual(["ERR_SLUICE_PEER_UNREACHABLE", "ERR_SLUICE_PEER_UNREACHABLE"]);

    // Registered again, the rendezvous works again: a new relay, a new connection.
    const aToNewGateway = await joinGateway(a, gateway, pair.gatewayAddress);
    await joinGateway(b, gateway, pair.gatewayAddress);
    const again = await introduce(a, aToNewGateway, b);
    expect(again.asked.path).toBe("relayed");
    await checkStream(a, again.ab, b, again.ba);

    const noticed = (at: number) => ms(at - killedAt);
    figure("gateway restart under a relayed transfer", `"${aEnded.message}"; restarted in ${ms(upAt - killedAt)}; ${(readBeforeKill / 1024).toFixed(0)} KiB had arrived; the relayed connection failed ` +
      `(${aEnded.code}) ${noticed(aEnded.at)} (sender) and ${noticed(bEnded.at)} (receiver) after the kill; the gateway connections ${noticed(aGatewayEnded.at)} and ` +
      `${noticed(bGatewayEnded.at)}; registered again, connectVia() relayed in ${ms(again.asked.ms)}, 1 MiB intact`);
  }, 90_000);
});

describeNetns("the gateway restarts while a direct connection it introduced (cone NATs) transfers", () => {
  const bed = useBed();

  it("data keeps flowing through the restart and after the old gateway connections end; registered again, a NAT rebinding is re-punched through the new gateway", async () => {
    const pair = await natPair(bed(), CONE, CONE);
    const { a, b } = pair;
    const aToGateway = await joinGateway(a, pair.gateway, pair.gatewayAddress);
    const bToGateway = await joinGateway(b, pair.gateway, pair.gatewayAddress);
    const { ab, ba, asked } = await introduce(a, aToGateway, b);
    expect(asked.path).toBe("direct");
    const handshakesOf = async (peer: Peer) => (await peer.info()).stats.handshakesCompleted;

    // A long stream; the gateway dies and comes back once 1 MiB has arrived.
    const bytes = 48 * MiB;
    const writing = a.writeStream(ab, bytes, 40_000);
    const reading = b.readStream(ba, 40_000, 256 * 1024);
    await b.event((e) => e.event === "progress" && e.bytes! >= 1 * MiB, 10_000, "1 MiB read");
    const { gateway, killedAt, upAt } = await restartGateway(bed(), pair, {});
    const [written, read] = await Promise.all([writing, reading]);
    expect(read.bytes).toBe(bytes);
    expect(read.sha256).toBe(written.sha256);
    expect(read.lastAt, "the stream ended before the gateway was back").toBeGreaterThan(upAt);
    // Not a speed bound: a pause this long would mean the direct path waited on the gateway.
    expect(read.largestGap.ms).toBeLessThan(REPUNCH_AFTER_MS);

    // The peers' connections to the old gateway fail (nothing answers their keep-alives); the direct
    // connection is not theirs to take along.
    const [aGatewayEnded, bGatewayEnded] = await Promise.all([closedEvent(a, aToGateway, NOTICE_BOUND_MS), closedEvent(b, bToGateway, NOTICE_BOUND_MS)]);
    expect(aGatewayEnded.code).toBe("ERR_SLUICE_PEER_UNREACHABLE");
    await checkStream(a, ab, b, ba);
    expect(a.events().some((e) => e.event === "closed" && e.connection === ab)).toBe(false);

    // Registered again: connectVia() through the new gateway answers the open connection (its PING is
    // acknowledged), with no new handshake.
    const aToNewGateway = await joinGateway(a, gateway, pair.gatewayAddress);
    await joinGateway(b, gateway, pair.gatewayAddress);
    const handshakesBefore = await handshakesOf(a);
    const sameConnection = await a.connectVia(aToNewGateway, b.publicKey);
    expect(sameConnection.remoteAddress).toEqual((await a.info(ab)).remoteAddress);
    expect(await handshakesOf(a)).toBe(handshakesBefore);

    // A's NAT rebinds mid-transfer (address-and-port filtering cuts the path both ways): the silent
    // sender asks its introducer for B again. Its first introducer is gone; the new gateway, which
    // the peers registered with since, must be the one asked, or the connection dies at deadPeerTimeoutMs.
    const REPUNCH_BOUND_MS = 4000; // as rebinding.test.ts: REPUNCH_AFTER_MS, a round trip, and slack
    const remapped = await streamAcrossRemap(a, b, ab, ba, pair.natA, pair.hostA, { bytes: 8 * MiB, remapAfterBytes: 1 * MiB, timeoutMs: REPUNCH_BOUND_MS + 10_000 });
    const pause = remapped.read.pauses.find((gap) => gap.endedAt - gap.ms <= remapped.liveAt && gap.endedAt >= remapped.liveAt);
    const resumedAt = pause?.endedAt ?? remapped.liveAt;
    expect(resumedAt - remapped.cutAt).toBeLessThan(REPUNCH_BOUND_MS);
    expect(await handshakesOf(a), "a new handshake replaced the connection").toBe(handshakesBefore);

    figure("gateway restart under a direct transfer", `restarted in ${ms(upAt - killedAt)}; ${bytes / MiB} MiB intact, largest pause ${ms(read.largestGap.ms)}; ` +
      `the old gateway connections failed ${ms(aGatewayEnded.at - killedAt)} and ${ms(bGatewayEnded.at - killedAt)} after the kill, the direct one carried 1 MiB more; ` +
      `registered again, A's NAT rebound (new port ${remapped.port}): data flowed again ${ms(resumedAt - remapped.cutAt)} after the cut, to ${show({ host: pair.natA.wan, port: remapped.port! })}`);
  }, 90_000);
});
