// The transport's one UDP socket, behind a small interface so the listener is the same on every
// runtime (and a test can put a seeded fault injector in front of it):
//  - Node: node:dgram, with the receive buffer raised (the kernel default of ~208 KiB lost 58–64%
//    of a flood in a cross-process test; platform notes §8).
//  - Deno: Deno.listenDatagram when it exists (it needs --unstable-net), which received ~480k
//    datagrams/s of a flood here (Node's node:dgram: ~360k); else Deno's node:dgram, which received
//    only ~2k/s. Both rates are re-measured by `npm run bench` and recorded in docs/benchmarks.md.
import type { Address } from "../wire/address.ts";

/** Called once per datagram, synchronously. The bytes are valid only during the call. */
export type DatagramHandler = (datagram: Uint8Array, host: string, port: number) => void;

export interface DatagramSocket {
  readonly address: Address;
  /** Which receive path this is: "node:dgram" or "Deno.listenDatagram". */
  readonly kind: string;
  /** Sends the chunks, gathered, as one datagram. Never throws; failures go to onSendError. */
  send(chunks: readonly Uint8Array[], host: string, port: number): void;
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
  const socket = dgram.createSocket({ type, recvBufferSize: options.receiveBufferBytes, sendBufferSize: options.receiveBufferBytes });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(new Error(`cannot bind UDP ${options.host}:${options.port}: ${error.message}`, { cause: error }));
    socket.once("error", failed);
    socket.bind(options.port, options.host, () => {
      socket.off("error", failed);
      resolve();
    });
  });
  // After the bind, socket errors (ICMP unreachable reports and the like) are per-send: count them.
  socket.on("error", options.onSendError);
  socket.on("message", (datagram, remote) => options.onDatagram(datagram, remote.address, remote.port));
  const bound = socket.address();
  const onSent = (error: Error | null) => {
    if (error) options.onSendError(error);
  };
  let closed = false;
  return {
    address: { host: bound.address, port: bound.port },
    kind: "node:dgram",
    send(chunks, host, port) {
      if (closed) return;
      try {
        socket.send(chunks as Uint8Array[], port, host, onSent);
      } catch (error) {
        options.onSendError(error as Error);
      }
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

const TRANSIENT_RECEIVE_ERRORS = new Set(["ConnectionRefused", "ConnectionReset", "ConnectionAborted", "Interrupted", "TimedOut"]);

async function openDenoSocket(listen: NonNullable<DenoNamespace["listenDatagram"]>, options: SocketOptions): Promise<DatagramSocket> {
  let conn: DenoDatagramConn;
  try {
    conn = listen({ transport: "udp", hostname: options.host, port: options.port });
  } catch (error) {
    throw new Error(`cannot bind UDP ${options.host}:${options.port}: ${(error as Error).message}`, { cause: error });
  }
  let closed = false;
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
      conn.send(datagram, { transport: "udp", hostname, port }).catch(options.onSendError);
    },
    async close() {
      if (closed) return;
      closed = true;
      conn.close();
      await receiving;
    },
  };
}
