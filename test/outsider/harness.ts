// What the attack tests share: the 3.0 gate, Sluice nodes on loopback, cheap forged intros and the
// figures they print.
import { afterEach, describe } from "vitest";
import { PROTOCOL_VERSION, Transport, type TransportStats } from "sluice";
import { randomIntro } from "./evil-peer.ts";
import { mac, mac1Key } from "./noise.ts";
import { INTRO } from "./wire.ts";

/**
 * The attacks speak protocol 3.0; against an older build they are skipped, not failed
 * (OUTSIDER_FORCE=1 runs them anyway, to see the harness fail there).
 */
export const describe3 = describe.skipIf(PROTOCOL_VERSION.major < 3 && process.env.OUTSIDER_FORCE !== "1");

type TransportOptions = Parameters<typeof Transport.bind>[0];

/** A Sluice transport on loopback, quiet. Legitimate peers live on 127.0.0.3, attackers elsewhere. */
export function bindSluice(options: TransportOptions = {}): Promise<Transport> {
  return Transport.bind({ host: "127.0.0.3", log: null, ...options });
}

/** The spec's "0 means always" under load: every intro needs a cookie. */
export const ALWAYS_UNDER_LOAD: TransportOptions = { underLoadIntrosPerSecond: 0 };

export type Closable = { close(): Promise<unknown> };

export const closeAll = (...closables: (Closable | undefined)[]) => Promise.all(closables.map((c) => c?.close()));

/** A `track` for this test file: whatever it is given is closed when the test ends. */
export function closedAfterEach(): <T extends Closable>(closable: T) => T {
  const open: Closable[] = [];
  afterEach(async () => {
    await closeAll(...open.splice(0));
  });
  return (closable) => (open.push(closable), closable);
}

export const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
export const bytes = (s: string) => new TextEncoder().encode(s);

/**
 * Random bytes with a correct mac1: passes the responder's first cheap check. Costs the attacker one
 * BLAKE2s and no X25519 (S_R is public), so it is the cheapest intro that reaches step 3.
 */
export function mac1Intro(responderStatic: Uint8Array): Uint8Array {
  const packet = randomIntro();
  packet.set(mac(mac1Key(responderStatic), packet.subarray(0, INTRO.mac1)), INTRO.mac1);
  packet.fill(0, INTRO.mac2);
  return packet;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Prints a measured figure where the test log keeps it. */
export function figure(name: string, value: unknown): void {
  console.log(`[outsider] ${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Waits until `condition` holds or `timeoutMs` passes; answers whether it held. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 2000, stepMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

type DropReason = keyof TransportStats["drops"];

/**
 * What `transport` counted since the snapshot `before`: datagrams received, routed, sent and relayed
 * (and their bytes), each drop reason, and its listener errors (not a difference: any is a bug).
 */
export function countedSince(transport: Transport, before: TransportStats) {
  const after = transport.stats();
  const drops = Object.fromEntries(Object.keys(after.drops).map((reason) => [reason, after.drops[reason as DropReason] - before.drops[reason as DropReason]]));
  return {
    received: after.datagramsReceived - before.datagramsReceived,
    routed: after.datagramsRouted - before.datagramsRouted,
    sent: after.datagramsSent - before.datagramsSent,
    bytesSent: after.bytesSent - before.bytesSent,
    relayed: after.datagramsRelayed - before.datagramsRelayed,
    bytesRelayed: after.bytesRelayed - before.bytesRelayed,
    ...(drops as Record<DropReason, number>),
    dropped: Object.values(drops).reduce((a, b) => a + b, 0),
    listenerErrors: after.listenerErrors,
  };
}
