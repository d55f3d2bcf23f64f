// A client process of the scale benchmark (bench/scale.mjs): many peers, each its own Transport (one
// UDP socket: a Transport holds at most one connection to a given address, so every connection to the
// one gateway needs a socket of its own). Peers are bound ahead (`bind`), then connect when told.
import { Transport } from "../../dist/index.js";
import { serve } from "../lib/rpc.mjs";
import { cpuOver } from "./measure.mjs";
import { loopbackHost } from "../lib/hosts.mjs";

/**
 * Every peer has a loopback address of its own, as peers on the internet do: the gateway's per-IP
 * budgets (32 connections, 8 handshakes at once, 16 intros then 8 a second) stalled the hold at 32
 * connections when every peer came from 127.0.0.1, and with 8 peers an address the storm's intro
 * re-sends used up the per-IP intro budget. Peer i binds 127.10.x.y (all of 127.0.0.0/8 is loopback
 * on Linux).
 */
const hostOf = (peer) => loopbackHost(peer, 10);
/** A client peer holds one connection: the smallest arena and a modest socket buffer. */
const PEER_OPTIONS = { log: null, maxConnections: 1, maxHandshakes: 1, inboundQueuePackets: 16, receiveBufferBytes: 256 * 1024 };
/** A connect that failed is tried again this many times (the hold wants every connection it can get). */
const CONNECT_ATTEMPTS = 3;

const ready = [];
const connected = [];
/** Every peer bound, for the transport-level counters. */
const bound = [];

const take = (count) => {
  if (ready.length < count) throw new Error(`${count} peers asked for, ${ready.length} bound`);
  return ready.splice(0, count);
};

/** Connects `peer`; answers its connect time in ms, or the error's message. */
async function connect(peer, gateway) {
  const started = performance.now();
  try {
    connected.push(await peer.connect(gateway.address, gateway.publicKey));
    return { ms: performance.now() - started };
  } catch (error) {
    return { error: error.message };
  }
}

serve({
  cpu: ({ seconds }) => cpuOver(seconds),

  /** What the held connections sent and received so far, summed: the idle window's datagrams by cause. */
  totals() {
    const sum = { packetsSent: 0, packetsReceived: 0, ackOnlyPackets: 0, tailLossProbes: 0, retransmissionTimeouts: 0, packetsLost: 0, spuriousLosses: 0 };
    const rtts = [];
    for (const connection of connected) {
      const delivery = connection.stats().delivery;
      for (const key of Object.keys(sum)) sum[key] += delivery[key];
      rtts.push(delivery.rttMs);
    }
    rtts.sort((a, b) => a - b);
    sum.rttMsP50 = rtts[Math.floor(rtts.length / 2)] ?? 0;
    sum.datagramsSent = 0;
    sum.datagramsReceived = 0;
    for (const peer of bound) {
      const { datagramsSent, datagramsReceived } = peer.stats();
      sum.datagramsSent += datagramsSent;
      sum.datagramsReceived += datagramsReceived;
    }
    return sum;
  },

  /**
   * Binds `count` peers, numbered from `first` across every client process (which address each
   * takes), pinging after `keepAliveMs` of silence (default: the library's).
   */
  async bind({ count, first, keepAliveMs }) {
    const reliability = keepAliveMs === undefined ? undefined : { keepAliveMs, maxKeepAliveMs: Math.max(keepAliveMs, 60_000) };
    for (let i = 0; i < count; i++) {
      const peer = await Transport.bind({ ...PEER_OPTIONS, host: hostOf(first + i), reliability });
      ready.push(peer);
      bound.push(peer);
    }
    return { bound: ready.length };
  },

  /** Connects `count` bound peers, `concurrency` at a time, each tried up to CONNECT_ATTEMPTS times. */
  async hold({ gateway, count, concurrency }) {
    const peers = take(count);
    const errors = new Map();
    let established = 0;
    const worker = async () => {
      for (let peer = peers.pop(); peer; peer = peers.pop()) {
        for (let attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
          const result = await connect(peer, gateway);
          if (result.error === undefined) {
            established++;
            break;
          }
          errors.set(result.error, (errors.get(result.error) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { established, errors: Object.fromEntries(errors) };
  },

  /** Sequential connects of `count` bound peers: connect times with nothing else going on. */
  async sequential({ gateway, count }) {
    const times = [];
    for (const peer of take(count)) times.push(await connect(peer, gateway));
    return times;
  },

  /**
   * The storm: peer j of this process starts its connect at `startWall + offsets[j]` (wall clock,
   * ms); answers each connect's time or error, and the datagrams it sent by the time all settled.
   */
  async storm({ gateway, startWall, offsets }) {
    const peers = take(offsets.length);
    const delay = (offset) => Math.max(0, startWall + offset - (performance.timeOrigin + performance.now()));
    const settled = await Promise.all(peers.map((peer, j) => new Promise((resolve) => setTimeout(() => resolve(connect(peer, gateway)), delay(offsets[j])))));
    // What each sent to get there (intros, confirms; a connection's first packets once it is up).
    return settled.map((result, j) => ({ ...result, sent: peers[j].stats().datagramsSent }));
  },
});
