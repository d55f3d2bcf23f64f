// Hostile input at a live transport: 30,000 datagrams (seeded: thousands of each kind) of random bytes, truncated headers, wrong
// lengths, unknown versions, bad tags, replays of a real packet, oversize packets and unknown
// connection ids, from another thread. Nothing escapes the listener, every datagram that reaches it
// is counted under a reason, and real traffic still flows.
import { afterEach, expect, test } from "vitest";
import { Transport } from "sluice";
import { ask, startWorker } from "./support/threads.ts";
import { bindTest, bytes, closeAll, filteredSocket, text } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));

test("30,000 hostile datagrams: no exception, all counted, real traffic still flows", async () => {
  const gateway = await bindTest({ gateway: true });
  const wire: Uint8Array[] = [];
  const peer = await bindTest({ socket: filteredSocket(() => true, wire) });
  open.push(gateway, peer);
  const [toGateway, atGateway] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  await toGateway.send(bytes("first"));
  const received: string[] = [];
  const reader = (async () => {
    for await (const message of atGateway!) received.push(text(message)!);
  })();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const captured = wire.filter((d) => d[0] === 0x02).at(-1)!; // the real "first" message, to replay

  const flooder = await startWorker("flooder");
  const { sent } = await ask<{ sent: number }>(flooder, {
    port: gateway.address.port, mode: "hostile", count: 30_000, connectionId: atGateway!.stats().id, captured, seed: 0x5eed, burstGapMs: 1,
  });
  expect(sent).toBe(30_000);
  await new Promise((resolve) => setTimeout(resolve, 300));

  await toGateway.send(bytes("after the storm"));
  await atGateway!.send(bytes("still here"));
  expect(text(await toGateway.recv())).toBe("still here");
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(received).toEqual(["first", "after the storm"]);

  const stats = gateway.stats();
  const dropped = Object.values(stats.drops).reduce((sum, n) => sum + n, 0);
  expect(stats.listenerErrors).toBe(0);
  // Every datagram is counted once by the listener (routed or dropped), and a routed one that its
  // consumer then refuses (bad tag, replay) once more, as droppedAfterRouting.
  expect(stats.datagramsRouted + dropped).toBe(stats.datagramsReceived);
  const connectionDrops = atGateway!.stats().drops;
  expect(connectionDrops.decryptFailed + connectionDrops.replayed).toBeGreaterThan(6_000);
  expect(stats.datagramsReceived).toBeGreaterThanOrEqual(29_700); // paced: the kernel should lose (almost) none
  for (const reason of ["malformed", "decryptFailed", "replayed", "unknownSender", "versionMismatch"] as const) {
    expect(stats.drops[reason], reason).toBeGreaterThan(300);
  }
  console.log(`hostile: received ${stats.datagramsReceived}, drops ${JSON.stringify(stats.drops)}`);
  atGateway!.close();
  await reader;
  await flooder.terminate();
}, 60_000);
