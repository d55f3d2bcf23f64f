// The incident itself (freenet #3959): one connection's consumer never reads while another socket,
// on another thread, floods that connection with 50,000 datagrams. The listener must keep routing:
// a node:http server in the same process answers every request in under 1 s, and another
// connection keeps delivering.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, test } from "vitest";
import { Transport } from "sluice";
import { ask, startWorker } from "./support/threads.ts";
import { bindTest, bytes, closeAll } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

test("a flood at a stalled connection stalls nobody else: HTTP answers, other connections deliver", async () => {
  const stalledPeer = await bindTest();
  // Its connection at the gateway never consumes its queue: the stalled consumer of the incident.
  const gateway = await bindTest({ gateway: true, inboundQueuePackets: 256, stallConsumersOf: (key) => Buffer.from(key).equals(stalledPeer.publicKey) });
  const livePeer = await bindTest();
  open.push(gateway, stalledPeer, livePeer);
  await stalledPeer.connect(gateway.address, gateway.publicKey);
  const stalled = (await gateway.accept())!;
  const live = await livePeer.connect(gateway.address, gateway.publicKey);
  const liveAtGateway = (await gateway.accept())!;

  const server = createServer((_, response) => response.end("ok"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const flooder = await startWorker("flooder");
  const flood = ask<{ sent: number }>(flooder, { port: gateway.address.port, mode: "data", count: 50_000, connectionId: stalled.stats().id });

  const latencies: number[] = [];
  const received: string[] = [];
  let flooding = true;
  void flood.then(() => (flooding = false));
  const reader = (async () => {
    for await (const message of liveAtGateway) received.push(new TextDecoder().decode(message));
  })();
  let sentLive = 0;
  const exchange = async () => {
    const started = performance.now();
    const response = await fetch(url);
    expect(await response.text()).toBe("ok");
    latencies.push(performance.now() - started);
    await live.send(bytes(`live ${sentLive++}`));
    await new Promise((resolve) => setTimeout(resolve, 20));
  };
  while (flooding) await exchange();
  const sentDuringFlood = sentLive;
  expect((await flood).sent).toBe(50_000);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the kernel's buffer drains
  const firstAfter = sentLive;
  for (let i = 0; i < 10; i++) await exchange();
  await new Promise((resolve) => setTimeout(resolve, 200));

  const stats = gateway.stats();
  expect(Math.max(...latencies)).toBeLessThan(1000);
  expect(latencies.length).toBeGreaterThanOrEqual(11);
  // While the flood overflows the kernel's receive buffer, the kernel drops some of everything,
  // live messages included (the listener counts what reaches it). After it, every message arrives.
  const afterFlood = Array.from({ length: 10 }, (_, i) => `live ${firstAfter + i}`);
  expect(received.slice(-10)).toEqual(afterFlood);
  expect(received.filter((m) => Number(m.slice(5)) < sentDuringFlood).length).toBeGreaterThanOrEqual(1);
  // The kernel drops part of the flood (its buffer overflows); every datagram that reached the
  // listener is accounted for, and all but the queue's 256 went to the stalled connection's drops.
  const dropped = Object.values(stats.drops).reduce((sum, n) => sum + n, 0);
  expect(stats.datagramsRouted + dropped).toBe(stats.datagramsReceived);
  expect(stalled.stats().drops.queueFull).toBeGreaterThan(10_000);
  expect(stalled.stats().routed).toBeLessThanOrEqual(256);
  expect(stats.listenerErrors).toBe(0);
  console.log(`liveness: ${latencies.length} HTTP requests, max ${Math.max(...latencies).toFixed(1)} ms; ${stats.datagramsReceived} datagrams received, ${stalled.stats().drops.queueFull} dropped as full; live ${received.length}/${sentLive} (${sentDuringFlood} sent during the flood)`);
  liveAtGateway.close();
  await reader;
  server.close();
  await flooder.terminate();
});
