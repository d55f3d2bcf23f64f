// An application that blocks its event loop (a long synchronous task, a full garbage collection)
// must not make its connections declare their packets lost when the acknowledgements arrived in
// time and only waited in the socket: after the stall, the datagrams that came meanwhile are read
// before the loss timers are looked at (Node runs due timers before it polls for I/O).
import { afterEach, expect, test } from "vitest";
import type { Worker } from "node:worker_threads";
import { Transport, type Connection } from "sluice";
import { ask, startWorker } from "./support/threads.ts";
import { bindTest, closeAll } from "./support/transports.ts";

/** Longer than the 200 ms retransmission timeout floor, and than its first tail-loss probe. */
const STALL_MS = 600;

const open: Transport[] = [];
let worker: Worker | undefined;
afterEach(async () => {
  await closeAll(...open.splice(0));
  if (worker !== undefined) await ask(worker, "close");
  await worker?.terminate();
  worker = undefined;
});

/** Blocks this thread for `ms` (asleep, not spinning), as a long synchronous task would. */
function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A connection to an echoing gateway on a worker thread, warmed up with 20 round trips of `request`. */
async function echoConnection(request: Uint8Array): Promise<Connection> {
  worker = await startWorker("echo-gateway");
  const gateway = await ask<{ port: number; publicKey: Uint8Array }>(worker, undefined);
  const client = await bindTest();
  open.push(client);
  const connection = await client.connect({ host: "127.0.0.1", port: gateway.port }, gateway.publicKey);
  for (let i = 0; i < 20; i++) {
    await connection.send(request);
    expect(await connection.recv()).toEqual(request);
  }
  return connection;
}

test("a blocked event loop: the acknowledgements that arrived meanwhile are read before any loss timer fires", async () => {
  const request = new Uint8Array(1024).fill(7);
  const connection = await echoConnection(request);
  const before = connection.stats().delivery;

  await connection.send(request);
  await new Promise((resolve) => setImmediate(resolve)); // the request has left
  blockThread(STALL_MS); // the gateway's thread acknowledges and echoes meanwhile
  expect(await connection.recv()).toEqual(request);
  await new Promise((resolve) => setTimeout(resolve, 50));

  const after = connection.stats().delivery;
  expect({
    tailLossProbes: after.tailLossProbes - before.tailLossProbes,
    retransmissionTimeouts: after.retransmissionTimeouts - before.retransmissionTimeouts,
    packetsLost: after.packetsLost - before.packetsLost,
  }).toEqual({ tailLossProbes: 0, retransmissionTimeouts: 0, packetsLost: 0 });
});

test("a block right after a burst (deadlines due during the block, between the timer's expiry and its firing): nothing is declared lost", async () => {
  const request = new Uint8Array(8192).fill(5);
  const connection = await echoConnection(request);
  const before = connection.stats().delivery;

  for (let i = 0; i < 8; i++) void connection.send(request); // paced out over the next turns
  await new Promise((resolve) => setImmediate(resolve));
  blockThread(STALL_MS);
  for (let i = 0; i < 8; i++) expect(await connection.recv()).toEqual(request);
  await new Promise((resolve) => setTimeout(resolve, 50));

  const after = connection.stats().delivery;
  expect({
    retransmissionTimeouts: after.retransmissionTimeouts - before.retransmissionTimeouts,
    packetsLost: after.packetsLost - before.packetsLost,
  }).toEqual({ retransmissionTimeouts: 0, packetsLost: 0 });
});

test("a blocked gateway: more acknowledgements than one read takes (libuv reads 32 a turn) are all read before any loss timer fires", async () => {
  const PEERS = 96;
  const gateway = await bindTest({ gateway: true, acceptRamp: [], maxConnections: PEERS, maxHandshakes: PEERS, maxConnectionsPerIp: PEERS, maxHandshakesPerIp: PEERS, introBurstPerIp: PEERS });
  open.push(gateway);
  worker = await startWorker("echo-clients");
  const accepted = Array.from({ length: PEERS }, () => gateway.accept());
  await ask(worker, { port: gateway.address.port, publicKey: gateway.publicKey, count: PEERS });
  const connections = (await Promise.all(accepted)).map((connection) => connection!);
  const request = new Uint8Array(256).fill(3);
  for (const connection of connections) {
    await connection.send(request);
    expect(await connection.recv()).toEqual(request);
  }
  const totals = () => connections.map((c) => c.stats().delivery).reduce((sum, d) => ({
    tailLossProbes: sum.tailLossProbes + d.tailLossProbes,
    retransmissionTimeouts: sum.retransmissionTimeouts + d.retransmissionTimeouts,
    packetsLost: sum.packetsLost + d.packetsLost,
  }), { tailLossProbes: 0, retransmissionTimeouts: 0, packetsLost: 0 });
  const before = totals();

  for (const connection of connections) void connection.send(request);
  await new Promise((resolve) => setImmediate(resolve)); // every request has left
  blockThread(STALL_MS); // the peers acknowledge and echo meanwhile: PEERS datagrams or more wait in one socket
  for (const connection of connections) expect(await connection.recv()).toEqual(request);
  await new Promise((resolve) => setTimeout(resolve, 50));

  const after = totals();
  expect({
    tailLossProbes: after.tailLossProbes - before.tailLossProbes,
    retransmissionTimeouts: after.retransmissionTimeouts - before.retransmissionTimeouts,
    packetsLost: after.packetsLost - before.packetsLost,
  }).toEqual({ tailLossProbes: 0, retransmissionTimeouts: 0, packetsLost: 0 });
});
