// A gateway's relay table in virtual time (src/transport/relays.ts), with stand-ins for the two
// connections a relay joins: what it forwards, to where, and how a full table makes room.
import { expect, test } from "vitest";
import { checkRelayOptions, RELAY_IDLE_MS, relayHeader, Relays } from "../src/transport/relays.ts";
import type { SessionDriver } from "../src/transport/session-driver.ts";
import type { Address } from "../src/wire/address.ts";

/** What the relay table reads of a connection. */
function connection(address: Address) {
  return { remoteAddress: address, ended: false, pathValidated: true } as { remoteAddress: Address; ended: boolean; pathValidated: boolean };
}
const asDriver = (stand: object) => stand as SessionDriver;

function table(maxRelays: number) {
  const sent: Address[] = [];
  const datagrams: Uint8Array[] = [];
  const relays = new Relays(checkRelayOptions({ maxRelays }, "relay"), (chunks, to) => {
    sent.push(to);
    datagrams.push(...chunks);
  });
  return { relays, sent, datagrams };
}

/** [RELAY 0x05][wire version 2][relay id, u32 little-endian] (docs/wire.md, "Relays"). */
const header = (id: number) => [0x05, 2, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24];

const datagram = (bytes = 100) => new Uint8Array(bytes).fill(0x05);

test("a relay forwards only from the connection its id belongs to, and only to a validated, direct address", () => {
  const { relays, sent } = table(4);
  const a = connection({ host: "198.18.0.3", port: 4000 });
  const b = connection({ host: "198.18.0.4", port: 5000 });
  const ids = relays.open(asDriver(a), asDriver(b), 0);
  expect(relays.receive(ids.a, datagram(), a.remoteAddress, 1)).toEqual({ relayed: true });
  expect(sent).toEqual([b.remoteAddress]);
  expect(relays.receive(ids.a, datagram(), b.remoteAddress, 2)).toEqual({ drop: "unknownSender" }); // b's address, a's id
  b.pathValidated = false; // b's path moved and has not answered its challenge
  expect(relays.receive(ids.a, datagram(), a.remoteAddress, 3)).toEqual({ drop: "unknownSender" });
  b.pathValidated = true;
  b.ended = true;
  expect(relays.receive(ids.a, datagram(), a.remoteAddress, 4)).toEqual({ drop: "unknownSender" });
  expect(sent).toHaveLength(1);
});

test(`a full table makes room by closing relays idle for ${RELAY_IDLE_MS} ms; relays in use stay`, () => {
  const { relays } = table(2);
  const pairs = [0, 1].map((i) => [connection({ host: "198.18.0.3", port: 4000 + i }), connection({ host: "198.18.0.4", port: 5000 + i })] as const);
  const first = relays.open(asDriver(pairs[0]![0]), asDriver(pairs[0]![1]), 0);
  relays.open(asDriver(pairs[1]![0]), asDriver(pairs[1]![1]), 0);
  const third = [connection({ host: "198.18.0.5", port: 1 }), connection({ host: "198.18.0.6", port: 1 })];
  const thirdIds = relays.open(asDriver(third[0]!), asDriver(third[1]!), RELAY_IDLE_MS); // both idle: room made
  expect(relays.count).toBe(1);
  expect(relays.receive(first.a, datagram(), pairs[0]![0].remoteAddress, RELAY_IDLE_MS + 1)).toEqual({ drop: "unknownSender" }); // closed
  // A table full of relays in use refuses.
  const fourth = relays.open(asDriver(pairs[0]![0]), asDriver(pairs[0]![1]), RELAY_IDLE_MS + 2);
  expect(relays.receive(fourth.a, datagram(), pairs[0]![0].remoteAddress, 2 * RELAY_IDLE_MS)).toEqual({ relayed: true });
  expect(relays.receive(thirdIds.b, datagram(), third[1]!.remoteAddress, 2 * RELAY_IDLE_MS)).toEqual({ relayed: true });
  expect(() => relays.open(asDriver(third[0]!), asDriver(third[1]!), 2 * RELAY_IDLE_MS + 1)).toThrow(/too many relays/);
});

test("a forwarded datagram carries the receiving side's relay id; a peer sends through a granted relay with one header, built once", () => {
  const { relays, datagrams } = table(4);
  const a = connection({ host: "198.18.0.3", port: 4000 });
  const b = connection({ host: "198.18.0.4", port: 5000 });
  const ids = relays.open(asDriver(a), asDriver(b), 0);
  const relayed = datagram(40);
  relayed.set(header(ids.a));
  relays.receive(ids.a, relayed, a.remoteAddress, 1);
  expect([...datagrams[0]!]).toEqual([...header(ids.b), ...relayed.subarray(6)]);

  const peer = table(4).relays;
  const id = 0x7edc_ba98;
  peer.grant({ host: "198.18.0.1", port: 7000 }, id);
  expect([...peer.headerFor(id)]).toEqual(header(id));
  expect(peer.headerFor(id)).toBe(peer.headerFor(id)); // shared by every send, not one per datagram
  expect([...peer.headerFor(5)]).toEqual(header(5)); // an id no longer granted still gets a correct header
  expect([...relayHeader(id)]).toEqual(header(id));
});
