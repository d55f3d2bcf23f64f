// Loss recovery's memory of packets declared lost: a late ACK (reordering, not loss) still counts what
// the packet carried as delivered, once, and touches neither the window nor the RTT; what is
// remembered is bounded by count and by time.
import { describe, expect, it } from "vitest";
import { LossRecovery, MAX_REMEMBERED_LOST } from "../src/reliable/loss-recovery.ts";

interface Packet {
  number: number;
  time: number;
  bytes: number;
}

function recovery(): LossRecovery<Packet> {
  return new LossRecovery<Packet>({ rtoFloorMs: 200, maxTimeouts: 10, peerAckDelayMs: 25, deadPeerTimeoutMs: 10_000 });
}

/** Sends packets [from, to) at `time`, 1,000 bytes each. */
function send(r: LossRecovery<Packet>, from: number, to: number, time: number): void {
  for (let number = from; number < to; number++) r.onSent(number, { number, time, bytes: 1000 }, false);
}

/** An ACK of [start, end) at `now`: the numbers acknowledged, and those declared lost. */
function ack(r: LossRecovery<Packet>, start: number, end: number, now: number): { acked: number[]; lost: number[]; any: boolean } {
  const acked: number[] = [];
  const lost: number[] = [];
  const any = r.onAck([[start, end]], 0, now, (p) => acked.push(p.number), (p) => lost.push(p.number));
  return { acked, lost, any };
}

describe("a packet declared lost whose ACK comes late", () => {
  it("is acknowledged once, counted as a spurious loss, and changes neither the window nor the RTT", () => {
    const r = recovery();
    send(r, 0, 5, 0);
    // 4 acknowledged at 10 ms: 0 and 1 are three behind it (lost), 2 and 3 not yet (9/8 RTT has not passed).
    expect(ack(r, 4, 5, 10)).toEqual({ acked: [4], lost: [0, 1], any: true });
    const window = r.congestion.window;
    const inFlight = r.congestion.bytesInFlight;
    expect(inFlight).toBe(2000);
    expect(ack(r, 0, 2, 11)).toEqual({ acked: [0, 1], lost: [], any: true });
    expect(r.stats).toMatchObject({ packetsLost: 2, spuriousLosses: 2 });
    expect(r.congestion.window).toBe(window);
    expect(r.congestion.bytesInFlight).toBe(inFlight);
    expect(r.rtt.latest).toBe(10);
    expect(ack(r, 0, 2, 12)).toEqual({ acked: [], lost: [], any: false }); // once
  });

  it("is forgotten one RTO after it was declared lost", () => {
    const r = recovery();
    send(r, 0, 5, 0);
    expect(ack(r, 4, 5, 10).lost).toEqual([0, 1]);
    expect(r.rtt.rto).toBe(200);
    expect(ack(r, 0, 2, 10 + 200)).toEqual({ acked: [], lost: [], any: false });
    expect(r.stats.spuriousLosses).toBe(0);
  });

  it(`only the newest ${MAX_REMEMBERED_LOST} are remembered: a retransmission timeout declaring ${MAX_REMEMBERED_LOST + 100} lost keeps those`, () => {
    const r = recovery();
    const count = MAX_REMEMBERED_LOST + 100;
    send(r, 0, count, 0);
    expect(r.onTimeout(1000, () => {})).toBe("timeout"); // the 1 s initial RTO (no sample yet) has passed: no probe first
    expect(r.stats.packetsLost).toBe(count);
    const late = ack(r, 0, count, 1001);
    expect(late.acked).toEqual(Array.from({ length: MAX_REMEMBERED_LOST }, (_, i) => count - MAX_REMEMBERED_LOST + i));
    expect(late.any).toBe(true);
  });

  it("is forgotten when the connection ends (clear)", () => {
    const r = recovery();
    send(r, 0, 5, 0);
    expect(ack(r, 4, 5, 10).lost).toEqual([0, 1]);
    r.clear();
    expect(ack(r, 0, 2, 11).acked).toEqual([]);
  });
});
