// What a connection tells about its addresses, through the public API: addressChanges() when the
// peer's packets come from a new port (a NAT rebinding, made here by sending from another socket),
// and observedAddress on both sides of a handshake.
import { getEventListeners } from "node:events";
import { expect, test } from "vitest";
import { MAX_QUEUED_ADDRESS_CHANGES, type AddressChange } from "sluice";
import { addressChangeSubscribersOf, openNodeSocket, type SocketFactory } from "sluice/internal";
import { AddressChangeFeed } from "../src/transport/address-changes.ts";
import { bytes, text, transportsPerTest } from "./support/transports.ts";

const bind = transportsPerTest();

/**
 * A socket that can rebind, as a NAT that lost its mapping: rebind() opens a second real socket on
 * loopback, and from then on everything goes out from it (both deliver what they receive).
 */
function rebindingSocket(): { factory: SocketFactory; rebind: () => Promise<number> } {
  let current: Awaited<ReturnType<SocketFactory>> | undefined;
  let options: Parameters<SocketFactory>[0] | undefined;
  const others: Awaited<ReturnType<SocketFactory>>[] = [];
  const factory: SocketFactory = async (given) => {
    options = given;
    current = await openNodeSocket(given);
    const first = current;
    return {
      address: first.address,
      kind: first.kind,
      send: (chunks, host, port) => current!.send(chunks, host, port),
      close: async () => {
        await Promise.all([first.close(), ...others.map((socket) => socket.close())]);
      },
    };
  };
  const rebind = async () => {
    current = await openNodeSocket({ ...options!, port: 0 });
    others.push(current);
    return current.address.port;
  };
  return { factory, rebind };
}

/** A gateway and a peer connected to it: the peer's connection to the gateway, and the gateway's to the peer. */
async function connected(peerOptions: Parameters<typeof bind>[0] = {}) {
  const gateway = await bind({ gateway: true });
  const peer = await bind(peerOptions);
  const [toGateway, accepted] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  return { gateway, peer, toGateway, toPeer: accepted! };
}

test("addressChanges(): the peer's new port is reported moved, then validated; data flows on", async () => {
  const moving = rebindingSocket();
  const { toGateway, toPeer } = await connected({ socket: moving.factory });
  const changes: AddressChange[] = [];
  const watching = (async () => {
    for await (const change of toPeer.addressChanges()) {
      changes.push(change);
      if (change.kind === "validated") return;
    }
  })();
  const before = toPeer.remoteAddress;
  const newPort = await moving.rebind();
  await toGateway.send(bytes("from the new port"));
  expect(text(await toPeer.recv())).toBe("from the new port");
  await watching;
  const now = { host: "127.0.0.1", port: newPort };
  expect(changes).toEqual([
    { kind: "moved", address: now, previous: before },
    { kind: "validated", address: now, previous: before },
  ]);
  expect(toPeer.remoteAddress).toEqual(now);
  await toPeer.send(bytes("and back"));
  expect(text(await toGateway.recv())).toBe("and back");
});

test("addressChanges(): an iterator ends with its connection, having yielded what it held", async () => {
  const { gateway, toPeer } = await connected();
  const ended = (async () => {
    for await (const change of toPeer.addressChanges()) void change;
    return "ended";
  })();
  const unread = toPeer.addressChanges();
  await gateway.close(); // its connections end at once
  expect(await ended).toBe("ended");
  expect(addressChangeSubscribersOf(toPeer)).toBe(0);
  await expect(unread.next()).resolves.toEqual({ done: true, value: undefined });
  await expect(toPeer.addressChanges().next()).resolves.toEqual({ done: true, value: undefined }); // made after the end
  expect(addressChangeSubscribersOf(toPeer)).toBe(0);
});

/** Whether `promise` settles within one turn of the event loop (it does not wait for a timer or the network). */
async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

test("addressChanges(): return() while a next() waits settles at once, the next() with done, and removes the subscription and its signal listener", async () => {
  const { toGateway } = await connected();
  const controller = new AbortController();
  const changes = toGateway.addressChanges({ signal: controller.signal });
  expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
  expect(addressChangeSubscribersOf(toGateway)).toBe(1);
  const waiting = changes.next(); // no change comes: the caller gives up, as after a Promise.race with a timeout
  const returned = changes.return();
  expect(await settlesAtOnce(returned)).toBe(true);
  expect(await settlesAtOnce(waiting)).toBe(true);
  expect(await returned).toEqual({ done: true, value: undefined });
  expect(await waiting).toEqual({ done: true, value: undefined });
  expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  expect(addressChangeSubscribersOf(toGateway)).toBe(0);
  await expect(changes.next()).resolves.toEqual({ done: true, value: undefined });
  // throw() ends an iterator the same way, and rejects with what it was given.
  const thrown = toGateway.addressChanges({ signal: controller.signal });
  const waitingThrown = thrown.next();
  const reason = new Error("given up");
  await expect(thrown.throw(reason)).rejects.toBe(reason);
  await expect(waitingThrown).resolves.toEqual({ done: true, value: undefined });
  expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  expect(addressChangeSubscribersOf(toGateway)).toBe(0);
});

test("addressChanges(): 10,000 iterators returned before any next() leave no subscription nor signal listener behind", async () => {
  const { toGateway } = await connected();
  const controller = new AbortController();
  for (let i = 0; i < 10_000; i++) {
    const changes = toGateway.addressChanges(i % 2 === 0 ? { signal: controller.signal } : undefined);
    await changes.return();
  }
  expect(addressChangeSubscribersOf(toGateway)).toBe(0);
  expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
});

test("addressChanges(): its signal aborting rejects a waiting next() with an AbortError (the reason as cause) and ends the subscription", async () => {
  const { toGateway } = await connected();
  const controller = new AbortController();
  const changes = toGateway.addressChanges({ signal: controller.signal });
  const waiting = changes.next();
  const reason = new Error("the caller's reason");
  controller.abort(reason);
  await expect(waiting).rejects.toMatchObject({ name: "AbortError", code: "ABORT_ERR", cause: reason });
  expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  expect(addressChangeSubscribersOf(toGateway)).toBe(0);
  await expect(changes.next()).resolves.toEqual({ done: true, value: undefined });
  // With no next() waiting, the next one rejects; a signal that had already fired, the first one.
  const later = new AbortController();
  const unread = toGateway.addressChanges({ signal: later.signal });
  later.abort();
  expect(addressChangeSubscribersOf(toGateway)).toBe(0);
  await expect(unread.next()).rejects.toMatchObject({ name: "AbortError" });
  await expect(unread.next()).resolves.toEqual({ done: true, value: undefined });
  const loop = (async () => {
    for await (const change of toGateway.addressChanges({ signal: later.signal })) void change;
  })();
  await expect(loop).rejects.toMatchObject({ name: "AbortError" });
  expect(addressChangeSubscribersOf(toGateway)).toBe(0);
});

test("addressChanges(): each subscriber sees every change from its call on, in order; one not read keeps the newest MAX_QUEUED_ADDRESS_CHANGES, then ends after them", async () => {
  // The feed alone (moves this many are slow to make on a real path): what each iterator sees.
  const feed = new AddressChangeFeed();
  const change = (port: number): AddressChange => ({ kind: "moved", address: { host: "127.0.0.1", port }, previous: { host: "127.0.0.1", port: port - 1 } });
  const reading = feed.subscribe(undefined);
  const waiting = reading.next();
  feed.emit(change(1));
  const unread = feed.subscribe(undefined);
  for (let port = 2; port <= MAX_QUEUED_ADDRESS_CHANGES + 5; port++) feed.emit(change(port));
  feed.end();
  expect(feed.subscribers).toBe(0);
  expect(await waiting).toEqual({ done: false, value: change(1) });
  const ports = async (changes: AsyncIterable<AddressChange>) => {
    const seen: number[] = [];
    for await (const { address } of changes) seen.push(address.port);
    return seen;
  };
  expect(await ports(reading)).toEqual(Array.from({ length: MAX_QUEUED_ADDRESS_CHANGES }, (_, i) => i + 6)); // 2 to 5 dropped
  expect(await ports(unread)).toEqual(Array.from({ length: MAX_QUEUED_ADDRESS_CHANGES }, (_, i) => i + 6));
});

test("observedAddress on both sides: the initiator's from the response, the responder's from the initiator's OBSERVED_ADDRESS frame", async () => {
  const { gateway, peer, toGateway, toPeer } = await connected();
  expect(toGateway.observedAddress).toEqual(peer.address);
  await expect.poll(() => toPeer.observedAddress).toEqual(gateway.address);
  // A responder's view never sets externalAddress: only a gateway's response does.
  expect(gateway.externalAddress).toBeUndefined();
  expect(peer.externalAddress).toEqual(peer.address);
});
