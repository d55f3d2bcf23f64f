// Loss in the kernel's forwarding path (nftables `numgen random`, on A's NAT, both ways: so each
// direction loses exactly that share), from before the peers open: the handshakes, the data and
// the acknowledgements all suffer it. The stream must arrive intact.
import { expect, it } from "vitest";
import type { Bed } from "./support/bed.ts";
import { CONE, describeNetns, figure, mibPerSecond, MiB, ms, natPair, simultaneousOpen, useBed } from "./support/scenario.ts";

async function streamThroughLoss(bed: () => Bed, percent: number, bytes: number): Promise<void> {
  const pair = await natPair(bed(), CONE, CONE);
  await pair.natA.setLoss({ outbound: percent, inbound: percent });
  const opened = await simultaneousOpen(pair);
  const [written, read] = await Promise.all([pair.a.writeStream(opened.ab, bytes, 40_000), pair.b.readStream(opened.ba, 40_000)]);
  expect(read.bytes).toBe(bytes);
  expect(read.sha256).toBe(written.sha256);
  const { delivery } = (await pair.a.info(opened.ab)).connectionStats!;
  figure(`${percent}% loss each way`,
    `${bytes / MiB} MiB intact at ${mibPerSecond(bytes, written.ms)} (${ms(written.ms)}), connected in ${ms(opened.connectMs)}; ` +
    `sender: ${delivery.packetsSent} packets, ${delivery.packetsLost} declared lost, ${delivery.retransmissionTimeouts} RTOs, ${delivery.tailLossProbes} tail-loss probes, RTT ${ms(delivery.rttMs)}`);
}

describeNetns("5% loss each way", () => {
  const bed = useBed();
  it("2 MiB arrive intact", () => streamThroughLoss(bed, 5, 2 * MiB), 50_000);
});

describeNetns("20% loss each way", () => {
  const bed = useBed();
  it("128 KiB arrive intact", () => streamThroughLoss(bed, 20, MiB / 8), 50_000);
});
