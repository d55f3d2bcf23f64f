// What a connection tells about its addresses, through the public API: addressChanges() when the
// peer's packets come from a new port (a NAT rebinding, made here by sending from another socket),
// and observedAddress on both sides of a handshake.
import { expect, test } from "vitest";
import type { AddressChange } from "sluice";
import { openNodeSocket, type SocketFactory } from "sluice/internal";
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

test("addressChanges(): the peer's new port is reported moved, then validated; data flows on", async () => {
  const moving = rebindingSocket();
  const gateway = await bind({ gateway: true });
  const peer = await bind({ socket: moving.factory });
  const [toGateway, toPeer] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const changes: AddressChange[] = [];
  const watching = (async () => {
    for await (const change of toPeer!.addressChanges()) {
      changes.push(change);
      if (change.kind === "validated") return;
    }
  })();
  const before = toPeer!.remoteAddress;
  const newPort = await moving.rebind();
  await toGateway.send(bytes("from the new port"));
  expect(text(await toPeer!.recv())).toBe("from the new port");
  await watching;
  const now = { host: "127.0.0.1", port: newPort };
  expect(changes).toEqual([
    { kind: "moved", address: now, previous: before },
    { kind: "validated", address: now, previous: before },
  ]);
  expect(toPeer!.remoteAddress).toEqual(now);
  await toPeer!.send(bytes("and back"));
  expect(text(await toGateway.recv())).toBe("and back");
});

test("addressChanges(): an iterator ends with its connection, or when its signal aborts", async () => {
  const gateway = await bind({ gateway: true });
  const peer = await bind();
  const [toGateway, toPeer] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  const controller = new AbortController();
  const aborted = (async () => {
    for await (const change of toGateway.addressChanges({ signal: controller.signal })) void change;
    return "ended";
  })();
  controller.abort();
  expect(await aborted).toBe("ended");
  const ended = (async () => {
    for await (const change of toPeer!.addressChanges()) void change;
    return "ended";
  })();
  await gateway.close(); // its connections end at once
  expect(await ended).toBe("ended");
});

test("observedAddress on both sides: the initiator's from the response, the responder's from the initiator's OBSERVED_ADDRESS frame", async () => {
  const gateway = await bind({ gateway: true });
  const peer = await bind();
  const [toGateway, toPeer] = await Promise.all([peer.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  expect(toGateway.observedAddress).toEqual(peer.address);
  await expect.poll(() => toPeer!.observedAddress).toEqual(gateway.address);
  // A responder's view never sets externalAddress: only a gateway's response does.
  expect(gateway.externalAddress).toBeUndefined();
  expect(peer.externalAddress).toEqual(peer.address);
});
