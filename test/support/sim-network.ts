// A seeded, in-process network for driving two Sessions in virtual time, as quinn-proto tests its
// connections: per-direction delay, random loss, duplication, reordering (jitter), a bandwidth
// bottleneck with a drop-tail queue, and a path MTU (datagrams over a size are dropped). No sockets, no crypto, no wall clock: a run is a pure function of
// its seed and settings.

import { Session } from "../../src/reliable/session.ts";
import { checkReliabilityOptions, type ReliabilityOptions } from "../../src/reliable/options.ts";
import { mulberry32 } from "./random.ts";

export interface LinkOptions {
  delayMs?: number;
  loss?: number;
  duplicate?: number;
  /** Extra random delay up to this, per packet: reorders packets closer together than it. */
  jitterMs?: number;
  /** Bottleneck rate; Infinity for none. */
  bytesPerMs?: number;
  /** Bytes the bottleneck queues before it drops. */
  queueBytes?: number;
  /** Datagrams larger than this (header and tag included) are dropped, as a narrow path does (Infinity: none). */
  maxDatagramBytes?: number;
}

interface InFlight {
  at: number;
  to: 0 | 1;
  packetNumber: number;
  plaintext: Uint8Array;
}

class Link {
  readonly #options: Required<LinkOptions>;
  #busyUntil = 0;
  sent = 0;
  dropped = 0;
  bottleneckDrops = 0;
  /** Datagrams dropped for being over maxDatagramBytes. */
  oversizeDrops = 0;
  /** The largest datagram that got through. */
  largestDelivered = 0;
  bytesDelivered = 0;

  constructor(options: LinkOptions) {
    this.#options = { delayMs: 10, loss: 0, duplicate: 0, jitterMs: 0, bytesPerMs: Infinity, queueBytes: Infinity, maxDatagramBytes: Infinity, ...options };
  }

  /** Narrows (or widens) the path from now on: datagrams over `bytes` are dropped. */
  set maxDatagramBytes(bytes: number) {
    this.#options.maxDatagramBytes = bytes;
  }

  /** Cuts the link (1) or makes it lossy from now on. */
  set loss(loss: number) {
    this.#options.loss = loss;
  }

  /** When each copy of this packet arrives (none if lost). */
  arrivals(bytes: number, now: number, random: () => number): number[] {
    const o = this.#options;
    this.sent++;
    if (bytes > o.maxDatagramBytes) {
      this.oversizeDrops++;
      return [];
    }
    if (random() < o.loss) {
      this.dropped++;
      return [];
    }
    let departs = now;
    if (o.bytesPerMs !== Infinity) {
      const start = Math.max(now, this.#busyUntil);
      if ((start - now) * o.bytesPerMs > o.queueBytes) {
        this.bottleneckDrops++;
        return [];
      }
      this.#busyUntil = start + bytes / o.bytesPerMs;
      departs = this.#busyUntil;
    }
    this.bytesDelivered += bytes;
    this.largestDelivered = Math.max(this.largestDelivered, bytes);
    const copies = random() < o.duplicate ? 2 : 1;
    return Array.from({ length: copies }, () => departs + o.delayMs + random() * o.jitterMs);
  }
}

export class SimNetwork {
  now = 0;
  readonly sessions: [Session, Session];
  readonly links: [Link, Link];
  readonly #random: () => number;
  #queue: InFlight[] = [];
  /** Sees every packet a session sends (its plaintext), before the link decides its fate. */
  tap: ((from: 0 | 1, plaintext: Uint8Array) => void) | undefined;

  constructor(seed: number, link: LinkOptions, options: ReliabilityOptions = {}, reverse: LinkOptions = link) {
    this.#random = mulberry32(seed);
    const config = checkReliabilityOptions(options, "options");
    // The Sessions' own randomness (which packet numbers they skip) is seeded too: a run is a function of its seed.
    this.sessions = [new Session(config, 0, mulberry32(seed + 1)), new Session(config, 0, mulberry32(seed + 2))];
    this.links = [new Link(link), new Link(reverse)];
  }

  /**
   * Runs until `done()` holds or virtual time passes `limitMs`; `step` runs after every event (the
   * applications: reading, writing). Answers whether done() held.
   */
  run(done: () => boolean, limitMs: number, step: () => void = () => {}): boolean {
    for (;;) {
      step();
      this.#transmit();
      if (done()) return true;
      const next = Math.min(this.#queue.length > 0 ? this.#queue[0]!.at : Infinity, this.sessions[0].nextDeadline(), this.sessions[1].nextDeadline());
      if (next === Infinity || next > limitMs) return false;
      this.now = Math.max(this.now, next);
      while (this.#queue.length > 0 && this.#queue[0]!.at <= this.now) {
        const packet = this.#queue.shift()!;
        this.sessions[packet.to].handlePacket(packet.plaintext, packet.packetNumber, this.now);
      }
      for (const session of this.sessions) if (session.nextDeadline() <= this.now) session.handleTimeout(this.now);
    }
  }

  /**
   * Streams `data` from session 0 to session 1 in 64 KiB writes; `during` runs after every event (the
   * test's own doings: narrowing the path, other traffic). Answers what arrived, in order, and
   * whether all of it and the end did by `limitMs`.
   */
  stream(data: Uint8Array, limitMs: number, during: () => void = () => {}): { done: boolean; received: Uint8Array[] } {
    const [a, b] = this.sessions;
    const id = a.openStream();
    let written = 0;
    let incoming: number | undefined;
    const received: Uint8Array[] = [];
    let ended = false;
    const done = this.run(() => ended, limitMs, () => {
      during();
      while (written < data.length && a.streamWritable(id)) {
        const chunk = data.subarray(written, Math.min(data.length, written + 64 * 1024));
        a.writeStream(id, chunk);
        written += chunk.length;
        if (written === data.length) a.finishStream(id);
      }
      incoming ??= b.acceptStream();
      if (incoming === undefined) return;
      for (let piece = b.readStream(incoming); piece !== undefined; piece = b.readStream(incoming)) {
        if (piece === null) {
          ended = true;
          break;
        }
        received.push(piece);
      }
    });
    return { done, received };
  }

  #transmit(): void {
    for (const from of [0, 1] as const) {
      for (let t = this.sessions[from].pollTransmit(this.now); t !== undefined; t = this.sessions[from].pollTransmit(this.now)) {
        const plaintext = Buffer.concat(t.parts);
        this.tap?.(from, plaintext);
        for (const at of this.links[from].arrivals(plaintext.length + 29, this.now, this.#random)) {
          this.#insert({ at, to: from === 0 ? 1 : 0, packetNumber: t.packetNumber, plaintext });
        }
      }
    }
  }

  #insert(packet: InFlight): void {
    let i = this.#queue.length;
    while (i > 0 && this.#queue[i - 1]!.at > packet.at) i--;
    this.#queue.splice(i, 0, packet);
  }
}
