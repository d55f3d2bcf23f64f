// Burning a gateway's CPU before proving anything. The gateway runs in a child process and its own
// process.cpuUsage() is read, so the attacker's CPU is not counted. Each figure is printed as the
// gateway's CPU per datagram, and beyond that of a bare node:dgram socket measured the same way:
// the kernel and libuv cost any receiver pays (3.5-6 µs here), and for a datagram that must be
// answered, any responder (receive + a 50-byte send, 8-17 µs). The bounds hold beyond that floor.
// The machine is shared: figures move with its load, which the paired batches cancel in part.
import { afterAll, beforeAll, expect, test } from "vitest";
import { batchCost, ChildGateway } from "./child-gateway.ts";
import { bindMany, closeSockets, EvilPeer, randomIntro, sleep, type EvilSocket } from "./evil-peer.ts";
import { ALWAYS_UNDER_LOAD, bindSluice, closeAll, describe3, figure, mac1Intro, median } from "./harness.ts";
import { packetKind } from "./wire.ts";

/**
 * Paired batches per figure; the median of them is held to the bound. The random-byte intro's
 * figure sits close to its 5 µs bound on this 2-vCPU VM (2.2 to 5.4 µs over runs of one build with
 * 7 batches: a 5.39 failed once on noise alone), so it takes the median of more.
 */
const RANDOM_INTRO_BATCHES = 15;
const BATCHES = 7;
const PER_BATCH = 2000;

/**
 * The target's CPU per datagram and the floors', batch by batch in turn (the same datagrams to
 * each), so that a change in the machine's load moves both: medians of each and of the differences.
 */
async function pairedCost(target: ChildGateway, floors: ChildGateway[], sockets: EvilSocket[], make: () => Uint8Array, batches = BATCHES) {
  const totals: number[] = [];
  const beyond: number[][] = floors.map(() => []);
  for (let b = 0; b < batches; b++) {
    const packets = Array.from({ length: PER_BATCH }, make);
    const floorCosts = [];
    for (const floor of floors) floorCosts.push(await batchCost(floor, sockets, packets));
    const total = await batchCost(target, sockets, packets);
    totals.push(total);
    floorCosts.forEach((f, i) => beyond[i].push(total - f));
  }
  return { total: median(totals), beyond: beyond.map(median) };
}

describe3("CPU before any proof", () => {
  let sockets: EvilSocket[];
  let receiver: ChildGateway; // the floor of any receiver
  let responder: ChildGateway; // ... and of one that answers 50 bytes to each datagram

  beforeAll(async () => {
    sockets = await bindMany("127.0.0.2", 100);
    receiver = await ChildGateway.bare("127.0.0.1");
    responder = await ChildGateway.bare("127.0.0.1", 50);
  });
  afterAll(async () => {
    await closeAll(receiver, responder);
    await closeSockets(sockets ?? []);
  });

  test("a random-byte intro costs the gateway ≤ 5 µs (median) beyond a bare socket", async () => {
    const gateway = await ChildGateway.bind({ host: "127.0.0.1", gateway: true });
    try {
      const replies: Uint8Array[] = [];
      for (const s of sockets) s.handler = (d) => replies.push(d.bytes);
      const cost = await pairedCost(gateway, [receiver], sockets, randomIntro, RANDOM_INTRO_BATCHES);
      figure("random intro, gateway CPU (µs, median)", `${cost.total.toFixed(2)} total, ${cost.beyond[0].toFixed(2)} beyond a bare receiver`);
      expect(replies.filter((r) => packetKind(r) !== undefined)).toHaveLength(0);
      expect(cost.beyond[0]).toBeLessThanOrEqual(5);
    } finally {
      await gateway.close();
    }
  });

  test("under load, an intro with a valid mac1 and no cookie costs ≤ 10 µs, gets only a COOKIE and takes no slot", async () => {
    const gateway = await ChildGateway.bind({ host: "127.0.0.1", gateway: true, ...ALWAYS_UNDER_LOAD });
    try {
      const replies: Uint8Array[] = [];
      for (const s of sockets) s.handler = (d) => replies.push(d.bytes);
      const cost = await pairedCost(gateway, [receiver, responder], sockets, () => mac1Intro(gateway.publicKey));
      figure(
        "valid-mac1 intro without cookie under load, gateway CPU (µs, median)",
        `${cost.total.toFixed(2)} total, ${cost.beyond[0].toFixed(2)} beyond a bare receiver, ${cost.beyond[1].toFixed(2)} beyond a bare responder`,
      );
      const stats = await gateway.request<{ handshakes: number; connections: number }>("stats");
      expect({ handshakes: stats.handshakes, connections: stats.connections }).toEqual({ handshakes: 0, connections: 0 });
      const fromGateway = replies.filter((r) => packetKind(r) !== undefined);
      expect(fromGateway.length).toBeGreaterThan(0);
      expect(fromGateway.every((r) => packetKind(r) === "cookie" && r.length === 50)).toBe(true);
      expect(cost.beyond[1]).toBeLessThanOrEqual(10);
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
      await sleep(400); // the accept ramp of a young gateway: five a second
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
