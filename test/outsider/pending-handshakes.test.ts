// DATA packets at a connection id whose handshake is still pending, before any connection exists.
// The responder's id travels sealed in its RESPONSE, so only the initiator (or whoever it tells)
// knows it: the initiator itself floods its own pending handshake from other addresses, ahead of its
// CONFIRM. The initiator's id travels in the clear in its intro, so any observer knows it: it floods
// the initiator while the RESPONSE is on its way. Either way each packet must cost bounded work, be
// counted, never throw, draw no reply, and leave the handshake to complete as if nothing happened.
import { randomBytes, randomInt } from "node:crypto";
import { expect, test } from "vitest";
import type { Transport } from "sluice";
import { bindMany, closeSockets, EvilPeer, Relay, sleep, type Datagram, type EvilSocket } from "./evil-peer.ts";
import { bindSluice, closedAfterEach, countedSince, describe3, eventually, figure } from "./harness.ts";
import { dataHeader, INTRO, packetKind, readU32, type Address } from "./wire.ts";

const track = closedAfterEach();

const FLOOD = 10_000;

/** A DATA packet at `connectionId` that no key sealed: any phase, packet number and size (30..1500). */
function forgedData(connectionId: number, i: number): Uint8Array {
  const length = [30, 64, 1200, 1500][i % 4];
  const packet = new Uint8Array(randomBytes(length));
  // Packet 0 (what the genuine first packet carries), low numbers, and anything below 2^53.
  const packetNumber = i % 3 === 0 ? 0 : i % 3 === 1 ? i : randomInt(2 ** 47) * 64;
  packet.set(dataHeader(i % 2, connectionId, packetNumber));
  return packet;
}

/** Sends FLOOD forged packets at `connectionId` of `target` from `sockets`, in bursts the kernel keeps. */
async function flood(sockets: EvilSocket[], target: Address, connectionId: number): Promise<void> {
  for (let i = 0; i < FLOOD; i++) {
    sockets[i % sockets.length].send(forgedData(connectionId, i), target);
    if (i % 100 === 99) await sleep(1);
  }
}

/** Waits (up to 3 s) until `transport` has received nothing new for 100 ms: the flood has landed. */
async function landed(transport: Transport): Promise<void> {
  let last = -1;
  for (let waited = 0; waited < 3000 && transport.stats().datagramsReceived !== last; waited += 100) {
    last = transport.stats().datagramsReceived;
    await sleep(100);
  }
}

describe3("DATA at a pending handshake's connection id", () => {
  test("the responder's: 10,000 forged packets ahead of the CONFIRM are each one failed open (decryptFailed), unanswered; the CONFIRM then completes the handshake", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const peer = track(await EvilPeer.bind("127.0.0.2"));
    const session = await peer.connect(gateway.address, gateway.publicKey, { confirm: false });
    const flooders = await bindMany("127.0.0.4", 8);
    const replies: Datagram[] = [];
    for (const s of flooders) s.handler = (d) => replies.push(d);
    await sleep(20);
    expect(gateway.stats().handshakes).toBe(1);
    const before = gateway.stats();
    // From elsewhere, and from the initiator's own address (where the RESPONSE went).
    await flood([...flooders, peer.socket], gateway.address, session.remoteId);
    await landed(gateway);
    const d = countedSince(gateway, before);
    figure("forged DATA at a pending responder's id", d);
    expect(d.received).toBeGreaterThan(FLOOD / 4); // the kernel may drop some; those that arrived:
    expect(d.dropped).toBe(d.received);
    expect(d.decryptFailed).toBe(d.received); // each one AEAD that failed, counted
    expect(d.routed).toBe(0);
    expect(d.sent).toBe(0);
    expect(replies).toHaveLength(0);
    expect(d.listenerErrors).toBe(0);
    expect(gateway.stats().handshakes).toBe(1); // still pending, not replaced nor failed
    expect(gateway.stats().connections).toBe(0);
    // The genuine first packet completes it.
    session.send([{ type: "confirm" }]);
    const inbound = await gateway.accept();
    expect(inbound && Buffer.from(inbound.remotePublicKey).equals(peer.staticKey.public)).toBe(true);
    expect(await session.until(() => session.frames().some((f) => f.type === "confirmAck" || f.type === "ack"), 2000)).toBe(true);
    await closeSockets(flooders);
  });

  test("the initiator's (in the clear in its intro): 10,000 forged packets before the RESPONSE are dropped without crypto (unknownSender), unanswered; the RESPONSE then completes the connect", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const node = track(await bindSluice({ host: "127.0.0.3" }));
    const relay = track(await Relay.open(gateway.address, "127.0.0.2"));
    // On the path: the RESPONSE is held back while the flood runs.
    const held: Uint8Array[] = [];
    relay.intercept = (d, direction) => !(direction === "toClient" && packetKind(d.bytes) === "response" && (held.push(d.bytes), true));
    const connecting = node.connect(relay.front.address, gateway.publicKey);
    connecting.catch(() => {}); // awaited below; a failed test closes the node under it
    expect(await eventually(() => held.length > 0, 2000)).toBe(true);
    const initiatorId = readU32(relay.intros()[0], INTRO.senderId);
    const flooders = await bindMany("127.0.0.4", 8);
    const replies: Datagram[] = [];
    for (const s of flooders) s.handler = (d) => replies.push(d);
    const before = node.stats();
    await flood(flooders, node.address, initiatorId);
    await landed(node);
    const d = countedSince(node, before);
    figure("forged DATA at a pending initiator's id", d);
    // Only the flood reaches the node meanwhile (the RESPONSEs to its re-sent intros are held).
    expect(d.unknownSender).toBeGreaterThan(FLOOD / 4);
    expect(d.dropped).toBe(d.received);
    expect(d.unknownSender).toBe(d.received);
    expect(d.decryptFailed).toBe(0); // no crypto spent on them
    expect(d.routed).toBe(0);
    expect(replies).toHaveLength(0);
    expect(d.listenerErrors).toBe(0);
    expect(node.stats().handshakes).toBe(1);
    // The genuine RESPONSE (held, and the re-sends' answers) completes the connect.
    relay.intercept = undefined;
    for (const response of held) relay.front.send(response, relay.client!);
    const connection = await connecting;
    const accepted = await gateway.accept();
    await connection.send(new Uint8Array([1, 2, 3]));
    expect(await accepted!.recv({ signal: AbortSignal.timeout(2000) })).toEqual(new Uint8Array([1, 2, 3]));
    await closeSockets(flooders);
  });
});
