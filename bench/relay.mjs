// The relay's figures (docs/benchmarks.md, "The relay"): a gateway and two peers, each in a process of
// its own (bench/relay/gateway.mjs, bench/relay/peer.mjs), on 127.0.0.1. The peers' sockets stand
// behind a firewall that lets in only the gateway (as in test/ladder.test.ts), so the introduction
// finds no direct path and the connection runs over the gateway's relay; lifting the firewalls lets the
// connection's probes move it to the direct path. The gateway's relay budgets are raised out of reach
// (2^40 B/s per pair and in all): what is measured is the relay's forwarding, not its budget.
// Per run, fresh processes, one relayed connection:
//  - raw forwarding (the baseline): a credit-paced blast of 1200 B datagrams from one peer's socket,
//    through its relay id, that the gateway forwards through its relay code path to the other peer's
//    socket (bench/relay/peer.mjs says how). Then the stream: `streamBytes` in 64 KiB writes, SHA-256
//    checked at the receiver; wall time from the sender's first write to the receiver's last byte.
//    Each after an unmeasured warm-up of `warmupBytes`.
//  - 1 KiB request/response round trips relayed (after a warm-up), the firewalls lifted, the connection
//    direct, the same again: the p50 of each, and what the relay adds.
//  - the same stream again, direct (what the relay costs a stream).
//  - path opening → direct: `moveSamples` fresh relayed connections; each waits a random fraction of
//    the probe interval (so the lift falls anywhere in the probes' phase), lifts the receiver's then
//    the dialer's firewall, and times, at the dialer, from its lift to the address change that makes it
//    direct and validated ("direct", or "validated" after the peer's packets moved it).
import { fork } from "node:child_process";
import { PROBE_INTERVAL_MS } from "sluice";
import { connectTo } from "./lib/rpc.mjs";
import { median, percentile } from "./lib/report.mjs";

const MIB = 2 ** 20;
const RELAY_DEFAULTS = {
  streamBytes: 32 * MIB,
  warmupBytes: 4 * MIB,
  roundTrips: 2000,
  /** As the peers section's: Sluice's round trip takes ~1,500 exchanges on a fresh connection to settle. */
  roundTripWarmup: 2000,
  /** The connection is warm by then (the relayed round trips and two streams ran on it): only the new path is. */
  directRoundTripWarmup: 500,
  moveSamples: 8,
};
/** The highest budget options.relay allows: far beyond what one machine forwards. */
const UNLIMITED_RELAY = { bytesPerSecond: 2 ** 40, totalBytesPerSecond: 2 ** 40 };

async function child(path, execArgv = []) {
  const process_ = fork(new URL(path, import.meta.url), { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return connectTo(process_);
}

/** A gateway and two peers, each a fresh process; with `profiles`, each writes a CPU profile there as it exits. */
async function startTrio(profiles) {
  const profiled = (name) => (profiles ? ["--cpu-prof", "--cpu-prof-dir", profiles, "--cpu-prof-name", `${name}-${process.pid}-${Date.now()}.cpuprofile`] : []);
  const [gateway, a, b] = await Promise.all([child("./relay/gateway.mjs", profiled("gateway")), child("./relay/peer.mjs", profiled("sender")), child("./relay/peer.mjs", profiled("receiver"))]);
  const at = await gateway.call("bind", { relay: UNLIMITED_RELAY });
  return { gateway, at, a, b };
}

/** Fresh transports for both peers, firewalled, introduced by the gateway: a relayed connection. */
async function relayedPair({ at, a, b }) {
  const [, { publicKey }] = await Promise.all([a.call("node", { gateway: at }), b.call("node", { gateway: at })]);
  const [dialed, accepted] = await Promise.all([a.call("dial", { peer: publicKey }), b.call("accept")]);
  if (dialed.path !== "relayed" || accepted.path !== "relayed") throw new Error(`expected a relayed connection, got ${dialed.path} / ${accepted.path}`);
}

/**
 * Runs `measure()`; adds what each process was busy for (CPU seconds over the measurement's wall time)
 * and the gateway's CPU per relayed datagram: what shows which of the three processes sets the pace.
 */
async function withCosts({ gateway, a, b }, measure) {
  const ends = [gateway, a, b];
  const cpu = () => Promise.all(ends.map((end) => end.call("cpu")));
  const [before, { datagramsRelayed }] = await Promise.all([cpu(), gateway.call("stats")]);
  const result = await measure();
  const [after, stats] = await Promise.all([cpu(), gateway.call("stats")]);
  const busy = (i) => (after[i] - before[i]) / 1e6 / result.seconds;
  const relayed = stats.datagramsRelayed - datagramsRelayed;
  return { ...result, gatewayMicrosPerDatagram: (after[0] - before[0]) / relayed, busy: { gateway: busy(0), sender: busy(1), receiver: busy(2) }, relayed };
}

const busyText = ({ busy }) => `busy: gateway ${busy.gateway.toFixed(2)}, sender ${busy.sender.toFixed(2)}, receiver ${busy.receiver.toFixed(2)}`;

async function streamOnce({ a, b }, bytes) {
  const [sent, got] = await Promise.all([a.call("stream", { bytes }), b.call("streamed")]);
  if (got.received !== bytes || got.sha256 !== sent.sha256) throw new Error(`the relayed stream arrived damaged: ${got.received} of ${bytes} bytes, SHA-256 ${got.sha256 === sent.sha256 ? "matches" : "differs"}`);
  const seconds = (got.lastWall - sent.startWall) / 1000;
  return { mibPerSecond: bytes / MIB / seconds, seconds };
}

async function blastOnce({ a, b }, bytes) {
  await b.call("expectBlast", { bytes });
  const sent = await a.call("blast", { bytes });
  const got = await b.call("blastCounted");
  const seconds = (got.lastWall - sent.startWall) / 1000;
  return { mibPerSecond: got.received / MIB / seconds, lostDatagrams: sent.sent - got.datagrams, seconds };
}

/** Opens the receiver's firewall, then the dialer's; answers the dialer's time to direct (ms). */
async function liftBoth({ a, b }) {
  await b.call("open");
  return a.call("lift");
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function oneRun(options, log) {
  const trio = await startTrio(options.profiles);
  const { gateway, a, b } = trio;
  try {
    await relayedPair(trio);
    await blastOnce(trio, options.warmupBytes);
    await streamOnce(trio, options.warmupBytes);
    const forwarded = await withCosts(trio, () => blastOnce(trio, options.streamBytes));
    const relayed = await withCosts(trio, () => streamOnce(trio, options.streamBytes));
    const relayedDelivery = await a.call("delivery");
    const tripsRelayed = await a.call("rtt", { count: options.roundTrips, warmup: options.roundTripWarmup });
    if (tripsRelayed.path !== "relayed") throw new Error("the connection left the relay before its round trips were timed");
    await liftBoth(trio);
    await Promise.all([a.call("direct"), b.call("direct")]);
    const tripsDirect = await a.call("rtt", { count: options.roundTrips, warmup: options.directRoundTripWarmup });
    if (tripsDirect.path !== "direct") throw new Error("the connection was not direct while its direct round trips were timed");
    const direct = await withCosts(trio, () => streamOnce(trio, options.streamBytes));
    const moves = [];
    for (let sample = 0; sample < options.moveSamples; sample++) {
      await relayedPair(trio);
      await pause(Math.random() * PROBE_INTERVAL_MS);
      moves.push((await liftBoth(trio)).ms);
    }
    log(`\n  blast ${forwarded.mibPerSecond.toFixed(1)} MiB/s (${forwarded.lostDatagrams} lost; gateway ${forwarded.gatewayMicrosPerDatagram.toFixed(1)} µs/datagram; ${busyText(forwarded)})`
      + `\n  relayed stream ${relayed.mibPerSecond.toFixed(1)} MiB/s (gateway ${relayed.gatewayMicrosPerDatagram.toFixed(1)} µs/datagram, ${relayed.relayed} relayed; ${busyText(relayed)}; sender ${JSON.stringify(relayedDelivery)})`
      + `\n  direct stream ${direct.mibPerSecond.toFixed(1)} MiB/s (${busyText(direct)})`
      + `\n  round trip p50 relayed ${percentile(tripsRelayed.micros, 50).toFixed(0)} µs, direct ${percentile(tripsDirect.micros, 50).toFixed(0)} µs; moves ${moves.map((ms) => ms.toFixed(0)).join(" ")} ms\n`);
    return {
      forwarded,
      relayed,
      direct,
      tripRelayedP50: percentile(tripsRelayed.micros, 50),
      tripDirectP50: percentile(tripsDirect.micros, 50),
      moveP50: percentile(moves, 50),
      moveMax: Math.max(...moves),
    };
  } finally {
    await Promise.all([a, b, gateway].map((end) => end.call("close").catch(() => {})));
  }
}

/** The relay's rows: `runs` runs, each in fresh processes; every row carries its runs. */
export async function relayRows({ runs, log, options: overrides = {} }) {
  const options = { ...RELAY_DEFAULTS, ...overrides };
  const results = [];
  for (let run = 0; run < runs; run++) results.push(await oneRun(options, log));
  const of = (pick) => results.map(pick);
  const row = (name, unit, values, baseline, baselineValues, target) => ({ name, unit, value: median(values), baseline, baseline_value: median(baselineValues), target, values, baseline_values: baselineValues });
  const mib = Math.round(options.streamBytes / MIB);
  const STREAM = `relay: ${mib} MiB stream, peers forced onto the gateway's relay (3 processes, budgets lifted), SHA-256 checked`;
  const FORWARD = "the same gateway forwarding a credit-paced raw blast of 1200 B datagrams between the same two sockets, same relay";
  const TRIP = `relay: 1 KiB request/response round trip p50 (${options.roundTrips.toLocaleString("en")} per run)`;
  const twoProbes = 2 * PROBE_INTERVAL_MS;
  const MOVE = `relay: firewalls lifted → connection direct and validated (${options.moveSamples} per run, lifted at a random phase of the ${PROBE_INTERVAL_MS} ms probe interval)`;
  return [
    row(STREAM, "MiB/s", of((r) => r.relayed.mibPerSecond), FORWARD, of((r) => r.forwarded.mibPerSecond), "≥ 0.8×"),
    row(STREAM, "MiB/s", of((r) => r.relayed.mibPerSecond), "the same stream between the same peers, direct", of((r) => r.direct.mibPerSecond)),
    row("relay: gateway CPU per relayed datagram, during the stream", "µs", of((r) => r.relayed.gatewayMicrosPerDatagram), "during the raw blast", of((r) => r.forwarded.gatewayMicrosPerDatagram)),
    row(`${TRIP}, relayed`, "µs", of((r) => r.tripRelayedP50), "the same connection, direct (after the move)", of((r) => r.tripDirectP50)),
    row("relay: what the relay adds to the round trip p50 (relayed − direct)", "µs", of((r) => r.tripRelayedP50 - r.tripDirectP50), "the target: 1 ms", of(() => 1000), "≤ 1.0×"),
    row(`${MOVE}, p50`, "ms", of((r) => r.moveP50), "2 × PROBE_INTERVAL_MS", of(() => twoProbes), "≤ 1.0×"),
    row(`${MOVE}, max`, "ms", of((r) => r.moveMax), "2 × PROBE_INTERVAL_MS", of(() => twoProbes), "≤ 1.0×"),
  ];
}
