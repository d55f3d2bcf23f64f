// Transports on loopback for tests, and a seeded fault injector in front of a real UDP socket.
import { createHash, randomBytes } from "node:crypto";
import { afterEach } from "vitest";
import { Transport, type Connection, type TransportOptions } from "sluice";
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

/**
 * `bytes` random bytes on a new stream from `from` to `to` (16 KiB writes) while `during` runs: the
 * SHA-256 of what was sent and of what arrived.
 */
export async function streamDigests(from: Connection, to: Connection, bytes: number, during = async () => {}): Promise<{ sent: string; received: string }> {
  const payload = randomBytes(bytes);
  const writer = from.openStream().getWriter();
  const writing = (async () => {
    for (let at = 0; at < payload.length; at += 16 * 1024) await writer.write(payload.subarray(at, at + 16 * 1024));
    await writer.close();
  })();
  const reader = (await to.acceptStream())!.getReader();
  const hash = createHash("sha256");
  const reading = (async () => {
    for (let read = await reader.read(); !read.done; read = await reader.read()) hash.update(read.value);
  })();
  await during();
  await Promise.all([writing, reading]);
  return { sent: createHash("sha256").update(payload).digest("hex"), received: hash.digest("hex") };
}

/** Binds through the public entry alone ("sluice"), quiet, on loopback, and records it in `open` for closing. */
export function publicBinder(open: Transport[]): (options?: TransportOptions) => Promise<Transport> {
  return async (options = {}) => {
    const transport = await Transport.bind({ ...quiet, ...options });
    open.push(transport);
    return transport;
  };
}

/** A gateway and a joiner made by `bind`, connected: the transports and both ends of their connection. */
export async function connectedPair<O extends TransportOptions>(bind: (options: O) => Promise<Transport>, gatewayOptions = {} as O, joinerOptions = {} as O) {
  const gateway = await bind({ gateway: true, ...gatewayOptions });
  const joiner = await bind(joinerOptions);
  const [atJoiner, atGateway] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  return { gateway, joiner, atJoiner, atGateway: atGateway! };
}

/** A DATA datagram to `connectionId` that never opens (0xab bytes under no key): only its routing matters. */
export function dataPacket(connectionId: number, packetNumber = 0): Uint8Array {
  const datagram = new Uint8Array(60).fill(0xab);
  const view = new DataView(datagram.buffer);
  datagram[0] = 0x02;
  view.setUint32(1, connectionId, true);
  view.setUint32(5, packetNumber, true);
  view.setUint32(9, 0, true);
  return datagram;
}
