// The transport's one UDP socket, behind a small interface so the listener is the same on every
// runtime (and a test can put a seeded fault injector in front of it):
//  - Node: node:dgram, with the receive buffer raised (the kernel default of ~208 KiB lost 58–64%
//    of a flood in a cross-process test; platform notes §8).
//  - Deno: Deno.listenDatagram when it exists (it needs --unstable-net), which received ~480k
//    datagrams/s of a flood here (Node's node:dgram: ~360k); else Deno's node:dgram, which received
//    only ~2k/s. Both rates are re-measured by `npm run bench` and recorded in docs/benchmarks.md.
import { SluiceError } from "../errors/errors.ts";
import { addressKey, type Address } from "../wire/address.ts";

/**
 * close() waits at most this long for sends already issued to leave: node:dgram drops a send issued
 * just before socket.close() (its completion comes on a later tick), and a transport's
 * last datagrams are its connections' CLOSEs. On loopback they leave within a millisecond.
 */
const CLOSE_SEND_WAIT_MS = 100;

/** Called once per datagram, synchronously. The bytes are valid only during the call. */
export type DatagramHandler = (datagram: Uint8Array, host: string, port: number) => void;

export interface DatagramSocket {
  readonly address: Address;
  /** Which receive path this is: "node:dgram" or "Deno.listenDatagram". */
  readonly kind: string;
  /** Sends the chunks, gathered, as one datagram. Never throws; failures go to onSendError. */
  send(chunks: readonly Uint8Array[], host: string, port: number): void;
  /** Closes the socket once the sends already issued have left (waiting at most CLOSE_SEND_WAIT_MS). */
  close(): Promise<void>;
}

export interface SocketOptions {
  host: string;
  port: number;
  receiveBufferBytes: number;
  onDatagram: DatagramHandler;
  /** A send failed (unreachable host, socket closed...): counted by the transport, never thrown. */
  onSendError: (error: Error) => void;
  /** The transport's `log` option: where a warning about the socket goes; null for silence. */
  log: ((message: string) => void) | null;
}

export type SocketFactory = (options: SocketOptions) => Promise<DatagramSocket>;

interface DenoDatagramConn {
  addr: { hostname: string; port: number };
  receive(buffer?: Uint8Array): Promise<[Uint8Array, { hostname: string; port: number }]>;
  send(data: Uint8Array, addr: { transport: "udp"; hostname: string; port: number }): Promise<number>;
  close(): void;
}
interface DenoNamespace {
  listenDatagram?: (options: { transport: "udp"; hostname: string; port: number }) => DenoDatagramConn;
}

/**
 * What a Deno without Deno.listenDatagram is told, once per process (through a transport that logs):
 * the fallback is worth a warning, as a transfer ran ~18× slower and nothing else says why.
 */
const DENO_WITHOUT_UNSTABLE_NET = "sluice: Deno.listenDatagram is not available, so UDP goes through Deno's node:dgram, which is "
  + "much slower (a transfer ran ~18× slower). Run Deno with --unstable-net, or add \"unstable\": [\"net\"] to deno.json.";
let toldDenoWithoutUnstableNet = false;

/** The best socket this runtime offers. */
export const openSocket: SocketFactory = (options) => {
  const deno = (globalThis as { Deno?: DenoNamespace }).Deno;
  if (typeof deno?.listenDatagram === "function") return openDenoSocket(deno.listenDatagram, options);
  if (deno !== undefined && !toldDenoWithoutUnstableNet && options.log !== null) {
    toldDenoWithoutUnstableNet = true;
    options.log(DENO_WITHOUT_UNSTABLE_NET);
  }
  return openNodeSocket(options);
};

export async function openNodeSocket(options: SocketOptions): Promise<DatagramSocket> {
  const dgram = await import("node:dgram");
  const type = options.host.includes(":") ? "udp6" : "udp4";
  const socket = dgram.createSocket({ type, recvBufferSize: options.receiveBufferBytes, sendBufferSize: options.receiveBufferBytes, lookup: await literalLookup() });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => {
      // A socket that did not bind still holds its handle (two UDPWraps stayed active after a failed bind).
      try {
        socket.close();
      } catch {
        // closed already
      }
      reject(bindFailed(options, error));
    };
    socket.once("error", failed);
    try {
      socket.bind(options.port, options.host, () => {
        socket.off("error", failed);
        resolve();
      });
    } catch (error) {
      // Deno's node:dgram throws here where Node emits 'error' (a missing --allow-net: NotCapable).
      socket.off("error", failed);
      failed(error as Error);
    }
  });
  // After the bind, socket errors (ICMP unreachable reports and the like) are per-send: count them.
  socket.on("error", options.onSendError);
  socket.on("message", (datagram, remote) => options.onDatagram(datagram, remote.address, remote.port));
  const bound = socket.address();
  const sending = new SendsInFlight();
  const onSent = (error: Error | null) => {
    if (error) options.onSendError(error);
    sending.finished();
  };
  let closed = false;
  return {
    address: { host: bound.address, port: bound.port },
    kind: "node:dgram",
    send(chunks, host, port) {
      if (closed) return;
      sending.started();
      try {
        // One chunk goes alone: a list costs node:dgram a new array and a Buffer per chunk (the sealed
        // datagram is always one).
        socket.send(chunks.length === 1 ? chunks[0]! : (chunks as Uint8Array[]), port, host, onSent);
      } catch (error) {
        sending.finished();
        options.onSendError(error as Error);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await sending.settled();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

type Lookup = NonNullable<import("node:dgram").SocketOptions["lookup"]>;

/**
 * node:dgram looks up every destination before each send, IP literals included, and dns.lookup
 * answers a literal on the next tick: an isIP test, a process.nextTick and a closure per datagram
 * (~2% of a stream's CPU in the profile; see docs/benchmarks.md, "The delivery path, third pass").
 * A connection's address is always a literal (resolve.ts resolved names before connecting), so this
 * answers a literal at once (the last one seen costs a string comparison) and hands anything else
 * to dns.lookup.
 */
async function literalLookup(): Promise<Lookup> {
  const [{ lookup }, { isIP }] = await Promise.all([import("node:dns"), import("node:net")]);
  let lastLiteral = "";
  let lastAnswer = "";
  return (address, options, callback) => {
    // node:dgram passes the socket's family as a number (4 or 6), whatever its types say.
    const family = typeof options === "number" ? options : (options.family as number | undefined);
    if (address !== lastLiteral) {
      const kind = isIP(address);
      if (kind === 0) return lookup(address, options, callback);
      lastLiteral = address;
      // A dual-stack (udp6) socket reaches an IPv4 peer at its IPv4-mapped address: given the IPv4
      // form, every send failed, and a connect() from "::" to an IPv4 literal timed out.
      lastAnswer = kind === 4 && family === 6 ? `::ffff:${address}` : address;
    }
    callback(null, lastAnswer, family ?? isIP(lastAnswer));
  };
}

/** Sends issued and not yet done, so that close() can let them leave first. */
class SendsInFlight {
  #count = 0;
  #drained: (() => void) | undefined;

  started(): void {
    this.#count++;
  }

  finished(): void {
    if (--this.#count === 0) this.#drained?.();
  }

  /** Resolves once none is in flight, or after CLOSE_SEND_WAIT_MS. */
  async settled(): Promise<void> {
    if (this.#count === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
      timer = setTimeout(resolve, CLOSE_SEND_WAIT_MS);
    });
    clearTimeout(timer);
  }
}

function bindFailed(options: SocketOptions, cause: unknown): SluiceError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new SluiceError("ERR_SLUICE_BIND_FAILED", `cannot bind UDP ${addressKey(options.host, options.port)}: ${reason}`, { cause });
}

const TRANSIENT_RECEIVE_ERRORS = new Set(["ConnectionRefused", "ConnectionReset", "ConnectionAborted", "Interrupted", "TimedOut"]);

async function openDenoSocket(listen: NonNullable<DenoNamespace["listenDatagram"]>, options: SocketOptions): Promise<DatagramSocket> {
  let conn: DenoDatagramConn;
  try {
    conn = listen({ transport: "udp", hostname: options.host, port: options.port });
  } catch (error) {
    throw bindFailed(options, error);
  }
  let closed = false;
  const sending = new SendsInFlight();
  // The receive loop awaits the socket, never the handler: each datagram is routed synchronously.
  // One buffer is reused: the handler copies what it keeps before it returns.
  const buffer = new Uint8Array(65536);
  const receiving = (async () => {
    while (!closed) {
      let received: [Uint8Array, { hostname: string; port: number }];
      try {
        received = await conn.receive(buffer);
      } catch (error) {
        if (closed) return;
        options.onSendError(error as Error);
        // An ICMP report of an earlier send surfaces here; each is one event, so going on cannot
        // spin. Any other error ends the listener (as in freenet), rather than retrying forever.
        if (TRANSIENT_RECEIVE_ERRORS.has((error as Error).name)) continue;
        return;
      }
      options.onDatagram(received[0], received[1].hostname, received[1].port);
    }
  })();
  return {
    address: { host: conn.addr.hostname, port: conn.addr.port },
    kind: "Deno.listenDatagram",
    send(chunks, hostname, port) {
      if (closed) return;
      let datagram: Uint8Array;
      if (chunks.length === 1) datagram = chunks[0]!;
      else {
        datagram = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
        let at = 0;
        for (const chunk of chunks) {
          datagram.set(chunk, at);
          at += chunk.length;
        }
      }
      sending.started();
      conn.send(datagram, { transport: "udp", hostname, port }).catch(options.onSendError).finally(() => sending.finished());
    },
    async close() {
      if (closed) return;
      closed = true;
      await sending.settled();
      conn.close();
      await receiving;
    },
  };
}
