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
  const pairs = [0, 1].map((i) => [connection({ host: `198.18.0.${3 + 2 * i}`, port: 4000 }), connection({ host: `198.18.0.${4 + 2 * i}`, port: 5000 })] as const);
  const first = relays.open(asDriver(pairs[0]![0]), asDriver(pairs[0]![1]), 0);
  relays.open(asDriver(pairs[1]![0]), asDriver(pairs[1]![1]), 0);
  const third = [connection({ host: "198.18.0.7", port: 1 }), connection({ host: "198.18.0.8", port: 1 })];
  const thirdIds = relays.open(asDriver(third[0]!), asDriver(third[1]!), RELAY_IDLE_MS); // both idle: room made
  expect(relays.count).toBe(1);
  expect(relays.receive(first.a, datagram(), pairs[0]![0].remoteAddress, RELAY_IDLE_MS + 1)).toEqual({ drop: "unknownSender" }); // closed
  // A table full of relays in use refuses.
  const fourth = relays.open(asDriver(pairs[0]![0]), asDriver(pairs[0]![1]), RELAY_IDLE_MS + 2);
  expect(relays.receive(fourth.a, datagram(), pairs[0]![0].remoteAddress, 2 * RELAY_IDLE_MS)).toEqual({ relayed: true });
  expect(relays.receive(thirdIds.b, datagram(), third[1]!.remoteAddress, 2 * RELAY_IDLE_MS)).toEqual({ relayed: true });
  const fifth = [connection({ host: "198.18.0.9", port: 1 }), connection({ host: "198.18.0.10", port: 1 })];
  expect(() => relays.open(asDriver(fifth[0]!), asDriver(fifth[1]!), 2 * RELAY_IDLE_MS + 1)).toThrow(/too many relays/);
});

test("a pair keeps its one relay; a connection, and the connections of one IP address, have a share of the table", () => {
  const { relays } = table(64);
  const a = connection({ host: "198.18.0.3", port: 4000 });
  const b = connection({ host: "198.18.0.4", port: 5000 });
  const first = relays.open(asDriver(a), asDriver(b), 0);
  expect(relays.open(asDriver(a), asDriver(b), 1)).toEqual(first); // asked again: the same relay
  expect(relays.open(asDriver(b), asDriver(a), 2)).toEqual({ a: first.b, b: first.a }); // either way round
  expect(relays.count).toBe(1);
  // One connection: 16 relays at most.
  for (let i = 1; i < 16; i++) relays.open(asDriver(a), asDriver(connection({ host: `198.18.1.${i}`, port: 1 })), 3);
  expect(() => relays.open(asDriver(a), asDriver(connection({ host: "198.18.2.1", port: 1 })), 4)).toThrow(/this connection is in too many relays/);
  // One IP address: a quarter of the table (16 of 64), over all its connections.
  const sameIp = connection({ host: "198.18.0.3", port: 4001 });
  expect(() => relays.open(asDriver(sameIp), asDriver(connection({ host: "198.18.3.1", port: 1 })), 5)).toThrow(/this IP address are in too many relays/);
  const elsewhere = connection({ host: "198.18.0.9", port: 1 });
  expect(() => relays.open(asDriver(elsewhere), asDriver(connection({ host: "198.18.3.2", port: 1 })), 6)).not.toThrow();
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
