// A NAT rebinding on a direct connection the rendezvous made, behind Linux's own NAT: it filters by
// address and port (as most home routers do), so once one side's NAT gives it a new port, the other
// NAT admits only the old one and the old one leads nowhere: the path is cut both ways, and following
// packets (remap.test.ts, full cone) cannot mend it. The silent side asks the gateway for the peer
// again (a re-punch): its request shows the gateway its new port, the introduction shows the peer,
// and a punch there opens the NATs; the connection moves, proven both ways, losing nothing.
import { expect, it } from "vitest";
import type { Address } from "sluice";
import type { Bed } from "./support/bed.ts";
import type { Peer } from "./support/peer.ts";
import { CONE, describeNetns, figure, MiB, ms, natPair, show, streamAcrossRemap, useBed } from "./support/scenario.ts";

const STREAM_BYTES = 8 * MiB;
/** The rebinding starts once the reader has this much (the transfer runs at ~25 MiB/s on the bed). */
const REBIND_AFTER_BYTES = 1 * MiB;

/** A and B, each behind a cone NAT, connected to the gateway and to each other through it (connectVia). */
async function introducedPair(bed: Bed) {
  const pair = await natPair(bed, CONE, CONE);
  const { a, b, gateway, gatewayAddress } = pair;
  const join = async (peer: Peer) => (await Promise.all([peer.connect(gatewayAddress, gateway.publicKey), gateway.accept()]))[0].connection;
  const aToGateway = await join(a);
  await join(b);
  const [asked, accepted] = await Promise.all([a.connectVia(aToGateway, b.publicKey), b.accept()]);
  expect(asked.path).toBe("direct");
  return { ...pair, ab: asked.connection, ba: accepted.connection };
}

/** Handshakes A and B completed so far: a re-punch mends the connection, no new one replaces it. */
const handshakesCompleted = async (a: Peer, b: Peer): Promise<number[]> =>
  (await Promise.all([a.info(), b.info()])).map((info) => info.stats.handshakesCompleted);

/** `peer`'s connection `connection` moved to `address` and validated the move; answers when each was seen. */
async function followed(peer: Peer, connection: number, address: Address, boundMs: number) {
  const isChange = (kind: string) => (e: { event: string; kind?: string; connection: number; address?: Address }) =>
    e.event === "address" && e.kind === kind && e.connection === connection && e.address?.port === address.port;
  const moved = await peer.event(isChange("moved"), boundMs, "the move to the new port");
  const validated = await peer.event(isChange("validated"), boundMs, "the move's validation");
  expect(moved.address).toEqual(address);
  expect(validated.at).toBeGreaterThanOrEqual(moved.at);
  expect((await peer.info(connection)).remoteAddress).toEqual(address);
  return { moved, validated };
}

/**
 * A streams 8 MiB to B; once B has 1 MiB, `rebound`'s NAT gives it a new port. The stream arrives
 * intact and in order (SHA-256), and the other side's connection follows it there.
 */
async function rebindMidTransfer(bed: () => Bed, rebound: "A" | "B", boundMs: number): Promise<void> {
  const pair = await introducedPair(bed());
  const { a, b, ab, ba } = pair;
  const [nat, host, follower, connection] = rebound === "A" ? [pair.natA, pair.hostA, b, ba] as const : [pair.natB, pair.hostB, a, ab] as const;
  const handshakesBefore = await handshakesCompleted(a, b);
  const { written, read, port, cutAt, liveAt } = await streamAcrossRemap(a, b, ab, ba, nat, host, { bytes: STREAM_BYTES, remapAfterBytes: REBIND_AFTER_BYTES, timeoutMs: boundMs + 10_000 });
  const { moved, validated } = await followed(follower, connection, { host: nat.wan, port: port! }, boundMs);
  expect(await handshakesCompleted(a, b), "a new handshake replaced the connection").toEqual(handshakesBefore);
  const pause = read.pauses.find((gap) => gap.endedAt - gap.ms <= liveAt && gap.endedAt >= liveAt);
  const resumedAt = pause?.endedAt ?? liveAt;
  expect(resumedAt - cutAt).toBeLessThan(boundMs);
  const who = rebound === "A" ? "sender" : "receiver";
  figure(`rebinding of the ${who}'s NAT (address-and-port filtering) mid-transfer`,
    `data flowed again ${ms(resumedAt - cutAt)} after the cut (cut for ${ms(liveAt - cutAt)}); the other side's connection ` +
    `moved to ${show(moved.address)} ${ms(moved.at - cutAt)} after it, validated ${ms(validated.at - moved.at)} later; ${STREAM_BYTES / MiB} MiB intact in ${ms(written.ms)}`);
}

describeNetns("a rebinding of the sender's NAT mid-transfer, behind address-and-port filters", () => {
  const bed = useBed();
  /**
   * The sender hears no acknowledgement: after REPUNCH_AFTER_MS (1 s) it asks the gateway, whose
   * introduction makes the receiver punch the new port; one more second is loaded-machine slack.
   */
  it("the receiver punches the sender's new port and follows it; 8 MiB arrive intact", () => rebindMidTransfer(bed, "A", 4000), 20_000);
});

describeNetns("a rebinding of the receiver's NAT mid-transfer, behind address-and-port filters", () => {
  const bed = useBed();
  /**
   * The receiver's new port reaches the gateway with its first request: it is silent too once a
   * credit of its own, or the PING it sends when the transfer stalls for 3 RTOs, goes unanswered for
   * REPUNCH_AFTER_MS (before that PING, only its keep-alive 5 s on did); the sender's connection
   * fails at 10 s (deadPeerTimeoutMs).
   */
  it("the sender punches the receiver's new port and follows it; 8 MiB arrive intact", () => rebindMidTransfer(bed, "B", 9000), 20_000);
});

describeNetns("a rebinding of an idle connection's NAT, behind address-and-port filters", () => {
  const bed = useBed();
  /** Both keep-alives (5 s) go unanswered; the rebound side's re-punch (1 s later) mends it; slack for a loaded machine. */
  const ARRIVAL_BOUND_MS = 9000;

  it("after a quiet period A's NAT rebinds; B's next message arrives, and B's connection follows A", async () => {
    const pair = await introducedPair(bed());
    const { a, b, ab, ba } = pair;
    await Promise.all([a.send(ab, 1, 64), b.recv(ba, 1)]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const handshakesBefore = await handshakesCompleted(a, b);
    const { port, cutAt } = await pair.natA.remap(pair.hostA);
    const [sent, received] = await Promise.all([b.send(ba, 1, 64), a.recv(ab, 1, ARRIVAL_BOUND_MS + 5000)]);
    const { moved } = await followed(b, ba, { host: pair.natA.wan, port: port! }, 1000);
    expect(received.firstAt - sent.startedAt).toBeLessThan(ARRIVAL_BOUND_MS);
    // The same connection, mended both ways: no new handshake replaced it (a peer whose PING went
    // unanswered takes the other for restarted and connects anew, unless the punch answers first).
    await Promise.all([a.send(ab, 1, 64), b.recv(ba, 1, 2000)]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await handshakesCompleted(a, b), "a new handshake replaced the connection").toEqual(handshakesBefore);
    figure("idle rebinding (address-and-port filtering)", `B's message arrived ${ms(received.firstAt - sent.startedAt)} after it was sent; ` +
      `B's connection moved to ${show(moved.address)} ${ms(moved.at - cutAt)} after the rebinding`);
  }, 20_000);
});
