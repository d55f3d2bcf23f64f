// freenet's three "never blocks when full" tests, ported: the listener's hand-off to an established
// connection, a gateway handshake and a traversal (connect) handshake, each queue at capacity 4 with
// nobody reading it. 1000 routed datagrams each return at once: at most 4 'sent', at least 996 'full'
// (counted), never 'closed', all within 1 s. Then the established case again over a real socket.
import { createSocket } from "node:dgram";
import { afterEach, expect, test } from "vitest";
import type { Transport } from "sluice";
import { routeDatagram } from "sluice/internal";
import { bindTest, closeAll } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
async function bind(options: Parameters<typeof bindTest>[0]): Promise<Transport> {
  const transport = await bindTest(options);
  open.push(transport);
  return transport;
}

const ATTEMPTS = 1000;

/** Routes `datagram` ATTEMPTS times from one address, synchronously: the queue's consumer cannot run in between. */
function routeMany(transport: Transport, datagram: Uint8Array, port: number) {
  const outcomes = { sent: 0, full: 0, closed: 0, dropped: 0 };
  const started = performance.now();
  for (let i = 0; i < ATTEMPTS; i++) outcomes[routeDatagram(transport, datagram, "127.0.0.1", port)]++;
  return { ...outcomes, ms: performance.now() - started };
}

function dataPacket(connectionId: number, packetNumber = 0): Uint8Array {
  const datagram = new Uint8Array(60).fill(0xab);
  const view = new DataView(datagram.buffer);
  datagram[0] = 0x02;
  view.setUint32(1, connectionId, true);
  view.setUint32(5, packetNumber, true);
  view.setUint32(9, 0, true);
  return datagram;
}

function introShaped(): Uint8Array {
  const datagram = new Uint8Array(90).fill(0x5a);
  datagram[0] = 0x01;
  datagram[1] = 1;
  return datagram;
}

test("established: a connection whose consumer never reads", async () => {
  const gateway = await bind({ gateway: true, inboundQueuePackets: 4, stallConsumersOf: () => true });
  const joiner = await bind({});
  const [, held] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const result = routeMany(gateway, dataPacket(held!.stats().id), joiner.address.port);
  expect(result.ms).toBeLessThan(1000);
  expect(result.sent).toBeLessThanOrEqual(4);
  expect(result.full).toBeGreaterThanOrEqual(996);
  expect(result.closed).toBe(0);
  expect(held!.stats().drops.queueFull).toBe(result.full);
  expect(gateway.stats().drops.queueFull).toBe(result.full);
});

test("gateway handshake: a responder whose queue is not being read", async () => {
  const gateway = await bind({ gateway: true, handshakeQueuePackets: 4 });
  // The first intro starts the handshake; the rest go to its queue, which cannot drain meanwhile.
  const result = routeMany(gateway, introShaped(), 40001);
  expect(result.ms).toBeLessThan(1000);
  expect(result.sent).toBeLessThanOrEqual(4);
  expect(result.full).toBeGreaterThanOrEqual(996);
  expect(result.closed).toBe(0);
  expect(gateway.stats().handshakes).toBe(1);
});

test("traversal: a connecting side whose handshake queue is not being read", async () => {
  const peer = await bind({ handshakeQueuePackets: 4 });
  const target = { host: "127.0.0.1", port: 40002 };
  const pending = peer.connect(target, peer.publicKey, { deadlineMs: 300 }).catch((error: Error) => error);
  const result = routeMany(peer, introShaped(), target.port);
  expect(result.ms).toBeLessThan(1000);
  expect(result.sent).toBeLessThanOrEqual(4);
  expect(result.full).toBeGreaterThanOrEqual(996);
  expect(result.closed).toBe(0); // the receiver is alive
  expect(await pending).toBeInstanceOf(Error); // nobody answers at 40002
});

test("established, over a real socket: 1000 datagrams to a stalled connection are counted full within 1 s", async () => {
  const gateway = await bind({ gateway: true, inboundQueuePackets: 4, stallConsumersOf: () => true });
  const joiner = await bind({});
  const [, held] = await Promise.all([joiner.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const flooder = createSocket("udp4");
  await new Promise<void>((resolve) => flooder.bind(0, "127.0.0.1", resolve));
  const before = gateway.stats().datagramsReceived;
  const started = performance.now();
  for (let i = 0; i < ATTEMPTS; i++) flooder.send(dataPacket(held!.stats().id, i), gateway.address.port, "127.0.0.1");
  while (gateway.stats().datagramsReceived - before < ATTEMPTS && performance.now() - started < 1000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const stats = gateway.stats();
  expect(stats.datagramsReceived - before).toBeGreaterThanOrEqual(ATTEMPTS); // the flood, and the joiner's few acknowledgements
  expect(performance.now() - started).toBeLessThan(1000);
  expect(held!.stats().routed).toBeLessThanOrEqual(4);
  expect(held!.stats().drops.queueFull).toBeGreaterThanOrEqual(996);
  flooder.close();
});
