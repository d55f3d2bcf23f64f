// Transports on loopback for tests, and a seeded fault injector in front of a real UDP socket.
import { afterEach } from "vitest";
import type { Transport, TransportOptions } from "sluice";
import { bindTransport, openNodeSocket, type SocketFactory, type TransportSeams } from "sluice/internal";

export const quiet = { host: "127.0.0.1", log: null } as const;

/** Small queues and tables: tests bind many transports. Seams (a socket, stalled consumers) may be given. */
export function bindTest(options: TransportOptions & TransportSeams = {}): Promise<Transport> {
  return bindTransport({ ...quiet, maxConnections: 8, maxHandshakes: 8, inboundQueuePackets: 256, ...options });
}

/**
 * A real socket whose outgoing datagrams pass `keep` first (decided in send order, so a seeded
 * `keep` replays exactly). `seen` records every datagram offered, kept or not.
 */
export function filteredSocket(keep: (datagram: Uint8Array) => boolean, seen: Uint8Array[] = []): SocketFactory {
  return async (options) => {
    const socket = await openNodeSocket(options);
    return {
      address: socket.address,
      kind: socket.kind,
      close: () => socket.close(),
      send(chunks, host, port) {
        const datagram = Buffer.concat(chunks as Uint8Array[]);
        seen.push(datagram);
        if (keep(datagram)) socket.send([datagram], host, port);
      },
    };
  };
}

/** Drops the first `count` intros (kind 0x01) this socket sends. */
export function dropFirstIntros(count: number, seen: Uint8Array[] = []): SocketFactory {
  let dropped = 0;
  return filteredSocket((datagram) => !(datagram[0] === 0x01 && dropped++ < count), seen);
}

export const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));
export const bytes = (s: string) => new TextEncoder().encode(s);

export async function closeAll(...transports: (Transport | undefined)[]): Promise<void> {
  await Promise.all(transports.map((t) => t?.close()));
}

/** bindTest() for one test file: every transport it binds is closed after each test. */
export function transportsPerTest(): (options?: Parameters<typeof bindTest>[0]) => Promise<Transport> {
  const open: Transport[] = [];
  afterEach(() => closeAll(...open.splice(0)));
  return async (options = {}) => {
    const transport = await bindTest(options);
    open.push(transport);
    return transport;
  };
}
