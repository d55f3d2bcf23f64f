// What the network-namespace scenarios share: the gate that skips them (or fails them in CI) where
// namespaces cannot be made, the printed figures, and the usual topology: a gateway on the public
// segment and two peers, each behind a NAT of its own, that learn their mapped addresses from the
// gateway and open to each other by simultaneous open.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Address } from "sluice";
import { Bed, netnsUnavailable, type Host, type Nat, type NatBehaviour, type Segment } from "./bed.ts";
import type { Peer, PeerOptions, StreamRead, StreamWritten } from "./peer.ts";

export const CONE: NatBehaviour = { mapping: "cone", filtering: "address-and-port" };
export const FULL_CONE: NatBehaviour = { mapping: "cone", filtering: "endpoint-independent" };
export const SYMMETRIC: NatBehaviour = { mapping: "symmetric", filtering: "address-and-port" };

export const MiB = 2 ** 20;

/**
 * describe() where network namespaces can be made. Elsewhere it says so loudly, and then fails
 * under CI (which runs as root on Linux: a bed that cannot run there is a broken CI) or skips.
 */
export function describeNetns(title: string, body: () => void): void {
  const unavailable = netnsUnavailable();
  if (unavailable === undefined) {
    describe(title, body);
    return;
  }
  const banner = "!".repeat(100);
  console.warn(`${banner}\n!! network-namespace tests ${process.env.CI ? "FAIL" : "SKIPPED"}: ${title}\n!! ${unavailable}\n${banner}`);
  if (process.env.CI) test(`${title}: network namespaces are available (required in CI)`, () => expect.fail(unavailable));
  else describe.skip(title, body);
}

/** A bed for the enclosing describe(): made before its tests, removed after them (peers first). */
export function useBed(): () => Bed {
  let bed: Bed | undefined;
  beforeAll(async () => {
    bed = await Bed.create();
  });
  afterAll(() => bed?.destroy());
  return () => {
    if (bed === undefined) throw new Error("the bed was not made (see beforeAll's error)");
    return bed;
  };
}

/** One figure the lead can quote, printed on its own line. */
export function figure(scenario: string, text: string): void {
  console.log(`[netns] ${scenario}: ${text}`);
}

export const ms = (value: number): string => `${value.toFixed(1)} ms`;
export const mibPerSecond = (bytes: number, elapsedMs: number): string => `${(bytes / MiB / (elapsedMs / 1000)).toFixed(1)} MiB/s`;
export const show = (address: Address | undefined): string => (address === undefined ? "none" : `${address.host}:${address.port}`);

/** The gateway on the public segment and two peers, A and B, each behind its own NAT. */
interface NatPair {
  internet: Segment;
  gateway: Peer;
  gatewayAddress: Address;
  /** Where the gateway runs, and its secret key (hex): what restarting it as itself takes. */
  gatewayHost: Host;
  gatewaySecretKey: string;
  natA: Nat;
  natB: Nat;
  hostA: Host;
  hostB: Host;
  a: Peer;
  b: Peer;
}

/** Builds the usual topology and binds the three Sluice nodes (the gateway on port 7000). */
export async function natPair(bed: Bed, behaviourA: NatBehaviour, behaviourB: NatBehaviour, gatewayOptions: PeerOptions = {}, peerOptions: PeerOptions = {}): Promise<NatPair> {
  const internet = await bed.internet();
  // One after the other, so the addresses are always the same: gateway .2, natA .3, natB .4.
  const gatewayHost = await bed.host("gateway", internet);
  const natA = await bed.nat("natA", internet, behaviourA);
  const natB = await bed.nat("natB", internet, behaviourB);
  const [hostA, hostB] = await Promise.all([bed.host("a", natA.lan), bed.host("b", natB.lan)]);
  const gateway = bed.peer(gatewayHost);
  const a = bed.peer(hostA);
  const b = bed.peer(hostB);
  const [bound] = await Promise.all([gateway.bind({ port: 7000, gateway: true, ...gatewayOptions }), a.bind(peerOptions), b.bind(peerOptions)]);
  return {
    internet, gateway, gatewayAddress: { host: gatewayHost.address, port: bound.address.port }, gatewayHost, gatewaySecretKey: bound.secretKey, natA, natB, hostA, hostB, a, b,
  };
}

/** `peer` connects to `gateway` (which accepts): its connection's number. */
export async function joinGateway(peer: Peer, gateway: Peer, gatewayAddress: Address): Promise<number> {
  const [joined] = await Promise.all([peer.connect(gatewayAddress, gateway.publicKey), gateway.accept()]);
  return joined.connection;
}

/** A asks the gateway for B (connectVia through A's connection `aToGateway`), B accepts: both ends, and how long A's call took. */
export async function introduce(a: Peer, aToGateway: number, b: Peer) {
  const [asked, accepted] = await Promise.all([a.connectVia(aToGateway, b.publicKey), b.accept()]);
  return { ab: asked.connection, ba: accepted.connection, asked, accepted };
}

/** A stream of `bytes` (1 MiB) A→B, checked whole (SHA-256): answers how long the writer took. */
export async function checkStream(a: Peer, ab: number, b: Peer, ba: number, bytes = 1 * MiB): Promise<number> {
  const [written, read] = await Promise.all([a.writeStream(ab, bytes, 20_000), b.readStream(ba, 20_000)]);
  expect(read.bytes).toBe(bytes);
  expect(read.sha256).toBe(written.sha256);
  return written.ms;
}

/** `peer` connects to the gateway: answers its address as the gateway saw it (transport.externalAddress). */
async function learnExternalAddress(peer: Peer, pair: NatPair): Promise<Address> {
  await peer.connect(pair.gatewayAddress, pair.gateway.publicKey);
  const { externalAddress } = await peer.info();
  if (externalAddress === undefined) throw new Error(`peer ${peer.name} learned no external address from the gateway`);
  return externalAddress;
}

interface OpenedPair {
  /** A's connection to B, and B's to A (each peer's number for it). */
  ab: number;
  ba: number;
  /** From the later connect() call to the later of the two resolving. */
  connectMs: number;
  externalA: Address;
  externalB: Address;
}

/**
 * A and B learn their mapped addresses from the gateway, swap them and their keys through the test
 * (a rendezvous would), and both call connect() at once: a simultaneous open through both NATs.
 */
export async function simultaneousOpen(pair: NatPair): Promise<OpenedPair> {
  const { a, b } = pair;
  const [externalA, externalB] = await Promise.all([learnExternalAddress(a, pair), learnExternalAddress(b, pair)]);
  const [toB, toA] = await Promise.all([a.connect(externalB, b.publicKey), b.connect(externalA, a.publicKey)]);
  const later = Math.max(toB.startedAt, toA.startedAt);
  const connectMs = Math.max(toB.startedAt + toB.ms, toA.startedAt + toA.ms) - later;
  return { ab: toB.connection, ba: toA.connection, connectMs, externalA, externalB };
}

/**
 * A streams `bytes` to B over `ab`/`ba`; once B has read `remapAfterBytes`, `nat` gives `host` a new
 * mapping. Both ends' accounts, checked whole and identical; the new port, and when the old mapping
 * was cut and the new one went live.
 */
export async function streamAcrossRemap(
  a: Peer, b: Peer, ab: number, ba: number, nat: Nat, host: Host, { bytes, remapAfterBytes, timeoutMs }: { bytes: number; remapAfterBytes: number; timeoutMs: number },
): Promise<{ written: StreamWritten; read: StreamRead; port: number | undefined; cutAt: number; liveAt: number }> {
  const writing = a.writeStream(ab, bytes, timeoutMs);
  const reading = b.readStream(ba, timeoutMs, 256 * 1024);
  await b.event((e) => e.event === "progress" && e.bytes! >= remapAfterBytes, 10_000, `${remapAfterBytes} bytes read`);
  const remap = await nat.remap(host);
  const [written, read] = await Promise.all([writing, reading]);
  expect(read.lastAt, "the stream ended before the new mapping was live").toBeGreaterThan(remap.liveAt);
  expect(read.bytes).toBe(bytes);
  expect(read.sha256).toBe(written.sha256);
  return { written, read, ...remap };
}
