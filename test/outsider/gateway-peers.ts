// Evil peers connected to a real Sluice gateway, and the rendezvous between two of them, driven
// from the wire spec alone: INTRODUCE_REQUEST over one connection, then the gateway's RELAY_OFFERs
// and INTRODUCTIONs read back on both.
import type { Connection, Transport } from "sluice";
import { EvilPeer, EvilSocket, type Datagram, type EvilSession } from "./evil-peer.ts";
import { CONTROL, introduceRequestBody, readRelay, readU32, relayPacket } from "./wire.ts";

export interface GatewayPeer {
  peer: EvilPeer;
  session: EvilSession;
  /** The gateway's side of this peer's connection. */
  inbound: Connection;
}

/** An evil peer on `host` connected to `gateway`, with the gateway's Connection for it. */
export async function joinGateway(gateway: Transport, host: string): Promise<GatewayPeer> {
  const peer = await EvilPeer.bind(host);
  const session = await peer.connect(gateway.address, gateway.publicKey);
  const key = Buffer.from(peer.staticKey.public);
  for (;;) {
    const inbound = await gateway.accept();
    if (inbound === undefined) throw new Error("the gateway closed");
    if (key.equals(inbound.remotePublicKey)) return { peer, session, inbound };
  }
}

export interface RelayedPair {
  /** The relay id the gateway offered `a` (for sending to `b`), and the one it offered `b`. */
  relayA: number | undefined;
  relayB: number | undefined;
}

let nextRequestId = 1;

/** `a` asks the gateway for an introduction to `b`; answers the relay ids offered (undefined: none). */
export async function requestIntroduction(a: GatewayPeer, b: GatewayPeer): Promise<RelayedPair> {
  const [offersA, offersB] = [a.session.controls(CONTROL.relayOffer).length, b.session.controls(CONTROL.relayOffer).length];
  const [introsA, introsB] = [a.session.controls(CONTROL.introduction).length, b.session.controls(CONTROL.introduction).length];
  a.session.send([a.session.control(CONTROL.introduceRequest, introduceRequestBody(nextRequestId++, b.peer.staticKey.public))]);
  const answered = await a.session.until(
    () => a.session.controls(CONTROL.introduction).length > introsA && b.session.controls(CONTROL.introduction).length > introsB,
  );
  if (!answered) throw new Error("no introduction");
  const offer = (p: GatewayPeer, before: number) => {
    const offers = p.session.controls(CONTROL.relayOffer);
    return offers.length > before ? readU32(offers[offers.length - 1].body, 32) : undefined;
  };
  return { relayA: offer(a, offersA), relayB: offer(b, offersB) };
}

/** RELAY datagrams that reached `socket` (taken out of its inbox), with their ids and inner bytes. */
export function takeRelays(socket: EvilSocket): (Datagram & { relayId: number; inner: Uint8Array })[] {
  const relays: (Datagram & { relayId: number; inner: Uint8Array })[] = [];
  for (let i = socket.inbox.length - 1; i >= 0; i--) {
    const relay = readRelay(socket.inbox[i].bytes);
    if (relay !== undefined) relays.unshift({ ...socket.inbox.splice(i, 1)[0], ...relay });
  }
  return relays;
}

/** Sends `inner` through relay `relayId` of `gateway` from `socket`. */
export function sendRelay(socket: EvilSocket, gateway: Transport, relayId: number, inner: Uint8Array): void {
  socket.send(relayPacket(relayId, inner), gateway.address);
}

/** A message from the evil side reaches the gateway's application: the connection still works. */
export async function stillDelivers(session: EvilSession, inbound: Connection): Promise<boolean> {
  const hello = new TextEncoder().encode(`still here ${session.nextMessage}`);
  session.send([{ type: "messageData", sequence: session.nextMessage++, total: hello.length, offset: 0, bytes: hello }]);
  const got = await inbound.recv({ signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  return got !== undefined && Buffer.from(got).equals(hello);
}

export const stillWorks = (p: GatewayPeer) => stillDelivers(p.session, p.inbound);
