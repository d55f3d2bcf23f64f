// Cancellation as Node's APIs do it: { signal } on connect, accept, recv, acceptStream, send, flush and bind
// (AbortError, ABORT_ERR, the signal's reason as cause; at once if already aborted; no listener left
// behind); connection.abort(reason); and `await using` on transports and connections.
import { createSocket } from "node:dgram";
import { getEventListeners } from "node:events";
import { afterEach, expect, test } from "vitest";
import { Transport, type Connection } from "sluice";
import { caught } from "./support/errors.ts";
import { closeAll, connectedPair, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

function expectAbortError(error: unknown, reason: unknown): void {
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).name).toBe("AbortError");
  expect((error as { code?: string }).code).toBe("ABORT_ERR");
  expect((error as Error).message).toBe("The operation was aborted");
  expect((error as Error).cause).toBe(reason);
}

test("{ signal } cancels accept, recv, acceptStream, send and flush while they wait: AbortError, no listener left", async () => {
  const { gateway, atJoiner, atGateway } = await connectedPair(bind, { reliability: { messageWindowBytes: 64 * 1024 } });
  // Each waits for something that does not come; its signal fires with a reason of its own.
  const waits = {
    accept: (signal: AbortSignal) => gateway.accept({ signal }),
    recv: (signal: AbortSignal) => atGateway.recv({ signal }),
    acceptStream: (signal: AbortSignal) => atGateway.acceptStream({ signal }),
    // The peer reads nothing: once its 64 KiB window and our 4 MiB buffer are full, a send waits.
    send: async (signal: AbortSignal) => {
      for (;;) await atJoiner.send(new Uint8Array(1 << 20), { signal });
    },
    flush: (signal: AbortSignal) => atJoiner.flush({ signal }),
  };
  for (const [name, wait] of Object.entries(waits)) {
    const controller = new AbortController();
    const reason = new Error(`stop ${name}`);
    const waiting = wait(controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(reason);
    expectAbortError(await caught(() => waiting), reason);
    expect(getEventListeners(controller.signal, "abort"), name).toHaveLength(0);
  }
  // Nothing was harmed: the connection goes on.
  await atGateway.send(new Uint8Array([1]));
  expect(await atJoiner.recv()).toEqual(new Uint8Array([1]));
});

test("an already-aborted signal rejects at once, before any wait; a settled call leaves no listener", async () => {
  const { gateway, atJoiner, atGateway } = await connectedPair(bind);
  const reason = "already";
  const signal = AbortSignal.abort(reason);
  await atJoiner.send(new Uint8Array([1])); // ready to be received: an aborted signal refuses all the same
  await new Promise((resolve) => setTimeout(resolve, 20));
  const calls = [
    () => gateway.accept({ signal }), () => atGateway.recv({ signal }), () => atGateway.acceptStream({ signal }), () => atJoiner.flush({ signal }),
    () => atJoiner.send(new Uint8Array(1), { signal }),
  ];
  for (const call of calls) {
    expectAbortError(await caught(call), reason);
  }
  expectAbortError(await caught(() => Transport.bind({ host: "127.0.0.1", log: null, signal })), reason);
  expectAbortError(await caught(() => Transport.bind({ host: "localhost", log: null, signal })), reason);
  expect(await atGateway.recv()).toEqual(new Uint8Array([1]));
  await atJoiner.send(new Uint8Array([2]), { signal: new AbortController().signal });
  const controller = new AbortController();
  expect(await atGateway.recv({ signal: controller.signal })).toEqual(new Uint8Array([2]));
  await atJoiner.send(new Uint8Array([3]));
  const later = new AbortController();
  const pending = atGateway.recv({ signal: later.signal });
  expect(await pending).toEqual(new Uint8Array([3]));
  expect(getEventListeners(later.signal, "abort")).toHaveLength(0);
  expect(await caught(() => atGateway.recv({ signal: {} as AbortSignal }))).toMatchObject({ code: "ERR_INVALID_ARG_TYPE" });
});

test("{ signal } on connect(): an AbortError, at once if already aborted; the handshake is given up, no listener left", async () => {
  const gateway = await bind({ gateway: true });
  const joiner = await bind();
  const silent = createSocket("udp4"); // a node that never answers
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  try {
    const nowhere = { host: "127.0.0.1", port: silent.address().port };
    const controller = new AbortController();
    const reason = new Error("the user went away");
    const pending = joiner.connect(nowhere, gateway.publicKey, { signal: controller.signal, intervalMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(joiner.stats().handshakes).toBe(1);
    controller.abort(reason);
    expectAbortError(await caught(() => pending), reason);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    expect(joiner.stats().handshakes).toBe(0); // nothing left behind: no more intros go out
    const sent = joiner.stats().datagramsSent;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(joiner.stats().datagramsSent).toBe(sent);

    // Already aborted: rejects at once, sends nothing, whether the host is an address or a name.
    for (const address of [gateway.address, { host: "localhost", port: gateway.address.port }]) {
      expectAbortError(await caught(() => joiner.connect(address, gateway.publicKey, { signal: AbortSignal.abort("early") })), "early");
    }
    expect(joiner.stats()).toMatchObject({ handshakes: 0, datagramsSent: sent });

    // Two connect()s to one key share a handshake: aborting one leaves the other to complete.
    const impatient = new AbortController();
    const first = joiner.connect(gateway.address, gateway.publicKey, { signal: impatient.signal });
    const second = joiner.connect(gateway.address, gateway.publicKey);
    impatient.abort("not me");
    expectAbortError(await caught(() => first), "not me");
    const connection = await second;
    expect(connection.remotePublicKey).toEqual(gateway.publicKey);

    // A connect() that completes leaves no listener on its signal.
    const patient = new AbortController();
    await connection.close();
    await joiner.connect(gateway.address, gateway.publicKey, { signal: patient.signal });
    expect(getEventListeners(patient.signal, "abort")).toHaveLength(0);
  } finally {
    silent.close();
  }
});

test("connection.abort(reason): one CLOSE, pending calls reject with ERR_SLUICE_ABORTED carrying the reason, the peer ends at once", async () => {
  const { joiner, atJoiner, atGateway } = await connectedPair(bind);
  const sentBefore = joiner.stats().datagramsSent;
  const pending = [atJoiner.recv(), atJoiner.acceptStream(), atJoiner.close()];
  const reason = new Error("shutting down");
  atJoiner.abort(reason);
  for (const call of pending) {
    const error = await caught(() => call);
    expect(error).toMatchObject({ name: "SluiceError", code: "ERR_SLUICE_ABORTED", cause: reason, message: "the connection was aborted: shutting down" });
  }
  expect(atJoiner.closed).toBe(true);
  expect(atJoiner.error).toMatchObject({ code: "ERR_SLUICE_ABORTED" });
  expect(await caught(() => atJoiner.whenClosed)).toMatchObject({ code: "ERR_SLUICE_ABORTED" });
  expect(await caught(() => atJoiner.send(new Uint8Array(1)))).toMatchObject({ code: "ERR_SLUICE_ABORTED" });
  expect(joiner.stats().datagramsSent - sentBefore).toBe(1); // the CLOSE, once
  const started = performance.now();
  expect(await atGateway.recv()).toBeUndefined();
  expect(performance.now() - started).toBeLessThan(500);
  expect(atGateway.closed).toBe(true);
});

test("await using: a connection closes gracefully and a transport closes at the end of the scope", async () => {
  expect(typeof Symbol.asyncDispose).toBe("symbol"); // Node 20's is Symbol.for("nodejs.asyncDispose")
  const gateway = await bind({ gateway: true });
  let joinerOutside: Transport | undefined;
  let inbound: Connection | undefined;
  {
    await using joiner = await Transport.bind({ host: "127.0.0.1", log: null });
    joinerOutside = joiner;
    await using connection = await joiner.connect(gateway.address, gateway.publicKey);
    inbound = (await gateway.accept())!;
    await connection.send(new Uint8Array([9]));
    expect(await inbound.recv()).toEqual(new Uint8Array([9]));
  }
  expect(inbound.closed).toBe(true); // the disposed connection's CLOSE was acknowledged before its transport closed
  expect(await inbound.recv()).toBeUndefined();
  expect(await joinerOutside.accept()).toBeUndefined(); // the transport is closed
});
