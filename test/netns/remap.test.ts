// A NAT gives a peer a new external port while a connection is open (it lost the mapping and could
// not keep the port): the other side must follow the peer to its new address, validated by the
// packets' authentication, without losing data.
//
// Both NATs here filter endpoint-independently ("full cone"). Behind Linux's own address-and-port
// filter a remap cannot be survived by any protocol: the other NAT admits only the old port, and
// the other peer keeps sending to the old port, which now leads nowhere, until a rendezvous re-punches.
import { expect, it } from "vitest";
import type { Bed, Host, Nat } from "./support/bed.ts";
import type { Peer } from "./support/peer.ts";
import { describeNetns, figure, FULL_CONE, MiB, ms, natPair, show, simultaneousOpen, streamAcrossRemap, useBed } from "./support/scenario.ts";

const STREAM_BYTES = 8 * MiB;
/**
 * The remap starts once the reader has this much, so it is done (~30 ms: three nft/conntrack
 * commands) long before the transfer (~25 MiB/s over the bed's veths) is.
 */
const REMAP_AFTER_BYTES = 1 * MiB;

/**
 * A streams 8 MiB to B; once B has 1 MiB, `remapped` side's NAT gives it a new port. The stream
 * must arrive intact, and the other side's connection must move to the new address.
 */
async function remapMidTransfer(bed: () => Bed, remapped: "A" | "B"): Promise<void> {
  const pair = await natPair(bed(), FULL_CONE, FULL_CONE);
  const { a, b } = pair;
  const opened = await simultaneousOpen(pair);
  // The side that moves, its NAT and host; the side that must follow it, and its connection to it.
  const [nat, host, follower, connection]: [Nat, Host, Peer, number] =
    remapped === "A" ? [pair.natA, pair.hostA, b, opened.ba] : [pair.natB, pair.hostB, a, opened.ab];

  const { written, read, port, cutAt, liveAt } = await streamAcrossRemap(a, b, opened.ab, opened.ba, nat, host, { bytes: STREAM_BYTES, remapAfterBytes: REMAP_AFTER_BYTES, timeoutMs: 30_000 });

  const moved = await follower.event((e) => e.event === "address" && e.kind === "moved" && e.connection === connection, 5000, "address change");
  expect(moved.address).toEqual({ host: nat.wan, port });
  // Seen through the API: the move, then its validation (one round trip later), from the old port.
  const validated = await follower.event((e) => e.event === "address" && e.kind === "validated" && e.connection === connection, 5000, "address validated");
  expect(validated).toMatchObject({ address: { host: nat.wan, port }, previous: moved.previous });
  expect(validated.at).toBeGreaterThanOrEqual(moved.at);
  expect((await follower.info(connection)).remoteAddress).toEqual({ host: nat.wan, port });
  // The remap's pause: the gap in arrivals across the moment the new port went live. Part of it is
  // the cut itself (the bed's conntrack and nft commands, slow on a loaded machine); the rest is
  // Sluice's recovery. (Gaps of tens of ms happen anyway: five busy processes share two cores.)
  const pause = read.pauses.find((gap) => gap.endedAt - gap.ms <= liveAt && gap.endedAt >= liveAt);
  const who = remapped === "A" ? "sender" : "receiver";
  figure(`remap of the ${who}'s NAT mid-transfer`,
    `pause ${pause === undefined ? "under 10 ms" : ms(pause.ms)} (arrivals across the moment its new port ${show(moved.address)} went live); ` +
    `the ${who} was cut off for ${ms(liveAt - cutAt)}${pause === undefined ? "" : `, data flowed again ${ms(pause.endedAt - cutAt)} after the cut began`}, ` +
    `the other side's addressChanges() saw the move ${ms(moved.at - cutAt)} after it and its validation ${ms(validated.at - moved.at)} later; largest gap of the whole transfer ${ms(read.largestGap.ms)}; ` +
    `${STREAM_BYTES / MiB} MiB intact in ${ms(written.ms)}`);
}

describeNetns("a NAT remapping mid-transfer: the sender's NAT", () => {
  const bed = useBed();
  it("the receiver follows the sender to its new port; the stream arrives intact", () => remapMidTransfer(bed, "A"), 40_000);
});

describeNetns("a NAT remapping mid-transfer: the receiver's NAT", () => {
  const bed = useBed();
  it("the sender follows the receiver to its new port; the stream arrives intact", () => remapMidTransfer(bed, "B"), 40_000);
});

describeNetns("an idle remap", () => {
  const bed = useBed();
  /** Nothing is sent for this long before the NAT remaps. */
  const QUIET_MS = 500;
  /**
   * The peers ping after 1 s of quiet (the default, 5 s, made this test wait 5 s for what 1 s shows
   * as well): the keep-alive that reveals A's new address comes within that (plus timers).
   */
  const KEEP_ALIVE_MS = 1000;
  const ARRIVAL_BOUND_MS = 4_000;
  /**
   * After B moves to A's new address it challenges it (one round trip), then re-sends what is
   * outstanding at once: 2 RTT on these sub-millisecond links, plus a loaded machine's timer slack.
   */
  const AFTER_MOVE_MS = 100;

  it("after a quiet period A's NAT remaps; B's next message still arrives", async () => {
    const pair = await natPair(bed(), FULL_CONE, FULL_CONE, {}, { reliability: { keepAliveMs: KEEP_ALIVE_MS } });
    const { a, b } = pair;
    const opened = await simultaneousOpen(pair);
    await Promise.all([a.send(opened.ab, 1, 64), b.recv(opened.ba, 1)]);
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const { port } = await pair.natA.remap(pair.hostA);

    // B sends to A's old port (now leading nowhere) until A's keep-alive, from the new port, reveals
    // the new address to B; B's connection moves there, and its retransmission reaches A.
    const [sent, received] = await Promise.all([b.send(opened.ba, 1, 64), a.recv(opened.ab, 1, ARRIVAL_BOUND_MS + 5000)]);
    const arrivalMs = received.firstAt - sent.startedAt;
    const moved = await b.event((e) => e.event === "address" && e.kind === "moved" && e.connection === opened.ba, 1000, "address change");
    expect(moved.address).toEqual({ host: pair.natA.wan, port });
    expect(arrivalMs).toBeLessThan(ARRIVAL_BOUND_MS);
    // B does not wait out its retransmission backoff (0.2 + 0.4 + 0.8 + 1.6 + 3.2 s = 6.2 s before):
    // once the new address is validated, what is outstanding goes again at once.
    expect(received.firstAt - moved.at).toBeLessThan(AFTER_MOVE_MS);
    figure("idle remap", `B's message arrived after ${ms(arrivalMs)}, ${ms(received.firstAt - moved.at)} after A's keep-alive revealed its new address ${show(moved.address)} to B (${ms(moved.at - sent.startedAt)})`);
  }, ARRIVAL_BOUND_MS + 15_000);
});
