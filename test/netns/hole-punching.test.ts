// Hole punching through the kernel's NAT: two peers behind NATs learn their mapped addresses from a
// gateway and open to each other by simultaneous open, then move messages and a stream.
import { expect, it } from "vitest";
import {
  CONE, describeNetns, figure, FULL_CONE, mibPerSecond, MiB, ms, natPair, show, simultaneousOpen, SYMMETRIC, useBed,
} from "./support/scenario.ts";

const MESSAGES = 1000;
const MESSAGE_BYTES = 200;
const STREAM_BYTES = 8 * MiB;

describeNetns("through two cone NATs (Linux masquerade)", () => {
  const bed = useBed();

  it("connects by simultaneous open; 1,000 ordered messages each way and an 8 MiB stream arrive intact", async () => {
    const pair = await natPair(bed(), CONE, CONE);
    const { a, b } = pair;
    const opened = await simultaneousOpen(pair);
    // Linux masquerade keeps a free source port: each peer is seen at its NAT's address, its own port.
    expect(opened.externalA).toEqual({ host: pair.natA.wan, port: (await a.info()).address.port });
    expect(opened.externalB).toEqual({ host: pair.natB.wan, port: (await b.info()).address.port });
    expect((await a.info(opened.ab)).remoteAddress).toEqual(opened.externalB);
    expect((await b.info(opened.ba)).remoteAddress).toEqual(opened.externalA);
    figure("simultaneous open, two cone NATs", `connected in ${ms(opened.connectMs)} (A at ${show(opened.externalA)}, B at ${show(opened.externalB)})`);

    const [, , fromA, fromB] = await Promise.all([
      a.send(opened.ab, MESSAGES, MESSAGE_BYTES, 20_000),
      b.send(opened.ba, MESSAGES, MESSAGE_BYTES, 20_000),
      b.recv(opened.ba, MESSAGES, 20_000),
      a.recv(opened.ab, MESSAGES, 20_000),
    ]);
    figure("messages, two cone NATs", `${MESSAGES} each way in order, A→B in ${ms(fromA.lastAt - fromA.firstAt)}, B→A in ${ms(fromB.lastAt - fromB.firstAt)}`);

    const [written, read] = await Promise.all([a.writeStream(opened.ab, STREAM_BYTES, 30_000), b.readStream(opened.ba, 30_000)]);
    expect(read.bytes).toBe(STREAM_BYTES);
    expect(read.sha256).toBe(written.sha256);
    figure("8 MiB stream, two cone NATs", `${mibPerSecond(STREAM_BYTES, written.ms)}, SHA-256 equal`);
    await a.close(opened.ab); // resolves once B acknowledged the CLOSE, through both NATs
  }, 40_000);
});

describeNetns("a symmetric NAT on one side (a new port per destination)", () => {
  const bed = useBed();

  // A's NAT gives the connection to B another port than the one the gateway saw: B answers a proven
  // intro (one carrying the key connect() expects) from a port other than the one given (before that
  // it dropped every intro from A's new port as `unknownSender`, the message below if it ever
  // regresses). B's NAT filters endpoint-independently ("full
  // cone"), as it must for any traversal of a symmetric NAT: an address-and-port filter (Linux's
  // own) would drop A's packets from the new port before B's transport could see them. Keys are
  // random, so runs see both tie-breaks (A or B the responder of the simultaneous open): the fix must
  // work either way.
  it("connects a peer behind a symmetric NAT to one behind a full-cone NAT, and a stream arrives intact", async () => {
    const pair = await natPair(bed(), SYMMETRIC, FULL_CONE);
    const { a, b } = pair;
    const outcome = await simultaneousOpen(pair).then((opened) => opened, (error: Error) => error);
    if (outcome instanceof Error) {
      const { drops } = (await b.info()).stats;
      const sent = (await a.info()).stats.datagramsSent;
      expect.fail(`${outcome.message}; B dropped ${drops.unknownSender} datagrams as unknownSender (A sent ${sent} in all)`);
    }
    figure("simultaneous open, symmetric NAT to full cone", `connected in ${ms(outcome.connectMs)}`);
    const [written, read] = await Promise.all([a.writeStream(outcome.ab, 2 * MiB, 20_000), b.readStream(outcome.ba, 20_000)]);
    expect(read.sha256).toBe(written.sha256);
  }, 20_000);
});
