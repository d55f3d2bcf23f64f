// Burning a gateway's CPU before proving anything. The gateway runs in a child process and its own
// process.cpuUsage() is read, so the attacker's CPU is not counted. Every figure is the gateway's
// CPU per datagram minus that of a bare node:dgram socket measured the same way (the kernel and
// libuv cost any receiver pays), and both are printed.
import { afterAll, beforeAll, expect, test } from "vitest";
import { ChildGateway, type Usage } from "./child-gateway.ts";
import { bindMany, closeSockets, EvilPeer, randomIntro, sleep, type EvilSocket } from "./evil-peer.ts";
import { ALWAYS_UNDER_LOAD, bindSluice, closeAll, describe3, figure, mac1Intro, median } from "./harness.ts";
import { packetKind } from "./wire.ts";

const BATCHES = 7;
const PER_BATCH = 2000;

const cpuMicros = (before: Usage, after: Usage) =>
  after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system;

/** Median CPU µs per datagram the target spent on batches of `make()` datagrams from `sockets`. */
async function cpuPerDatagram(target: ChildGateway, sockets: EvilSocket[], make: () => Uint8Array): Promise<number> {
  const perDatagram: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const packets = Array.from({ length: PER_BATCH }, make);
    await sleep(20);
    const before = await target.usage();
    for (let i = 0; i < PER_BATCH; i++) {
      sockets[i % sockets.length].send(packets[i], target.address);
      if (i % 100 === 99) await new Promise(setImmediate);
    }
    await sleep(40);
    const after = await target.receivedAtLeast(before.datagramsReceived + PER_BATCH);
    perDatagram.push(cpuMicros(before, after) / Math.max(1, after.datagramsReceived - before.datagramsReceived));
  }
  return median(perDatagram);
}

describe3("CPU before any proof", () => {
  let bare: ChildGateway;
  let sockets: EvilSocket[];
  let floor: number;

  beforeAll(async () => {
    bare = await ChildGateway.bare("127.0.0.1");
    sockets = await bindMany("127.0.0.2", 100);
    floor = await cpuPerDatagram(bare, sockets, randomIntro);
    figure("bare node:dgram receiver, CPU per datagram (µs, median)", floor.toFixed(2));
  });
  afterAll(async () => {
    await bare?.close();
    await closeSockets(sockets ?? []);
  });

  test("a random-byte intro costs the gateway ≤ 5 µs (median) beyond a bare socket", async () => {
    const gateway = await ChildGateway.bind({ host: "127.0.0.1", gateway: true });
    try {
      const replies: Uint8Array[] = [];
      for (const s of sockets) s.handler = (d) => replies.push(d.bytes);
      const perIntro = await cpuPerDatagram(gateway, sockets, randomIntro);
      figure("random intro, gateway CPU (µs, median)", `${perIntro.toFixed(2)} total, ${(perIntro - floor).toFixed(2)} beyond the floor`);
      expect(replies).toHaveLength(0);
      expect(perIntro - floor).toBeLessThanOrEqual(5);
    } finally {
      await gateway.close();
    }
  });

  test("under load, an intro with a valid mac1 and no cookie costs ≤ 10 µs, gets only a COOKIE and takes no slot", async () => {
    const gateway = await ChildGateway.bind({ host: "127.0.0.1", gateway: true, ...ALWAYS_UNDER_LOAD });
    try {
      const replies: Uint8Array[] = [];
      for (const s of sockets) s.handler = (d) => replies.push(d.bytes);
      const perIntro = await cpuPerDatagram(gateway, sockets, () => mac1Intro(gateway.publicKey));
      figure("valid-mac1 intro without cookie under load, gateway CPU (µs, median)", `${perIntro.toFixed(2)} total, ${(perIntro - floor).toFixed(2)} beyond the floor`);
      const stats = await gateway.request<{ handshakes: number; connections: number }>("stats");
      expect({ handshakes: stats.handshakes, connections: stats.connections }).toEqual({ handshakes: 0, connections: 0 });
      expect(replies.length).toBeGreaterThan(0);
      expect(replies.every((r) => packetKind(r) === "cookie" && r.length === 50)).toBe(true);
      expect(perIntro - floor).toBeLessThanOrEqual(10);
    } finally {
      await gateway.close();
    }
  });
});

describe3("a flood of intros", () => {
  test("5,000 intros/s from 5,000 ports: every legitimate connect succeeds, p50 ≤ 10× idle", async () => {
    const gateway = await ChildGateway.bind({ host: "127.0.0.1", gateway: true });
    // The flood: 500 ports on each of 10 loopback IPs, one third random bytes, one third with a
    // valid mac1, one third replays of two intros whose handshakes really completed.
    const floodSockets = (await Promise.all(Array.from({ length: 10 }, (_, i) => bindMany(`127.0.1.${i + 1}`, 500)))).flat();
    for (const s of floodSockets) s.handler = () => {};
    const captured: Uint8Array[] = [];
    const capturers = await Promise.all([EvilPeer.bind("127.0.0.2"), EvilPeer.bind("127.0.0.4")]);
    const legitimate = await Promise.all(Array.from({ length: 12 }, (_, i) => bindSluice({ host: `127.0.2.${i + 1}` })));
    try {
      for (const c of capturers) {
        let first: Uint8Array | undefined;
        await c.connect(gateway.address, gateway.publicKey, { onIntro: (i) => void (first ??= i) });
        captured.push(first!);
      }
      const connectMs = async (node: (typeof legitimate)[number]) => {
        const started = performance.now();
        const connection = await node.connect(gateway.address, gateway.publicKey);
        const ms = performance.now() - started;
        expect(connection.remotePublicKey).toEqual(gateway.publicKey);
        return ms;
      };
      await sleep(1000); // the accept ramp of a young gateway: five a second
      const idle: number[] = [];
      for (const node of legitimate.slice(0, 6)) {
        idle.push(await connectMs(node));
        await sleep(250);
      }
      const make = [randomIntro, () => mac1Intro(gateway.publicKey), () => captured[Math.random() < 0.5 ? 0 : 1]];
      let sent = 0;
      const started = performance.now();
      const flood = setInterval(() => {
        const due = Math.floor((performance.now() - started) * 5) - sent;
        for (let i = 0; i < due; i++, sent++) floodSockets[sent % floodSockets.length].send(make[sent % 3](), gateway.address);
      }, 5);
      const underFlood: number[] = [];
      const outcomes: string[] = [];
      try {
        await sleep(300);
        for (const node of legitimate.slice(6)) {
          underFlood.push(await connectMs(node).catch((e) => (outcomes.push(String(e)), Number.NaN)));
          await sleep(250);
        }
      } finally {
        clearInterval(flood);
      }
      const seconds = (performance.now() - started) / 1000;
      figure("flood", `${sent} intros in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s) from ${floodSockets.length} ports`);
      figure("legitimate connect p50, idle vs under flood (ms)", `${median(idle).toFixed(2)} vs ${median(underFlood).toFixed(2)}`);
      figure("connects under flood (ms)", underFlood.map((m) => m.toFixed(1)).join(" "));
      expect(outcomes).toEqual([]);
      expect(median(underFlood)).toBeLessThanOrEqual(10 * median(idle));
    } finally {
      await closeAll(...legitimate, ...capturers);
      await closeSockets(floodSockets);
      await gateway.close();
    }
  }, 20_000);
});
