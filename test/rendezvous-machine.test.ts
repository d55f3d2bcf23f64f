// The rendezvous state machine (src/rendezvous/rendezvous.ts) in virtual time, with three nodes wired
// by hand: what an introduction carries (keys, observed and local addresses), the answer's deadline,
// a connection that ends under a waiting request, and frames that answer nothing asked.
import { describe, expect, it } from "vitest";
import { CONTROL_INTRODUCTION, CONTROL_RELAY_OFFER, readControl } from "../src/rendezvous/frames.ts";
import { INTRODUCTION_ANSWER_MS, Rendezvous, type RendezvousEvent } from "../src/rendezvous/rendezvous.ts";
import type { Address } from "../src/wire/address.ts";

/** What a node knows of one of its connections: the peer's key and addresses. */
interface Link {
  key: Uint8Array;
  address: Address;
  localAddresses: Address[];
  isGateway: boolean;
}

const key = (byte: number) => new Uint8Array(32).fill(byte);

/** A node whose connections are named by strings; `links` says what it knows of each. */
function node(own: number, links: Record<string, Link>, local: Address[] = [], relayIds?: { a: number; b: number }) {
  return new Rendezvous<string>({
    ownKey: key(own),
    introductions: "all",
    acceptIntroductions: "gateways",
    describe: (name) => links[name]!,
    find: (wanted) => Object.keys(links).find((name) => links[name]!.key.every((byte, i) => byte === wanted[i])),
    hasRoom: () => true,
    localAddresses: () => local,
    openRelay: () => relayIds,
  });
}

function events<P>(machine: Rendezvous<P>): RendezvousEvent<P>[] {
  const all = [];
  for (let event = machine.pollEvent(); event !== undefined; event = machine.pollEvent()) all.push(event);
  return all;
}

describe("the rendezvous state machine", () => {
  const aAddress = { host: "198.18.0.3", port: 4000 };
  const bAddress = { host: "198.18.0.4", port: 5000 };
  const bLocal = [{ host: "198.19.2.2", port: 5000 }];

  it("an introduction carries the other's key, the address the gateway sees, and the local addresses it was told", () => {
    const gateway = node(9, {
      toA: { key: key(1), address: aAddress, localAddresses: [], isGateway: false },
      toB: { key: key(2), address: bAddress, localAddresses: bLocal, isGateway: false },
    });
    const a = node(1, { toGateway: { key: key(9), address: { host: "198.18.0.2", port: 7000 }, localAddresses: [], isGateway: true } });
    const id = a.request("toGateway", key(2), 0);
    const request = a.pollTransmit()!;
    gateway.handleControl("toA", request.type, request.body, 1);
    const [toB, toA] = [gateway.pollTransmit()!, gateway.pollTransmit()!];
    expect([toB.to, toA.to]).toEqual(["toB", "toA"]);
    expect(readControl(toB.type, toB.body)).toEqual({ type: CONTROL_INTRODUCTION, requestId: 0, key: key(1), address: aAddress, localAddresses: [] });
    a.handleControl("toGateway", toA.type, toA.body, 2);
    expect(events(a)).toEqual([{ type: "introduced", via: "toGateway", requestId: id, key: key(2), address: bAddress, localAddresses: bLocal }]);
    expect(a.stats()).toMatchObject({ requested: 1, received: 1, malformed: 0 });
    // The same answer again (a copy) answers nothing now: ignored, counted.
    a.handleControl("toGateway", toA.type, toA.body, 3);
    expect(events(a)).toEqual([]);
    expect(a.stats().malformed).toBe(1);
  });

  it("a gateway that relays offers each peer a relay id for the other before the introduction, and the peer learns it", () => {
    const gateway = node(9, {
      toA: { key: key(1), address: aAddress, localAddresses: [], isGateway: false },
      toB: { key: key(2), address: bAddress, localAddresses: bLocal, isGateway: false },
    }, [], { a: 11, b: 12 });
    const a = node(1, { toGateway: { key: key(9), address: { host: "198.18.0.2", port: 7000 }, localAddresses: [], isGateway: true } });
    a.request("toGateway", key(2), 0);
    const request = a.pollTransmit()!;
    gateway.handleControl("toA", request.type, request.body, 1);
    const sent = [];
    for (let transmit = gateway.pollTransmit(); transmit !== undefined; transmit = gateway.pollTransmit()) sent.push({ to: transmit.to, ...readControl(transmit.type, transmit.body)! });
    expect(sent.map((frame) => [frame.to, frame.type])).toEqual([["toB", CONTROL_RELAY_OFFER], ["toA", CONTROL_RELAY_OFFER], ["toB", CONTROL_INTRODUCTION], ["toA", CONTROL_INTRODUCTION]]);
    expect(sent[0]).toMatchObject({ key: key(1), relayId: 12 });
    expect(sent[1]).toMatchObject({ key: key(2), relayId: 11 });
    a.handleControl("toGateway", CONTROL_RELAY_OFFER, new Uint8Array([...key(2), 11, 0, 0, 0]), 2);
    expect(events(a)).toEqual([{ type: "relayOffered", via: "toGateway", key: key(2), relayId: 11 }]);
    // A relay id 0 does not read: the frame is malformed.
    a.handleControl("toGateway", CONTROL_RELAY_OFFER, new Uint8Array([...key(2), 0, 0, 0, 0]), 3);
    expect(events(a)).toEqual([]);
  });

  it("a node tells a gateway its local addresses once connected, and the initiator tells the responder its observed address", () => {
    const local = [{ host: "198.19.1.2", port: 4000 }];
    const a = node(1, { toGateway: { key: key(9), address: { host: "198.18.0.2", port: 7000 }, localAddresses: [], isGateway: true } }, local);
    a.opened("toGateway", true);
    const sent = [a.pollTransmit()!, a.pollTransmit()!].map((transmit) => readControl(transmit.type, transmit.body));
    expect(sent).toEqual([{ type: 0x20, address: { host: "198.18.0.2", port: 7000 } }, { type: 0x21, addresses: local }]);
    const plain = node(1, { toPeer: { key: key(3), address: bAddress, localAddresses: [], isGateway: false } }, local);
    plain.opened("toPeer", false);
    expect(plain.pollTransmit()).toBeUndefined(); // a responder, to a plain peer: nothing to tell
  });

  it("a connection that validated a new address of its peer's tells the peer that address; not a relayed one, nor without room", () => {
    const moved = { host: "198.18.0.5", port: 4100 };
    const links: Record<string, Link> = {
      toA: { key: key(1), address: moved, localAddresses: [], isGateway: false },
      toB: { key: key(2), address: { host: "198.18.0.2", port: 7000, relay: 3 }, localAddresses: [], isGateway: false },
    };
    const gateway = node(9, links);
    gateway.addressValidated("toA");
    const told = gateway.pollTransmit()!;
    expect(told.to).toBe("toA");
    expect(readControl(told.type, told.body)).toEqual({ type: 0x20, address: moved });
    gateway.addressValidated("toB"); // over a relay the address is the gateway's: nothing the peer should take for its own
    expect(gateway.pollTransmit()).toBeUndefined();
    const full = new Rendezvous<string>({
      ownKey: key(9), introductions: "all", acceptIntroductions: "gateways", describe: (name) => links[name]!, find: () => undefined,
      hasRoom: () => false, localAddresses: () => [], openRelay: () => undefined,
    });
    full.addressValidated("toA");
    expect(full.pollTransmit()).toBeUndefined();
    // The peer takes it as any OBSERVED_ADDRESS: an event saying where the gateway sees it now.
    const a = node(1, { toGateway: { key: key(9), address: { host: "198.18.0.2", port: 7000 }, localAddresses: [], isGateway: true } });
    a.handleControl("toGateway", told.type, told.body, 0);
    expect(events(a)).toEqual([{ type: "observedAddress", via: "toGateway", address: moved }]);
  });

  it(`a request unanswered for ${INTRODUCTION_ANSWER_MS} ms fails (noAnswer), and so do those on a connection that ends`, () => {
    const a = node(1, {
      one: { key: key(9), address: bAddress, localAddresses: [], isGateway: true },
      two: { key: key(8), address: bAddress, localAddresses: [], isGateway: true },
    });
    const first = a.request("one", key(2), 0);
    const second = a.request("two", key(3), 10);
    expect(a.nextDeadline()).toBe(INTRODUCTION_ANSWER_MS);
    a.handleTimeout(INTRODUCTION_ANSWER_MS);
    a.connectionEnded("two");
    expect(events(a)).toEqual([
      { type: "failed", requestId: first, reason: "noAnswer", detail: `the introducer did not answer within ${INTRODUCTION_ANSWER_MS} ms` },
      { type: "failed", requestId: second, reason: "noAnswer", detail: "the connection to the introducer ended" },
    ]);
    expect(a.nextDeadline()).toBe(Infinity);
  });
});
