// The gateway process of the scale benchmark (bench/scale.mjs): one Transport that accepts every
// connection and holds it, reading nothing, so each stays idle with its keep-alives running. Run
// with --expose-gc: memory is read after a full collection.
import { Transport } from "../../dist/index.js";
import { serve } from "../lib/rpc.mjs";
import { cpuOver, startProfiler } from "./measure.mjs";

const HOST = "127.0.0.1";
/** The largest maxConnections (and the largest queue) the option validators accept. */
const MAX_CONNECTIONS_OPTION = 65536;

let gateway;
const held = [];

/** Whether a gateway with these options binds (the arena is sized, and refused, at bind). */
async function binds(options) {
  try {
    const transport = await Transport.bind({ host: HOST, gateway: true, log: null, ...options });
    await transport.close();
    return { ok: true };
  } catch (error) {
    return { ok: false, message: error.message };
  }
}

/** The largest value of `name` in [1, max] for which `binds` holds (it is monotone in both options searched), with the refusal just above it. */
async function largest(name, max, options) {
  let low = 0;
  let high = max;
  let refusal;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    const result = await binds({ ...options, [name]: middle });
    if (result.ok) low = middle;
    else {
      high = middle - 1;
      refusal = result.message;
    }
  }
  return { largest: low, refusal };
}

function memory() {
  const started = performance.now();
  for (let i = 0; i < 3; i++) globalThis.gc();
  const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, arrayBuffers, collectMs: performance.now() - started };
}

serve({
  largestMaxConnections: (options) => largest("maxConnections", MAX_CONNECTIONS_OPTION, options),
  largestQueue: (options) => largest("inboundQueuePackets", options.upTo, { maxConnections: options.maxConnections }),

  async bind(options) {
    // No accept ramp: the hold opens thousands of connections as fast as the clients go.
    gateway = await Transport.bind({ host: HOST, gateway: true, log: null, acceptRamp: [], ...options });
    (async () => {
      for (let connection = await gateway.accept(); connection; connection = await gateway.accept()) held.push(connection);
    })();
    return { address: gateway.address, publicKey: gateway.publicKey };
  },

  memory,

  /**
   * CPU of this process over `seconds` of wall time, in percent of one core; with `profile` (a file
   * path), a V8 CPU profile of that window is written there and its heaviest functions answered.
   */
  async cpu({ seconds, profile }) {
    const profiler = profile ? await startProfiler() : undefined;
    const { percent, loopDelay } = await cpuOver(seconds);
    return { percent, loopDelay, heaviest: profiler ? await profiler.stop(profile) : undefined };
  },

  stats() {
    const started = performance.now();
    const { connections, handshakes, handshakesCompleted, handshakesFailed, drops, datagramsSent, datagramsReceived } = gateway.stats();
    const statsMs = performance.now() - started; // its perConnection holds every connection's stats
    // Why held connections ended, by error message (a peer's retry after a connect it gave up on replaces its connection).
    const closed = {};
    let open = 0;
    for (const connection of held) {
      if (!connection.closed) open++;
      else {
        const why = connection.error?.message ?? "closed without error";
        closed[why] = (closed[why] ?? 0) + 1;
      }
    }
    return { connections, handshakes, handshakesCompleted, handshakesFailed, drops, datagramsSent, datagramsReceived, open, closed, statsMs };
  },
});
