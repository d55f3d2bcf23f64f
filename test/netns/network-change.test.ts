// A peer changes networks mid-transfer, as a laptop leaving one Wi-Fi for another: its host's link
// to the LAN behind NAT A is removed and a new one plugged into the LAN behind NAT C, so its public
// address changes, host and port. It holds a direct connection the rendezvous made with a peer
// behind another NAT (address-and-port filters, Linux's own), and its connection to the gateway.
// The direct path is cut both ways (the peer's NAT admits only NAT A's address); the moved side's
// silence makes it ask the gateway for the peer (a re-punch), the request shows the gateway its new
// address (its connection there follows, validated), and the introduction makes the peer punch it.
// Nothing is lost or reordered (SHA-256), no new handshake replaces either connection, and the
// gateway tells A its new address (transport.externalAddress).
import { expect, it } from "vitest";
import type { Address } from "sluice";
import type { Bed } from "./support/bed.ts";
import type { Peer } from "./support/peer.ts";
import { CONE, describeNetns, figure, introduce, MiB, ms, natPair, show, useBed } from "./support/scenario.ts";

const STREAM_BYTES = 16 * MiB;
/** The move starts once the reader has this much (the transfer runs at ~25 MiB/s on the bed). */
const MOVE_AFTER_BYTES = 1 * MiB;

/** Both ends of a connection to the gateway: the peer's number for it, and the gateway's. */
async function register(peer: Peer, gateway: Peer, gatewayAddress: Address) {
  const [joined, accepted] = await Promise.all([peer.connect(gatewayAddress, gateway.publicKey), gateway.accept()]);
  return { mine: joined.connection, gateways: accepted.connection };
}

/** `peer`'s connection `connection` moved to `host` (any port) and validated it: both events. */
async function followed(peer: Peer, connection: number, host: string, boundMs: number) {
  const isChange = (kind: string) => (e: { event: string; kind?: string; connection: number; address?: Address }) =>
    e.event === "address" && e.kind === kind && e.connection === connection && e.address?.host === host;
  const moved = await peer.event(isChange("moved"), boundMs, `the move to ${host}`);
  const validated = await peer.event(isChange("validated"), boundMs, `the validation of ${host}`);
  expect(validated.at).toBeGreaterThanOrEqual(moved.at);
  return { moved, validated };
}

/**
 * A and B behind cone NATs, introduced by the gateway; a stream between them; once the reader has
 * MOVE_AFTER_BYTES, A's host moves to NAT C's LAN. `moving` says whether A writes or reads.
 */
async function moveMidTransfer(bed: Bed, moving: "sender" | "receiver", boundMs: number): Promise<void> {
  const pair = await natPair(bed, CONE, CONE);
  const natC = await bed.nat("natC", pair.internet, CONE);
  const { a, b, gateway, gatewayAddress } = pair;
  const aAtGateway = await register(a, gateway, gatewayAddress);
  await register(b, gateway, gatewayAddress);
  const { ab, ba, asked } = await introduce(a, aAtGateway.mine, b);
  expect(asked.path).toBe("direct");
  const handshakesBefore = await Promise.all([a.info(), b.info()]).then((infos) => infos.map((info) => info.stats.handshakesCompleted));

  const [writer, writerConnection, reader, readerConnection] = moving === "sender" ? [a, ab, b, ba] as const : [b, ba, a, ab] as const;
  const writing = writer.writeStream(writerConnection, STREAM_BYTES, boundMs + 20_000);
  const reading = reader.readStream(readerConnection, boundMs + 20_000, 256 * 1024);
  await reader.event((e) => e.event === "progress" && e.bytes! >= MOVE_AFTER_BYTES, 10_000, `${MOVE_AFTER_BYTES} bytes read`);
  const { cutAt, liveAt } = await bed.move(pair.hostA, natC.lan);
  const [written, read] = await Promise.all([writing, reading]);
  expect(read.bytes).toBe(STREAM_BYTES);
  expect(read.sha256).toBe(written.sha256); // nothing lost, reordered or duplicated across the move
  expect(read.lastAt, "the stream ended before A's new network was up").toBeGreaterThan(liveAt);

  // B's connection and the gateway's follow A to NAT C's address, validated.
  const direct = await followed(b, ba, natC.wan, boundMs);
  const atGateway = await followed(gateway, aAtGateway.gateways, natC.wan, boundMs);
  expect((await b.info(ba)).remoteAddress?.host).toBe(natC.wan);
  expect((await gateway.info(aAtGateway.gateways)).remoteAddress?.host).toBe(natC.wan);
  const handshakesAfter = await Promise.all([a.info(), b.info()]).then((infos) => infos.map((info) => info.stats.handshakesCompleted));
  expect(handshakesAfter, "a new handshake replaced a connection").toEqual(handshakesBefore);
  // Both of A's connections still carry data both ways: the gateway's answers a connectVia()'s PING
  // check (the open connection to B is the answer), and a message each way on the direct one.
  await a.connectVia(aAtGateway.mine, b.publicKey);
  await Promise.all([a.send(ab, 1, 64), b.recv(ba, 1, 5000)]);
  await Promise.all([b.send(ba, 1, 64), a.recv(ab, 1, 5000)]);

  // Data flowed again when the pause that spans the new network's arrival ended.
  const pause = read.pauses.find((gap) => gap.endedAt - gap.ms <= liveAt && gap.endedAt >= liveAt);
  const resumedAt = pause?.endedAt ?? liveAt;
  expect(resumedAt - cutAt).toBeLessThan(boundMs);
  // A learns its new address from the gateway, which tells it once its connection validated it: what
  // A's externalAddress says is what a peer elsewhere must connect() to.
  const gatewayView = (await gateway.info(aAtGateway.gateways)).remoteAddress;
  await expect.poll(async () => (await a.info()).externalAddress, { timeout: 2000 }).toEqual(gatewayView);
  expect((await a.info(aAtGateway.mine)).observedAddress).toEqual(gatewayView);
  const externalAddress = (await a.info()).externalAddress;
  figure(`the ${moving} changes networks mid-transfer`,
    `no link for ${ms(liveAt - cutAt)}; data flowed again ${ms(resumedAt - cutAt)} after the cut; B's connection moved to ${show(direct.moved.address)} ` +
    `${ms(direct.moved.at - cutAt)} after it (validated ${ms(direct.validated.at - direct.moved.at)} later), the gateway's ${ms(atGateway.moved.at - cutAt)} after it; ` +
    `${STREAM_BYTES / MiB} MiB intact in ${ms(written.ms)}; A's externalAddress afterwards: ${show(externalAddress)}`);
}

describeNetns("a peer that changed networks, and a host on its new LAN (a NAT that does not hairpin)", () => {
  const bed = useBed();

  /**
   * A's LOCAL_ADDRESSES, sent once when it registered, still name its old LAN: the host's own local
   * addresses, which A is told and tries, are the rung that opens (each side tries the other's).
   */
  it("idle, it learns its new address from its next keep-alive; a host on its new LAN connects to it over the LAN, not through the relay", async () => {
    const pair = await natPair(bed(), CONE, CONE);
    const natC = await bed().nat("natC", pair.internet, CONE);
    const c = bed().peer(await bed().host("c", natC.lan));
    await c.bind();
    const { a, gateway, gatewayAddress } = pair;
    const aAtGateway = await register(a, gateway, gatewayAddress);
    const cAtGateway = await register(c, gateway, gatewayAddress);
    // Idle, A moves behind NAT C: its next keep-alive (within keepAliveMs) shows the gateway where it is now.
    const { host: movedA, cutAt } = await bed().move(pair.hostA, natC.lan);
    await expect.poll(async () => (await a.info()).externalAddress?.host, { timeout: 10_000, interval: 100 }).toBe(natC.wan);
    const learnedAt = performance.timeOrigin + performance.now();
    // Both at NAT C's address to the gateway, which does not hairpin: only their LAN joins them.
    const [asked] = await Promise.all([c.connectVia(cAtGateway.mine, a.publicKey), a.accept()]);
    expect(asked.path).toBe("direct");
    expect(asked.remoteAddress.host).toBe(movedA.address);
    expect((await gateway.info(aAtGateway.gateways)).remoteAddress?.host).toBe(natC.wan);
    figure("a peer that changed networks, and a host on its new LAN", `A knew its new address ${ms(learnedAt - cutAt)} after the move (an idle keep-alive); ` +
      `C connected to it over the LAN at ${show(asked.remoteAddress)} in ${ms(asked.ms)}`);
  }, 60_000);
});

describeNetns("the sender changes networks mid-transfer (a new NAT: new public host and port)", () => {
  const bed = useBed();
  /** The sender hears no acknowledgement: after REPUNCH_AFTER_MS (1 s) it asks the gateway; slack for a loaded machine. */
  it("its direct connection and its gateway connection follow it; 16 MiB arrive intact", () => moveMidTransfer(bed(), "sender", 4000), 60_000);
});

describeNetns("the receiver changes networks mid-transfer (a new NAT: new public host and port)", () => {
  const bed = useBed();
  /**
   * The receiver is silent once something of its own goes unacknowledged for REPUNCH_AFTER_MS: a
   * credit in flight when its link went (~1 s, as the sender's), else the PING it sends when a
   * transfer stalls for 3 RTOs (~2 s). Before that PING, it waited for its keep-alive (5 s after it
   * last heard from the sender: ~5-6 s, 2 runs in 14); the sender's own re-punches ask the gateway
   * meanwhile, which still sees the receiver at its old address.
   */
  it("its direct connection and its gateway connection follow it; 16 MiB arrive intact", () => moveMidTransfer(bed(), "receiver", 4000), 60_000);
});
