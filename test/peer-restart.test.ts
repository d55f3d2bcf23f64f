// A peer that is killed (SIGKILL: no CLOSE goes) and restarted at once with the same key registers
// with its gateway again, from a new socket. Through the public API and real processes: a peer that
// held a connection to it gets a working connection to the restarted peer from connectVia() (the old
// one's peer does not acknowledge a PING within two probe timeouts, so the gateway is asked again), and the old
// connection fails with ERR_SLUICE_REPLACED once the new handshake proved the key; a restarted peer
// that dials on its own replaces the old connection the same way, the new one arriving by accept().
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "vitest";
import { encodeKey, generateKeyPair, type Connection, type Transport } from "sluice";
import { bytes, text, transportsPerTest } from "./support/transports.ts";

const bind = transportsPerTest();
const CHILD = fileURLToPath(new URL("./children/restarting-peer.mjs", import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

/** A gateway that accepts whoever registers, and one peer of the test's own (A) registered with it. */
async function gatewayAndA() {
  const gateway = await bind({ gateway: true, acceptRamp: [] }); // every peer comes from 127.0.0.1
  void (async () => {
    while ((await gateway.accept()) !== undefined);
  })();
  const a = await bind();
  const aToGateway = await a.connect(gateway.address, gateway.publicKey);
  return { gateway, a, aToGateway };
}

/** Peer B in a process of its own, registered with `gateway` under `secretKey`; it dials `dial` through it if given. */
async function startB(gateway: Transport, secretKey: Uint8Array, dial?: Uint8Array): Promise<ChildProcess> {
  const args = [`${gateway.address.host}:${gateway.address.port}`, encodeKey(gateway.publicKey, "hex"), Buffer.from(secretKey).toString("hex")];
  if (dial !== undefined) args.push(encodeKey(dial, "hex"));
  const child = fork(CHILD, args, { stdio: "inherit" });
  children.push(child);
  const [message] = (await within(once(child, "message"), 5000, "the peer's registration")) as [{ registered: boolean }];
  expect(message.registered).toBe(true);
  return child;
}

/**
 * A and B registered with the gateway, A connected to B through it (the connection `old`, which has
 * carried an echo), then B killed: no CLOSE went. `oldEnded` settles with the code `old` ends with.
 */
async function aConnectedToKilledB(keys: "any" | "bAboveA" = "any") {
  const { gateway, a, aToGateway } = await gatewayAndA();
  let { secretKey, publicKey: bKey } = generateKeyPair();
  while (keys === "bAboveA" && Buffer.compare(bKey, a.publicKey) < 0) ({ secretKey, publicKey: bKey } = generateKeyPair());
  const first = await startB(gateway, secretKey);
  const old = await a.connectVia(aToGateway, bKey);
  await echoes(old, "before");
  const oldEnded = old.recv().then(() => undefined, (error: { code?: string }) => error.code);
  const exited = once(first, "exit");
  first.kill("SIGKILL");
  await exited;
  return { gateway, a, aToGateway, secretKey, bKey, old, oldEnded };
}

/** `promise`, or a rejection naming `what` after `ms`: a hang fails the test clearly, well within its time. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

async function echoes(connection: Connection, message: string): Promise<void> {
  await connection.send(bytes(message));
  expect(text(await within(connection.recv(), 3000, `the echo of "${message}"`))).toBe(message);
}

describe("a peer killed and restarted with the same key", () => {
  test("connectVia() gives a working connection to the restarted peer; the old connection fails with ERR_SLUICE_REPLACED", { timeout: 10_000 }, async () => {
    const { gateway, a, aToGateway, secretKey, bKey, old, oldEnded } = await aConnectedToKilledB();
    await startB(gateway, secretKey); // registers again, from a new socket
    const started = performance.now();
    const renewed = await within(a.connectVia(aToGateway, bKey), 5000, "connectVia() to the restarted peer");
    await echoes(renewed, "after"); // before the fix: the old connection, whose peer is gone (its end came at the dead-peer timeout)
    const elapsedMs = performance.now() - started;
    expect(renewed).not.toBe(old);
    expect(renewed.remoteAddress.port).not.toBe(old.remoteAddress.port);
    expect(await within(oldEnded, 1000, "the old connection's end")).toBe("ERR_SLUICE_REPLACED");
    expect(a.stats().connections).toBe(2); // the gateway and the restarted B
    expect(gateway.stats().connections).toBe(2); // A and the restarted B: its old registration was replaced
    console.log(`connectVia() to the restarted peer and an echo: ${elapsedMs.toFixed(0)} ms`);
  });

  // In a simultaneous open the higher key answers: A, below B, initiated the old connection. For 3 s
  // after (its retry deadline), A takes an intro from B for a straggler of that open and drops it;
  // before, A did not connect back either (it held an open connection), so B's intros were answered
  // only once that window had passed (~3.5 s after the old open, when B's connect() did not run out
  // first). Now A's PING goes unanswered and A connects back: well within the 2 s bound.
  test("the restarted peer dials through the gateway: the old connection fails with ERR_SLUICE_REPLACED, the new one comes from accept()", { timeout: 10_000 }, async () => {
    const { gateway, a, secretKey, bKey, old, oldEnded } = await aConnectedToKilledB("bAboveA");
    await startB(gateway, secretKey, a.publicKey);
    const started = performance.now();
    const accepted = await within(a.accept(), 2000, "the restarted peer's connection");
    expect(accepted!.remotePublicKey).toEqual(bKey);
    expect(accepted).not.toBe(old);
    expect(await within(oldEnded, 1000, "the old connection's end")).toBe("ERR_SLUICE_REPLACED");
    await echoes(accepted!, "after");
    console.log(`the restarted peer's own connectVia(): accepted and echoed ${(performance.now() - started).toFixed(0)} ms after its registration`);
    expect(a.stats().connections).toBe(2);
  });
});
