// The reliable-delivery state machine in virtual time, over a seeded lossy network (no sockets).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseFrames, type FrameVisitor } from "../src/reliable/frames.ts";
import { checkReliabilityOptions } from "../src/reliable/options.ts";
import { MAX_OPEN_STREAMS, MAX_QUEUED_MESSAGES } from "../src/reliable/outbound.ts";
import { Session, type Transmit } from "../src/reliable/session.ts";
import { SluiceError } from "../src/errors/errors.ts";
import { SimNetwork } from "./support/sim-network.ts";
import { mulberry32 } from "./support/random.ts";

function messages(seed: number, count: number): Uint8Array[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    // Mostly one-datagram messages, one in ten a few datagrams long, some empty.
    const length = i % 10 === 9 ? 1200 + Math.floor(random() * 5000) : Math.floor(random() * 1100);
    const bytes = new Uint8Array(length);
    for (let j = 0; j < length; j++) bytes[j] = Math.floor(random() * 256);
    return bytes;
  });
}

function sha256(parts: Iterable<Uint8Array>): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

describe.each([0, 0.05, 0.2])("at %s loss", (loss) => {
  it("1,000 messages arrive intact, once, in order", () => {
    const net = new SimNetwork(0x5eed + loss * 100, { delayMs: 10, loss, jitterMs: 2, duplicate: 0.02 });
    const [a, b] = net.sessions;
    const sent = messages(7, 1000);
    const received: Uint8Array[] = [];
    let next = 0;
    const done = net.run(() => received.length === sent.length, 600_000, () => {
      while (next < sent.length && a.writable) a.sendMessage(sent[next++]!);
      for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) received.push(m);
    });
    expect(done).toBe(true);
    received.forEach((m, i) => expect(Buffer.from(m).equals(Buffer.from(sent[i]!))).toBe(true));
    expect(b.stats().messagesReceived).toBe(1000);
  });

  it("a 16 MiB stream arrives intact and in order", () => {
    const net = new SimNetwork(0x16 + loss * 100, { delayMs: 5, loss, jitterMs: 1, bytesPerMs: 50_000, queueBytes: 256 * 1024 });
    const total = 16 * 2 ** 20;
    const random = mulberry32(16);
    const source = new Uint8Array(total);
    for (let i = 0; i < total; i += 4) source[i] = Math.floor(random() * 256);
    const { done, received: pieces } = net.stream(source, 3_600_000);
    expect(done).toBe(true);
    expect(sha256(pieces)).toBe(sha256([source]));
    expect(net.sessions[1].stats().streamErrors).toBe(0);
  });
});

describe("in virtual time", () => {
  it("estimates the RTT within 20% of the configured delay", () => {
    const net = new SimNetwork(1, { delayMs: 40, jitterMs: 0 });
    const [a, b] = net.sessions;
    let sent = 0;
    net.run(() => sent === 200 && b.stats().messagesReceived === 200, 120_000, () => {
      if (sent < 200 && net.now >= sent * 50) a.sendMessage(new Uint8Array(100)), sent++;
      while (b.readMessage() !== undefined);
    });
    const { rttMs, minRttMs } = a.stats();
    expect(Math.abs(rttMs - 80) / 80).toBeLessThan(0.2);
    expect(Math.abs(minRttMs - 80) / 80).toBeLessThan(0.2);
  });

  it("keeps sending back to back: one-datagram messages never wait for a probe timer", () => {
    // Regression: a message sent whole at the very end of a packet once left the sender idle until its
    // tail-loss probe fired (~35 ms per stall).
    const net = new SimNetwork(10, { delayMs: 1 });
    const [a, b] = net.sessions;
    let received = 0;
    // Sizes that end exactly at a packet's end, with and without an ACK frame in it (1171 − 15 − 18, 1171 − 15).
    for (let i = 0; i < 3000; i++) a.sendMessage(new Uint8Array([1138, 1156, 1000][i % 3]!));
    net.run(() => received === 3000, 60_000, () => {
      while (b.readMessage() !== undefined) received++;
    });
    expect(received).toBe(3000);
    expect(a.stats().tailLossProbes).toBe(0);
    expect(net.now).toBeLessThan(200); // 3.3 MB over a 2 ms RTT path with no bottleneck: slow start, not timers
  });

  it("delivers duplicated packets once", () => {
    const net = new SimNetwork(2, { delayMs: 5, duplicate: 0.5, jitterMs: 3 });
    const [a, b] = net.sessions;
    const received: number[] = [];
    for (let i = 0; i < 300; i++) a.sendMessage(new Uint8Array([i & 0xff, i >> 8]));
    net.run(() => received.length >= 300, 60_000, () => {
      for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) received.push(m[0]! | (m[1]! << 8));
    });
    expect(received).toEqual(Array.from({ length: 300 }, (_, i) => i));
    net.run(() => false, net.now + 1000);
    expect(b.readMessage()).toBeUndefined();
  });

  it("backs off when the bottleneck is saturated", () => {
    // 1 MB/s bottleneck, 64 KiB of queue, 20 ms RTT: a sender that did not back off would overflow it.
    const net = new SimNetwork(3, { delayMs: 10, bytesPerMs: 1000, queueBytes: 64 * 1024 });
    const [a, b] = net.sessions;
    const id = a.openStream();
    const chunk = new Uint8Array(64 * 1024);
    let peakWindow = 0;
    let received = 0;
    let incoming: number | undefined;
    net.run(() => net.now > 20_000, 20_001, () => {
      while (a.streamWritable(id)) a.writeStream(id, chunk);
      peakWindow = Math.max(peakWindow, a.stats().congestionWindowBytes);
      incoming ??= b.acceptStream();
      for (let piece = incoming === undefined ? undefined : b.readStream(incoming); piece; piece = b.readStream(incoming!)) received += piece.length;
    });
    const link = net.links[0];
    const stats = a.stats();
    expect(link.bottleneckDrops).toBeGreaterThan(0); // it probed the limit...
    expect(stats.congestionWindowBytes).toBeLessThan(peakWindow); // ...and cut its window when it hit it
    expect(link.bottleneckDrops / link.sent).toBeLessThan(0.05); // losses stay a small fraction
    expect(received / 20_000).toBeGreaterThan(1000 * 0.7); // while it keeps the bottleneck mostly busy
  });

  it("a reader that stops makes the writer wait, with buffers bounded", () => {
    const net = new SimNetwork(4, { delayMs: 5 }, { sendBufferBytes: 256 * 1024, streamWindowBytes: 128 * 1024, messageWindowBytes: 128 * 1024 });
    const [a, b] = net.sessions;
    const id = a.openStream();
    let written = 0;
    net.run(() => false, 10_000, () => {
      while (a.streamWritable(id)) a.writeStream(id, new Uint8Array(16 * 1024)), written += 16 * 1024;
      while (a.writable) a.sendMessage(new Uint8Array(10_000)), written += 10_000;
    });
    expect(a.writable).toBe(false);
    expect(a.stats().sendBufferedBytes).toBeLessThanOrEqual(256 * 1024 + 16 * 1024);
    expect(written).toBeLessThan(256 * 1024 + 128 * 1024 + 128 * 1024 + 32 * 1024);
    expect(b.state).toBe("open"); // no stream failed for it: the writer is held up by us, not silent
    expect(b.stats().streamErrors).toBe(0);
  });

  it("bounds what an application can queue: 4096 messages, 1024 open streams", () => {
    const net = new SimNetwork(14, { delayMs: 5 });
    const [a] = net.sessions;
    let queued = 0;
    while (a.writable) a.sendMessage(new Uint8Array(0)), queued++; // empty: the byte bound alone would never stop these
    expect(queued).toBe(MAX_QUEUED_MESSAGES);
    for (let i = 0; i < MAX_OPEN_STREAMS; i++) a.openStream();
    expect(() => a.openStream()).toThrow(RangeError);
    expect(() => a.openStream()).toThrow(/1024 outgoing streams are open already/);
  });

  it("shares the path between concurrent streams", () => {
    const net = new SimNetwork(5, { delayMs: 5, bytesPerMs: 5000, queueBytes: 128 * 1024 });
    const [a, b] = net.sessions;
    const ids = [a.openStream(), a.openStream(), a.openStream(), a.openStream()];
    const total = 2 * 2 ** 20;
    for (const id of ids) a.writeStream(id, new Uint8Array(total)), a.finishStream(id);
    const got = new Map<number, number>();
    const finishedAt = new Map<number, number>();
    net.run(() => finishedAt.size === 4, 60_000, () => {
      for (let id = b.acceptStream(); id !== undefined; id = b.acceptStream()) got.set(id, 0);
      for (const id of got.keys()) {
        if (finishedAt.has(id)) continue;
        for (let piece = b.readStream(id); piece !== undefined; piece = b.readStream(id)) {
          if (piece === null) {
            finishedAt.set(id, net.now);
            break;
          }
          got.set(id, got.get(id)! + piece.length);
        }
      }
    });
    expect([...got.values()]).toEqual([total, total, total, total]);
    const times = [...finishedAt.values()];
    expect(Math.min(...times) / Math.max(...times)).toBeGreaterThan(0.8); // they finish together: none starved
  });

  it("notices a vanished peer after 10 s without an acknowledgement (deadPeerTimeoutMs), probing at least every 1.25 s", () => {
    const net = new SimNetwork(6, { delayMs: 5 });
    const [a, b] = net.sessions;
    a.sendMessage(new Uint8Array(10));
    net.run(() => b.readMessage() !== undefined && a.stats().rttMs > 0, 1000); // a sample: the RTO is 200 ms now
    net.links[0].loss = net.links[1].loss = 1;
    const vanished = net.now;
    a.sendMessage(new Uint8Array(10));
    const sentBefore = a.stats().packetsSent;
    net.run(() => a.state === "closed", 3_600_000);
    expect(a.error?.code).toBe("ERR_SLUICE_PEER_UNREACHABLE");
    expect(a.error?.message).toMatch(/nothing acknowledged for 10000 ms \(reliability.deadPeerTimeoutMs\)/);
    expect(net.now - vanished).toBeCloseTo(10_000, -1);
    // Timeouts at 0.2, 0.6, 1.4, 2.65, 3.9, 5.15, 6.4, 7.65, 8.9 s (backoff capped at an eighth of 10 s), each sending again.
    expect(a.stats().retransmissionTimeouts).toBe(9);
    expect(a.stats().packetsSent - sentBefore).toBeGreaterThanOrEqual(10);
  });

  it("fails after 12 consecutive retransmission timeouts when the dead-peer timeout is longer", () => {
    const net = new SimNetwork(6, { delayMs: 5 }, { deadPeerTimeoutMs: 60_000 });
    const [a, b] = net.sessions;
    a.sendMessage(new Uint8Array(10));
    net.run(() => b.readMessage() !== undefined && a.stats().rttMs > 0, 1000);
    net.links[0].loss = net.links[1].loss = 1;
    a.sendMessage(new Uint8Array(10));
    net.run(() => a.state === "closed", 3_600_000);
    expect(a.error?.message).toMatch(/12 consecutive retransmission timeouts/);
    expect(a.stats().retransmissionTimeouts).toBe(13);
    expect(net.now).toBeLessThan(40_000); // 0.2 + 0.4 + 0.8 + 1.6 + 8 × 3.2 s (backoff capped at ×16): well before the idle timeout
  });

  it("a quiet connection whose peer vanished fails within keepAliveMs + deadPeerTimeoutMs (its PING goes unanswered)", () => {
    const net = new SimNetwork(10, { delayMs: 5 });
    const [a] = net.sessions;
    net.run(() => false, 100); // the credit each side grants at once is acknowledged: quiet from here
    net.links[0].loss = net.links[1].loss = 1;
    net.run(() => a.state === "closed", 1_000_000);
    expect(a.error?.code).toBe("ERR_SLUICE_PEER_UNREACHABLE");
    expect(net.now).toBeGreaterThan(5000 + 10_000);
    expect(net.now).toBeLessThan(5100 + 10_000);
  });

  it("a receiver whose transfer stops (the path cut both ways) has something awaiting acknowledgement within a second, wherever the cut falls: it can ask for a re-punch", () => {
    // Cut after 100, 200... 3000 packets arrived. Where the receiver's last credit was acknowledged
    // and what it read since asked for none, nothing of its own awaited acknowledgement until its
    // keep-alive, 5 s after the last arrival: it was not silent, so it never asked for a re-punch.
    const late: string[] = [];
    for (let cutAfter = 100; cutAfter <= 3000; cutAfter += 100) {
      const net = new SimNetwork(11, { delayMs: 10 });
      const [, b] = net.sessions;
      let cutAt: number | undefined;
      let unansweredAt: number | undefined;
      net.stream(new Uint8Array(64 * 2 ** 20), 4000, () => {
        if (cutAt === undefined && b.stats().packetsReceived >= cutAfter) {
          cutAt = net.now;
          net.links[0].loss = net.links[1].loss = 1;
        }
        if (cutAt !== undefined && unansweredAt === undefined && b.unansweredSince !== Infinity) unansweredAt = net.now;
      });
      const tookMs = (unansweredAt ?? Infinity) - cutAt!;
      // The stall PING goes 3 RTOs after the last arrival (~0.7 s here).
      if (tookMs > 1000) late.push(`cut after ${cutAfter} packets: ${tookMs} ms`);
    }
    expect(late).toEqual([]);
    // Whole messages (requests, answers) never cost one: the receiver sends nothing after its ACK.
    const net = new SimNetwork(12, { delayMs: 10 });
    const [a, b] = net.sessions;
    net.run(() => false, 100);
    a.sendMessage(new Uint8Array(5000));
    net.run(() => b.readMessage() !== undefined, 1000);
    const sent = b.stats().packetsSent;
    net.run(() => false, net.now + 3000);
    expect(b.stats().packetsSent).toBe(sent);
  });

  it("a peer trickling a stream (a byte, then 2 s of silence, 20 times) draws at most one stall PING per silence", () => {
    const net = new SimNetwork(13, { delayMs: 10 });
    const [a, b] = net.sessions;
    net.run(() => false, 100);
    const id = a.openStream();
    const sentBefore = b.stats().packetsSent;
    const pings = (from: number) => b.stats().packetsSent - from;
    let perSilence = 0;
    for (let i = 0; i < 20; i++) {
      a.writeStream(id, Uint8Array.of(i));
      net.run(() => false, net.now + 2000, () => {
        const incoming = b.acceptStream();
        if (incoming !== undefined) while (b.readStream(incoming) !== undefined);
      });
      perSilence = Math.max(perSilence, pings(sentBefore) / (i + 1));
    }
    // Each byte: its ACK (early packets are acknowledged one by one), perhaps a credit, and one PING
    // 3 RTOs into the silence; never a PING every 3 RTOs for as long as the peer stays silent.
    expect(pings(sentBefore)).toBeLessThanOrEqual(20 * 3);
    expect(perSilence).toBeLessThanOrEqual(3);
  });

  it("pings every 5 s while idle, backing off to 60 s unanswered, and times out after 120 s of silence", () => {
    const quiet = new SimNetwork(7, { delayMs: 5 });
    quiet.run(() => false, 60_000);
    expect(quiet.sessions[0].state).toBe("open"); // pings answered: alive
    expect(quiet.sessions[0].stats().packetsSent).toBeGreaterThanOrEqual(10);
    expect(quiet.sessions[0].stats().keepAliveIntervalMs).toBe(5000);
    const gone = new SimNetwork(8, { delayMs: 5, loss: 1 }, { maxRetransmissions: 100, deadPeerTimeoutMs: 2 ** 31 - 1 });
    const [a] = gone.sessions;
    const intervals = new Set<number>();
    gone.run(() => a.state === "closed", 1_000_000, () => intervals.add(a.stats().keepAliveIntervalMs));
    expect([...intervals]).toEqual([5000, 10_000, 20_000, 40_000, 60_000]);
    expect(a.error?.code).toBe("ERR_SLUICE_IDLE_TIMEOUT");
    expect(a.error?.message).toMatch(/idle timeout: nothing from the peer for 120000 ms/);
    expect(gone.now).toBeCloseTo(120_000, -2);
  });

  it("never acknowledges pure ACKs: an idle connection exchanges only keep-alives", () => {
    const net = new SimNetwork(11, { delayMs: 5 });
    const [a, b] = net.sessions;
    for (let i = 0; i < 100; i++) a.sendMessage(new Uint8Array(500));
    net.run(() => b.stats().messagesReceived === 100, 10_000, () => {
      while (b.readMessage() !== undefined);
    });
    const before = a.stats().packetsSent + b.stats().packetsSent;
    net.run(() => false, net.now + 60_000);
    // A minute of quiet: one PING and its ACK per 5 s per side at most (freenet traded a NoOp every 100 ms).
    expect(a.stats().packetsSent + b.stats().packetsSent - before).toBeLessThanOrEqual(2 * 2 * 12 + 4);
  });

  it("a stream lives as long as its connection: a writer silent for a minute, then more, then its end", () => {
    const net = new SimNetwork(12, { delayMs: 5 });
    const [a, b] = net.sessions;
    const id = a.openStream();
    a.writeStream(id, new Uint8Array(10_000).fill(1)); // then nothing for a minute, and no end yet
    let incoming: number | undefined;
    let received = 0;
    let ended = false;
    const read = () => {
      incoming ??= b.acceptStream();
      for (let piece = incoming === undefined ? undefined : b.readStream(incoming); piece !== undefined; piece = b.readStream(incoming!)) {
        if (piece === null) return void (ended = true);
        received += piece.length;
      }
    };
    net.run(() => false, 60_000, read);
    expect(received).toBe(10_000);
    expect(a.streamState(id)).toBe("sending");
    a.writeStream(id, new Uint8Array(5000));
    a.finishStream(id);
    net.run(() => ended, net.now + 1000, read);
    expect(received).toBe(15_000);
    expect(b.stats().streamErrors).toBe(0);
  });

  it("a cancelled reader tells the writer (STOP_SENDING, sent again if lost): its writes fail, its buffer is freed", () => {
    const net = new SimNetwork(15, { delayMs: 5, loss: 0.3 });
    const [a, b] = net.sessions;
    const id = a.openStream();
    a.writeStream(id, new Uint8Array(3 * 2 ** 20)); // far more than the reader's window
    let incoming: number | undefined;
    net.run(() => (incoming ??= b.acceptStream()) !== undefined && b.readStream(incoming) !== undefined, 10_000);
    b.cancelStream(incoming!);
    net.run(() => a.streamState(id) !== "sending", net.now + 10_000);
    const state = a.streamState(id);
    expect(state).toBeInstanceOf(Error);
    expect((state as Error & { code: string }).code).toBe("ERR_SLUICE_STREAM_CANCELLED");
    expect(a.stats().sendBufferedBytes).toBe(0);
    expect(() => a.writeStream(id, new Uint8Array(1))).toThrow(/stream 0 was cancelled by its reader/);
    a.sendMessage(new Uint8Array([4]));
    let message: Uint8Array | undefined;
    net.run(() => (message ??= b.readMessage()) !== undefined, net.now + 10_000);
    expect(message).toEqual(new Uint8Array([4]));
  });

  it("a message over the receiver's limit is refused to the sender (MESSAGE_REFUSED), and later messages flow", () => {
    const net = new SimNetwork(16, { delayMs: 5, loss: 0.2 }, { maxMessageBytes: 5000 });
    const [a, b] = net.sessions;
    a.sendMessage(new Uint8Array(6000));
    for (let i = 0; i < 20; i++) a.sendMessage(new Uint8Array(3000).fill(i));
    const received: number[] = [];
    let refusal: (Error & { code?: string }) | undefined;
    net.run(() => received.length === 20 && refusal !== undefined, 60_000, () => {
      for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) received.push(m[0]!);
      refusal ??= a.takeMessageRefusal();
    });
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(refusal?.code).toBe("ERR_SLUICE_MESSAGE_TOO_LARGE");
    expect(refusal?.message).toMatch(/message 0 \(6000 bytes\) was refused by the peer: the peer accepts messages of at most 5000 bytes/);
    expect(a.overPeerLimit(5001)?.code).toBe("ERR_SLUICE_MESSAGE_TOO_LARGE");
    expect(a.overPeerLimit(5000)).toBeUndefined();
    net.run(() => a.stats().sendBufferedBytes === 0, net.now + 10_000);
    expect(a.stats().sendBufferedBytes).toBe(0);
  });

  it("a stream held up by loss or by its reader is not idle, however long", () => {
    // A reader that stops for 20 s: the writer waits on credit, with nothing to write; no reset.
    const net = new SimNetwork(13, { delayMs: 5 }, { streamWindowBytes: 64 * 1024 });
    const [a, b] = net.sessions;
    const id = a.openStream();
    a.writeStream(id, new Uint8Array(1 << 20));
    a.finishStream(id);
    let incoming: number | undefined;
    let received = 0;
    let ended = false;
    net.run(() => ended, 120_000, () => {
      incoming ??= b.acceptStream();
      if (incoming === undefined || net.now < 20_000) return;
      for (let piece = b.readStream(incoming); piece !== undefined; piece = b.readStream(incoming)) {
        if (piece === null) {
          ended = true;
          break;
        }
        received += piece.length;
      }
    });
    expect(received).toBe(1 << 20);
    net.run(() => a.streamState(id) === "delivered", net.now + 1000); // the last ACK on its way back
    expect(a.streamState(id)).toBe("delivered");
  });

  it("close: the peer's recv ends after what already arrived", () => {
    const net = new SimNetwork(9, { delayMs: 5, loss: 0.1 });
    const [a, b] = net.sessions;
    for (let i = 0; i < 50; i++) a.sendMessage(new Uint8Array(3000).fill(i));
    a.close();
    expect(() => a.sendMessage(new Uint8Array(1))).toThrow(/closed/);
    const received: Uint8Array[] = [];
    net.run(() => b.messagesEnded, 60_000, () => {
      for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) received.push(m);
    });
    expect(received.map((m) => m[0])).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(b.error).toBeUndefined();
    net.run(() => a.state === "closed" && b.state === "closed", 60_000);
    expect(a.error).toBeUndefined();
  });
});

describe("the peer's CLOSE is acknowledged when this side ends right after it arrived", () => {
  // The peer's close waits for the ACK of its CLOSE (the CLOSE is sent until acknowledged). A side
  // whose application ends the connection as soon as the CLOSE wakes it, before its host polls,
  // answered nothing (draining sends nothing more): the peer waited out its dead-peer timeout.
  const frameNames = (transmit: Transmit): string[] => {
    const names: string[] = [];
    parseFrames(Buffer.concat(transmit.parts), new Proxy({}, { get: (_, name) => () => names.push(String(name)) }) as FrameVisitor);
    return names;
  };
  const ends = {
    "abort()": (b: Session, now: number) => b.abort(now),
    "abort(error)": (b: Session, now: number) => b.abort(now, new SluiceError("ERR_SLUICE_ABORTED", "the connection was aborted")),
    "close(), then abort()": (b: Session, now: number) => (b.close(), b.abort(now)),
  };
  it.each(Object.keys(ends) as Array<keyof typeof ends>)("%s answers with the ACK, then nothing; the peer's close completes", (how) => {
    const config = checkReliabilityOptions(undefined, "options");
    const [a, b] = [new Session(config, 0, mulberry32(1)), new Session(config, 0, mulberry32(2))];
    let now = 0;
    const carry = (from: Session, to: Session) => {
      now += 5;
      for (let t = from.pollTransmit(now); t !== undefined; t = from.pollTransmit(now)) to.handlePacket(Buffer.concat(t.parts), t.packetNumber, now);
    };
    a.sendMessage(new Uint8Array([1]));
    carry(a, b);
    carry(b, a); // the message acknowledged: A's CLOSE goes at once
    expect(b.readMessage()).toEqual(new Uint8Array([1]));
    a.close();
    carry(a, b);
    expect(b.state).toBe("draining");
    expect(b.messagesEnded).toBe(true); // the application learns of the end here, before B's host polls
    const last = ends[how](b, now);
    expect(last).toBeDefined();
    expect(frameNames(last!)).toEqual(["ack"]); // no CLOSE of its own: the peer's is the last word
    expect(b.state).toBe("closed");
    expect(b.pollTransmit(now + 1)).toBeUndefined();
    a.handlePacket(Buffer.concat(last!.parts), last!.packetNumber, now + 5);
    expect(a.state).toBe("draining"); // its close() resolves
    expect(a.error).toBeUndefined();
  });

  it("a side whose ACK of the CLOSE already went sends nothing when it ends", () => {
    const config = checkReliabilityOptions(undefined, "options");
    const [a, b] = [new Session(config, 0, mulberry32(3)), new Session(config, 0, mulberry32(4))];
    a.close();
    const close = a.pollTransmit(1)!;
    b.handlePacket(Buffer.concat(close.parts), close.packetNumber, 5);
    const ack = b.pollTransmit(5)!;
    expect(frameNames(ack)).toEqual(["ack"]);
    expect(b.abort(6)).toBeUndefined();
    a.handlePacket(Buffer.concat(ack.parts), ack.packetNumber, 10);
    expect(a.state).toBe("draining");
  });
});

describe("streams past the peer's limit, and bytes ahead of their readers", () => {
  /**
   * Writes `streams` (id → bytes) in 64 KiB writes, in turn, while each stream takes more (the
   * host's rule: streamWritable), finishing each at its end; reads every stream the peer accepts, in parallel, or
   * in order of acceptance, one at a time (`sequential`). Answers whether every stream ended, what
   * each received, and the largest send buffer seen.
   */
  function writeAndRead(net: SimNetwork, streams: Map<number, Uint8Array>, sequential: boolean, limitMs: number) {
    const [a, b] = net.sessions;
    const ids = [...streams.keys()];
    const written = new Map(ids.map((id) => [id, 0]));
    let turn = 0;
    const received = new Map<number, Uint8Array[]>();
    const ended = new Set<number>();
    let largestBuffer = 0;
    const done = net.run(() => ended.size === streams.size, limitMs, () => {
      // The writers take turns, a write each, from the one after the last that wrote (as concurrent
      // writers waiting for room do: whoever waited longest goes first).
      for (let wrote = true; wrote;) {
        wrote = false;
        for (let k = 0; k < ids.length; k++) {
          const id = ids[(turn + k) % ids.length]!;
          const data = streams.get(id)!;
          const at = written.get(id)!;
          if (at === data.length || !a.streamWritable(id)) continue;
          a.writeStream(id, data.subarray(at, at + 64 * 1024));
          written.set(id, Math.min(data.length, at + 64 * 1024));
          if (written.get(id) === data.length) a.finishStream(id);
          turn = (turn + k + 1) % ids.length;
          wrote = true;
          break;
        }
      }
      largestBuffer = Math.max(largestBuffer, a.stats().sendBufferedBytes);
      for (let id = b.acceptStream(); id !== undefined; id = b.acceptStream()) received.set(id, []);
      for (const [id, pieces] of received) {
        if (ended.has(id)) continue;
        for (let piece = b.readStream(id); piece !== undefined; piece = b.readStream(id)) {
          if (piece === null) {
            ended.add(id);
            break;
          }
          pieces.push(piece);
        }
        if (sequential && !ended.has(id)) break; // the next stream waits for this one's end
      }
    });
    return { done, received, largestBuffer };
  }

  function seeded(seed: number, bytes: number): Uint8Array {
    const random = mulberry32(seed);
    const data = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 64) data[i] = random() * 256;
    return data;
  }

  it("50 streams of 256 KiB opened at once, 34 past the peer's 16: every one arrives intact, the send buffer within its bound", () => {
    // Bytes of streams the peer had not admitted filled the shared 4 MiB send buffer; the admitted
    // streams' writers waited for room for ever, and no stream ended to admit another.
    const net = new SimNetwork(0x50, { delayMs: 5, loss: 0.02, jitterMs: 1 });
    const [a, b] = net.sessions;
    const streams = new Map(Array.from({ length: 50 }, (_, i) => [a.openStream(), seeded(i, 256 * 1024)] as const));
    const { done, received, largestBuffer } = writeAndRead(net, streams, false, 600_000);
    expect(done).toBe(true);
    for (const [id, data] of streams) expect(sha256(received.get(id)!)).toBe(sha256([data]));
    expect(largestBuffer).toBeLessThanOrEqual(4 * 2 ** 20 + 64 * 1024); // sendBufferBytes + the write being admitted
    expect(b.stats().flowControlViolations).toBe(0);
  });

  it("two 8 MiB streams read one after the other: the second's bytes beyond its reader's window do not hold up the first", () => {
    const net = new SimNetwork(0x88, { delayMs: 5 });
    const [a] = net.sessions;
    const streams = new Map([[a.openStream(), seeded(1, 8 * 2 ** 20)], [a.openStream(), seeded(2, 8 * 2 ** 20)]]);
    const { done, received } = writeAndRead(net, streams, true, 600_000);
    expect(done).toBe(true);
    for (const [id, data] of streams) expect(sha256(received.get(id)!)).toBe(sha256([data]));
  });

  it("a stream past the limit is admitted within about a round trip of any stream's end, even while the first stays open", () => {
    // QUIC's MAX_STREAMS (RFC 9000 §4.6) counts streams: each stream that ends lets one more open,
    // whichever it is. Counting only streams ended in order from the first kept every later stream out
    // while a long-lived first one stayed open.
    const net = new SimNetwork(0x17, { delayMs: 10 });
    const [a, b] = net.sessions;
    const longLived = a.openStream();
    a.writeStream(longLived, new Uint8Array(100)); // never finished
    const streams = new Map(Array.from({ length: 16 }, (_, i) => [a.openStream(), seeded(i, 10_000)] as const));
    const last = Math.max(...streams.keys());
    let firstEnd = Infinity;
    let admittedAt = Infinity;
    const written = new Set<number>();
    const reading = new Set<number>();
    net.run(() => admittedAt < Infinity, 20_000, () => {
      for (const [id, data] of streams) {
        if (written.has(id) || !a.streamWritable(id)) continue;
        a.writeStream(id, data);
        a.finishStream(id);
        written.add(id);
      }
      for (let id = b.acceptStream(); id !== undefined; id = b.acceptStream()) {
        if (id === last) admittedAt = net.now;
        if (id !== longLived) reading.add(id);
      }
      for (const id of reading) {
        for (let piece = b.readStream(id); piece !== undefined; piece = b.readStream(id)) {
          if (piece === null) {
            firstEnd = Math.min(firstEnd, net.now);
            reading.delete(id);
            break;
          }
        }
      }
    });
    expect(admittedAt).toBeLessThan(Infinity);
    expect(admittedAt - firstEnd).toBeLessThanOrEqual(3 * 20); // one round trip (20 ms), with room: not a keep-alive (5 s) away
  });

  it("a stream reset before the peer admitted it reaches the peer's reader once it is, and frees its place", () => {
    const net = new SimNetwork(0x18, { delayMs: 5 });
    const [a, b] = net.sessions;
    const ids = Array.from({ length: 18 }, () => a.openStream());
    for (const id of ids.slice(0, 16)) a.writeStream(id, new Uint8Array(100)), a.finishStream(id);
    a.resetStream(ids[16]!, new SluiceError("ERR_SLUICE_RESET", "given up"));
    a.writeStream(ids[17]!, new Uint8Array(100));
    a.finishStream(ids[17]!);
    const outcomes = new Map<number, string>();
    const settled = () => outcomes.size === 18 && ![...outcomes.values()].includes("open");
    net.run(settled, 10_000, () => {
      for (let id = b.acceptStream(); id !== undefined; id = b.acceptStream()) outcomes.set(id, "open");
      for (const [id, outcome] of outcomes) {
        if (outcome !== "open") continue;
        try {
          for (let piece = b.readStream(id); piece !== undefined && outcomes.get(id) === "open"; piece = b.readStream(id)) {
            if (piece === null) outcomes.set(id, "ended");
          }
        } catch (error) {
          outcomes.set(id, (error as SluiceError).code);
        }
      }
    });
    expect(settled()).toBe(true);
    expect(outcomes.get(ids[16]!)).toBe("ERR_SLUICE_RESET");
    expect(outcomes.get(ids[17]!)).toBe("ended");
    expect(b.stats().flowControlViolations).toBe(0);
  });
});

describe("a full message queue, retired from its front", () => {
  it("12,000 messages through a queue held at 4,096 arrive intact, once, in order at 5% loss with duplicates and reordering", () => {
    const net = new SimNetwork(0x4096, { delayMs: 3, loss: 0.05, duplicate: 0.02, jitterMs: 2 });
    const [a, b] = net.sessions;
    const count = 12_000;
    const byteOf = (i: number, at: number) => (i * 7 + at) & 0xff;
    let queued = 0;
    let deepest = 0;
    let next = 0;
    let intact = true;
    const finished = net.run(() => next === count, 3_600_000, () => {
      for (; queued < count && a.writable; queued++) a.sendMessage(Uint8Array.from({ length: 1 + (queued % 1500) }, (_, at) => byteOf(queued, at)));
      deepest = Math.max(deepest, queued - next);
      for (let m = b.readMessage(); m !== undefined; m = b.readMessage(), next++) {
        intact &&= m.length === 1 + (next % 1500) && m.every((byte, at) => byte === byteOf(next, at));
      }
    });
    expect(finished).toBe(true);
    expect(intact).toBe(true);
    expect(deepest).toBeGreaterThanOrEqual(2048); // the queue ran deep enough to be compacted while in use
    const mark = a.writtenMark();
    net.run(() => a.flushed(mark), net.now + 60_000);
    expect(a.flushed(mark)).toBe(true);
    expect(a.stats().sendBufferedBytes).toBe(0);
  });
});

describe("a peer that closes once it has everything", () => {
  // The 1 ms jitter on a 2 ms link reorders packets enough that some are declared lost while their ACK
  // is only late. Seeds 13, 14, 19, 21 and 29 failed (ERR_SLUICE_PEER_CLOSED) while such a late ACK was
  // ignored: the data stayed unacknowledged until its retransmission was, and the reader closed first.
  it.each(Array.from({ length: 30 }, (_, i) => i + 1))("seed %i: the writer's flush still resolves when the last ACK comes with the CLOSE", (seed) => {
    const net = new SimNetwork(seed, { delayMs: 2, jitterMs: 1 });
    const [a, b] = net.sessions;
    const total = 200_000;
    const id = a.openStream();
    a.writeStream(id, new Uint8Array(total).fill(seed));
    a.finishStream(id);
    const mark = a.writtenMark();
    let incoming: number | undefined;
    let received = 0;
    // The reader closes as soon as it has read the end: its last ACK leaves in the packet with its CLOSE.
    net.run(() => b.state !== "open", 60_000, () => {
      incoming ??= b.acceptStream();
      for (let piece = incoming === undefined ? undefined : b.readStream(incoming); piece !== undefined; piece = b.readStream(incoming!)) {
        if (piece === null) return b.close();
        received += piece.length;
      }
    });
    expect(received).toBe(total);
    net.run(() => a.state !== "open", 60_000);
    expect(a.flushed(mark)).toBe(true);
  });
});

describe("a seeded sweep", () => {
  // In virtual time: CPU alone, ~10 s of it on a quiet machine, more when it shares the cores (the bound is for a hang).
  it("90 networks (5/20/30% loss, duplication, jitter, some with a bottleneck): messages and a stream, both intact", { timeout: 120_000 }, () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      for (const loss of [0.05, 0.2, 0.3]) {
        const net = new SimNetwork(seed * 1000 + Math.round(loss * 100), {
          delayMs: 1 + (seed % 20), loss, jitterMs: seed % 7, duplicate: 0.05,
          bytesPerMs: seed % 3 === 0 ? 2000 : Infinity, queueBytes: 64 * 1024,
        });
        const [a, b] = net.sessions;
        const random = mulberry32(seed);
        const received: number[] = [];
        const id = a.openStream();
        const total = 1.25 * 2 ** 20; // past one stream window (1 MiB): its credit is raised as it is read
        let sent = 0;
        let written = 0;
        let streamBytes = 0;
        let ended = false;
        let incoming: number | undefined;
        const done = net.run(() => received.length === 300 && ended, 3_600_000, () => {
          while (sent < 300 && a.writable) {
            const message = new Uint8Array(2 + Math.floor(random() * 3000));
            message[0] = sent & 0xff;
            message[1] = sent++ >> 8;
            a.sendMessage(message);
          }
          while (written < total && a.streamWritable(id)) {
            a.writeStream(id, new Uint8Array(64 * 1024));
            written += 64 * 1024;
            if (written === total) a.finishStream(id);
          }
          for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) received.push(m[0]! | (m[1]! << 8));
          incoming ??= b.acceptStream();
          for (let piece = incoming === undefined ? undefined : b.readStream(incoming); piece !== undefined; piece = b.readStream(incoming!)) {
            if (piece === null) {
              ended = true;
              break;
            }
            streamBytes += piece.length;
          }
        });
        const inOrder = received.every((n, i) => n === i);
        if (!done || streamBytes !== total || !inOrder) failures.push(`seed ${seed}, loss ${loss}: done ${done}, stream ${streamBytes}, messages ${received.length} in order ${inOrder}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

it("1 KiB requests and responses stay one packet each over 20,000 round trips: ACK ranges the peer has seen acknowledged are not reported again", () => {
  // Each side skips one packet number in ~256 (optimistic-ACK defence), so the receiver's ranges gain a
  // gap every ~256 packets; reported forever, the ACK frame grew to its 32 ranges and a 1 KiB message
  // no longer fit beside it.
  const net = new SimNetwork(0xacc5, { delayMs: 1 });
  const [a, b] = net.sessions;
  let rounds = 0;
  let waiting = false;
  const done = net.run(() => rounds === 20_000, 1e9, () => {
    if (!waiting) {
      a.sendMessage(new Uint8Array(1024));
      waiting = true;
    }
    for (let m = b.readMessage(); m !== undefined; m = b.readMessage()) b.sendMessage(m);
    if (a.readMessage() !== undefined) {
      rounds++;
      waiting = false;
    }
  });
  expect(done).toBe(true);
  expect(a.stats().packetsSent).toBeLessThan(rounds * 1.05);
  expect(b.stats().packetsSent).toBeLessThan(rounds * 1.05);
});

describe("the liveness check (a PING before an open connection is trusted: a peer may have restarted)", () => {
  /** A pair that exchanged a few messages over `delayMs` each way: the RTT is measured. */
  function measuredPair(seed: number, delayMs: number): SimNetwork {
    const net = new SimNetwork(seed, { delayMs });
    const [a, b] = net.sessions;
    for (let i = 0; i < 5; i++) a.sendMessage(new Uint8Array(100));
    net.run(() => b.stats().messagesReceived === 5, 10_000, () => {
      while (b.readMessage() !== undefined);
    });
    net.run(() => false, net.now + 500); // the last ACKs
    return net;
  }

  it("a live peer answers within a round trip", () => {
    const net = measuredPair(31, 40);
    const [a] = net.sessions;
    const started = net.now;
    a.checkAlive(net.now);
    expect(a.aliveCheck).toBe("pending");
    expect(net.run(() => a.aliveCheck !== "pending", net.now + 5000)).toBe(true);
    expect(a.aliveCheck).toBe("answered");
    expect(net.now - started).toBeLessThan(80 + 25 + 1); // the RTT and the peer's ACK delay
  });

  it("a PING lost once is sent again and its answer counts: one lost datagram does not make a live peer look restarted", () => {
    const net = measuredPair(32, 40);
    const [a] = net.sessions;
    const link = net.links[0];
    link.loss = 1;
    const sentBefore = link.sent;
    a.checkAlive(net.now);
    net.run(() => false, net.now + 50); // the PING goes, and is lost (its resend is due an RTO later)
    expect(link.dropped).toBeGreaterThan(0);
    expect(link.sent).toBeGreaterThan(sentBefore);
    link.loss = 0;
    expect(net.run(() => a.aliveCheck !== "pending", net.now + 5000)).toBe(true);
    expect(a.aliveCheck).toBe("answered");
  });

  it("a peer that acknowledges nothing is unanswered after two probe timeouts", () => {
    const net = measuredPair(33, 40);
    const [a] = net.sessions;
    net.links[1].loss = 1; // the peer's ACKs never come back (as a restarted peer's: it cannot open our packets)
    const started = net.now;
    const rto = a.rto;
    a.checkAlive(net.now);
    a.checkAlive(net.now); // a second check while one runs shares it
    expect(net.run(() => a.aliveCheck !== "pending", net.now + 10_000)).toBe(true);
    expect(a.aliveCheck).toBe("unanswered");
    expect(net.now - started).toBeCloseTo(2 * rto + 25, 0);
  });

  it("a check asked of a session whose peer closed is unanswered at once, whatever an earlier check said", () => {
    const net = measuredPair(34, 40);
    const [a, b] = net.sessions;
    a.checkAlive(net.now);
    expect(net.run(() => a.aliveCheck !== "pending", net.now + 5000)).toBe(true);
    expect(a.aliveCheck).toBe("answered");
    b.close();
    expect(net.run(() => a.state === "draining", net.now + 5000)).toBe(true);
    a.checkAlive(net.now); // before: no check started, and the last one's "answered" came back
    expect(a.aliveCheck).toBe("unanswered");
  });

  it("a check running when the session ends is unanswered, not pending for ever", () => {
    const net = measuredPair(35, 40);
    const [a] = net.sessions;
    net.links[1].loss = 1;
    a.checkAlive(net.now);
    a.abort(net.now);
    expect(a.state).toBe("closed");
    expect(a.aliveCheck).toBe("unanswered");
  });
});

describe("data cut short by a packet's room", () => {
  // The receiver copies a frame's data out of its queue's shared memory into a stream block (which
  // starts at a multiple of 4 KiB of the stream) or a message buffer (at its offset 0); V8 copies
  // out of shared memory word by word only when both addresses are alike mod 8. The queue's frame
  // puts the datagram at an 8-byte boundary, its plaintext 13 bytes (the header) in: data at
  // plaintext position p with stream offset o is copied wordwise when 13 + p ≡ o (mod 8). The sender
  // can see to it for a frame that opens its packet (most do: only ACKs and PINGs go before data).
  it("ends where the next packet's data lies as it will in the receiver's buffer, and arrives intact", () => {
    const net = new SimNetwork(21, { delayMs: 5, loss: 0.02, jitterMs: 1 });
    const [a, b] = net.sessions;
    const frames = { stream: { aligned: 0, all: 0 }, message: { aligned: 0, all: 0 } };
    const count = (kind: keyof typeof frames, plaintext: Uint8Array, offset: number, data: Uint8Array) => {
      // Frames that open their packet (an ACK or PING before one shifts it), ends of writes and messages aside.
      if (data.byteOffset - plaintext.byteOffset !== (kind === "stream" ? 16 : 15) || data.length < 512) return;
      frames[kind].all++;
      if ((13 + data.byteOffset - plaintext.byteOffset - offset) % 8 === 0) frames[kind].aligned++;
    };
    net.tap = (from, plaintext) => {
      if (from !== 0) return;
      parseFrames(plaintext, new Proxy({
        streamData: (_id: number, offset: number, _fin: boolean, data: Uint8Array) => count("stream", plaintext, offset, data),
        messageData: (_sequence: number, _total: number, offset: number, data: Uint8Array) => count("message", plaintext, offset, data),
      }, { get: (target, name) => target[name as keyof typeof target] ?? (() => {}) }) as unknown as FrameVisitor);
    };
    const data = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const message = new Uint8Array(60_000).map((_, i) => (i * 13) & 0xff);
    let received: Uint8Array | undefined;
    a.sendMessage(message);
    const streamed = net.stream(data, 600_000, () => {
      received ??= b.readMessage();
    });
    net.run(() => (received ??= b.readMessage()) !== undefined, 600_000);
    expect(streamed.done).toBe(true);
    expect(sha256(streamed.received)).toBe(sha256([data]));
    expect(sha256([received!])).toBe(sha256([message]));
    expect(frames.stream.all).toBeGreaterThan(20);
    expect(frames.message.all).toBeGreaterThan(5);
    expect(frames.stream.aligned / frames.stream.all).toBeGreaterThan(0.95); // 1 in 8 before
    expect(frames.message.aligned / frames.message.all).toBeGreaterThan(0.95);
  });
});
