// RESPONSEs (0x03) forged at an initiator. The intro's sender id travels in the clear, so whoever
// sees an intro can address RESPONSEs to its connect(); only who also knows the initiator's static
// key can give them a valid mac1 (keyed by it). Neither kind is ever answered; the first costs one
// BLAKE2s each, the second an X25519 each, at most 16 per connect().
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { EvilSocket, Relay } from "./evil-peer.ts";
import { bindSluice, closedAfterEach, describe3, figure } from "./harness.ts";
import { mac, mac1Key } from "./noise.ts";
import { handshakeHeader, INTRO, KIND, packetKind, readU32, RESPONSE, RESPONSE_BYTES } from "./wire.ts";

const track = closedAfterEach();

/** A RESPONSE to connect `initiatorId` that no responder wrote; with a valid mac1 when the initiator's key is known. */
function forgedResponse(initiatorId: number, initiatorStatic?: Uint8Array): Uint8Array {
  const packet = new Uint8Array(randomBytes(RESPONSE_BYTES));
  packet.set(handshakeHeader(KIND.response, initiatorId));
  if (initiatorStatic !== undefined) packet.set(mac(mac1Key(initiatorStatic), packet.subarray(0, RESPONSE.mac1)), RESPONSE.mac1);
  return packet;
}

/** A node's connect() to a gateway through an on-path relay that, on the first intro, has `forger` send RESPONSEs for it. */
async function connectUnderForgery(forgerAt: (relay: Relay) => Promise<EvilSocket>) {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
  const node = track(await bindSluice({ host: "127.0.0.3" }));
  const relay = track(await Relay.open(gateway.address, "127.0.0.2"));
  const forger = await forgerAt(relay);
  const repliesBefore = forger.datagramsReceived;
  let seen = false;
  relay.intercept = (d, direction) => {
    if (direction !== "toServer" || seen || packetKind(d.bytes) !== "intro") return true;
    seen = true;
    const id = readU32(d.bytes, INTRO.senderId);
    for (let i = 0; i < FORGED; i++) forger.send(forgedResponse(id), d.from); // no key: mac1 fails
    for (let i = 0; i < FORGED; i++) forger.send(forgedResponse(id, node.publicKey), d.from); // the initiator's key is known
    return true; // the intro goes on: the genuine RESPONSE comes after the forgeries
  };
  const outcome = await node.connect(relay.front.address, gateway.publicKey).then(
    () => "connected",
    (e: { code?: string }) => e.code ?? "failed",
  );
  const { drops, listenerErrors } = node.stats();
  const result = { badMac: drops.badMac, decryptFailed: drops.decryptFailed, rateLimited: drops.rateLimited, outcome, repliesToForger: forger.datagramsReceived - repliesBefore };
  expect(drops.badMac).toBeGreaterThanOrEqual(FORGED);
  expect(drops.decryptFailed).toBeLessThanOrEqual(16);
  expect(drops.decryptFailed + drops.rateLimited).toBeGreaterThanOrEqual(FORGED);
  expect(listenerErrors).toBe(0);
  return result;
}

const FORGED = 500;

describe3("forged RESPONSEs", () => {
  test("1,000 RESPONSEs for a connect() seen on the path, from the observer's own address: none answered, ≤ 16 X25519s, the connect() completes", async () => {
    const result = await connectUnderForgery(async () => track(await EvilSocket.bind("127.0.0.5")));
    figure("forged RESPONSEs from the observer's address", result);
    expect(result.repliesToForger).toBe(0);
    expect(result.outcome).toBe("connected");
  });

  test("... from the address the intros go to (the observer spoofs the responder's): ≤ 16 X25519s, and the connect() fails at its deadline (the residual)", async () => {
    // The relay's front socket is the address the node's intros go to: RESPONSEs from it look like the responder's.
    const result = await connectUnderForgery(async (relay) => relay.front);
    figure("forged RESPONSEs from the responder's address", result);
    expect(result.outcome).toBe("ERR_SLUICE_CONNECT_TIMEOUT");
  });
});
