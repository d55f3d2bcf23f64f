// The address a handshake completes at. The RESPONSE goes to where the intro came from, and the
// initiator's intros go where its application chose: those addresses are proven (or chosen). The
// packet that completes each side, though, can come from anywhere: a stranger holding its own keys
// can send its first data packet from a victim's address, and an on-path observer can re-send a
// captured RESPONSE (or first data packet) from one, ahead of the genuine. Either way the victim
// must get no more than 3× what came from its address, as after any other move of the path.
import { expect, test } from "vitest";
import type { Connection } from "sluice";
import { EvilPeer, EvilSocket, Relay, sleep } from "./evil-peer.ts";
import { bindSluice, closedAfterEach, describe3, figure } from "./harness.ts";
import { packetKind } from "./wire.ts";

const track = closedAfterEach();

/** Sends one large message as soon as `connection` exists: what would flood whoever the path points at. */
function sendAtOnce(connection: Connection): void {
  connection.send(new Uint8Array(256 * 1024)).catch(() => {});
}

/** A socket standing for a victim: it only counts what reaches it, and never answers. */
async function victimAt(host: string): Promise<EvilSocket> {
  const victim = track(await EvilSocket.bind(host));
  victim.handler = () => {};
  return victim;
}

describe3("the address a handshake completes at", () => {
  test("a stranger's first data packet sent from a victim's address: the gateway sends the victim ≤ 3× what it got from there", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const accepted = gateway.accept().then((connection) => (connection !== undefined && sendAtOnce(connection), connection));
    const peer = track(await EvilPeer.bind("127.0.0.2"));
    const victim = await victimAt("127.0.0.8");
    // The intro (and its RESPONSE) at the attacker's own address; its CONFIRM, the packet that
    // completes the gateway's side, from the victim's.
    await peer.connect(gateway.address, gateway.publicKey, { confirmVia: victim });
    expect(await accepted).toBeDefined();
    await sleep(600);
    const stats = gateway.stats();
    figure("a first data packet from a victim's address", { fromVictim: victim.bytesSent, toVictim: victim.bytesReceived, datagramsToVictim: victim.datagramsReceived });
    expect(victim.bytesSent).toBeGreaterThan(0);
    expect(victim.bytesReceived).toBeLessThanOrEqual(3 * victim.bytesSent);
    expect(stats.listenerErrors).toBe(0);
  });

  test("a RESPONSE an on-path observer re-sends from a victim's address: the initiator sends the victim ≤ 3× what it got from there", async () => {
    const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
    const node = track(await bindSluice({ host: "127.0.0.3" }));
    const relay = track(await Relay.open(gateway.address, "127.0.0.2"));
    const victim = await victimAt("127.0.0.8");
    // On the path: the genuine RESPONSE is held back, and a copy of it goes to the node from the victim's address.
    relay.intercept = (d, direction) => {
      if (direction !== "toClient" || packetKind(d.bytes) !== "response") return true;
      victim.send(d.bytes, relay.client!);
      return false;
    };
    const connection = await node.connect(relay.front.address, gateway.publicKey);
    sendAtOnce(connection);
    // Past the CONFIRM's repeats (connect()'s 3 s schedule) and the path's validation bound (3 RTOs
    // of 1 s before an RTT sample): the CONFIRM, repeated outside the Session, once went to the
    // victim every ~200 ms whatever the path allowed (~450 B for 114 B).
    await sleep(3300);
    figure("a RESPONSE from a victim's address", { fromVictim: victim.bytesSent, toVictim: victim.bytesReceived, datagramsToVictim: victim.datagramsReceived });
    expect(victim.bytesSent).toBeGreaterThan(0);
    expect(victim.bytesReceived).toBeLessThanOrEqual(3 * victim.bytesSent);
    expect(node.stats().listenerErrors).toBe(0);
  });
});
