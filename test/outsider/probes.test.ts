// Path probes and the two refusal frames, from a peer that completed its handshake with a real
// gateway: PATH_CHALLENGEs sent from a victim's address (the node must answer there by no more than
// it got), a move onto a victim that the attacker tries to validate by echoing what it sees,
// answers from a third address; STOP_SENDING (0x1b) and MESSAGE_REFUSED (0x1c) cut short, for
// streams and messages that never were, and in floods.
import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import type { AddressChange, Connection, Transport } from "sluice";
import { EvilPeer, EvilSocket, sleep, type EvilSession } from "./evil-peer.ts";
import { stillDelivers } from "./gateway-peers.ts";
import { bindSluice, closedAfterEach, describe3, eventually, figure } from "./harness.ts";
import { sealData } from "./noise.ts";
import { MAX_PLAINTEXT_BYTES, type Address, type Frame } from "./wire.ts";

const track = closedAfterEach();

async function connected(): Promise<{ gateway: Transport; peer: EvilPeer; session: EvilSession; inbound: Connection }> {
  const gateway = track(await bindSluice({ host: "127.0.0.1", gateway: true }));
  const peer = track(await EvilPeer.bind("127.0.0.2"));
  const session = await peer.connect(gateway.address, gateway.publicKey);
  const inbound = (await gateway.accept())!;
  await sleep(50); // the gateway's first credit frames and ACKs
  return { gateway, peer, session, inbound };
}

const sameAddress = (a: Address, b: Address) => a.host === b.host && a.port === b.port;

/** Every address change of `connection` from now on, collected as they come. */
function watchChanges(connection: Connection): AddressChange[] {
  const changes: AddressChange[] = [];
  (async () => {
    for await (const change of connection.addressChanges()) changes.push(change);
  })().catch(() => {});
  return changes;
}

const challenge = (): Frame => ({ type: "pathChallenge", data: new Uint8Array(randomBytes(8)) });

describe3("path probes", () => {
  test("PATH_CHALLENGEs sent from a victim's address: answered there by no more bytes than each probe, the path unmoved", async () => {
    const { gateway, session, inbound } = await connected();
    const victim = track(await EvilSocket.bind("127.0.0.8"));
    const home = inbound.remoteAddress;
    const probes: Frame[][] = [
      [challenge()], // the smallest probe
      Array.from({ length: Math.floor(MAX_PLAINTEXT_BYTES / 9) }, challenge), // 130 challenges in one packet
      [challenge(), { type: "padding", length: MAX_PLAINTEXT_BYTES - 9 }],
    ];
    for (let round = 0; round < 50; round++) for (const frames of probes) session.send(frames, { via: victim });
    const sentPackets = 50 * probes.length;
    const before = gateway.stats();
    await sleep(300);
    const largestProbe = Math.max(...victim.inbox.map((d) => d.bytes.length));
    figure("probes from a victim's address", {
      probes: sentPackets,
      fromVictim: victim.bytesSent,
      toVictim: victim.bytesReceived,
      datagramsToVictim: victim.datagramsReceived,
      largestAnswer: largestProbe,
      ratio: (victim.bytesReceived / victim.bytesSent).toFixed(2),
    });
    expect(victim.bytesReceived).toBeLessThanOrEqual(victim.bytesSent);
    expect(largestProbe).toBeLessThanOrEqual(38); // each answer is the smallest probe there is (the count per probe: below)
    // Each answer holds only PATH_RESPONSEs (and padding), and a probe moves nothing.
    const answered = session.received.length;
    for (const d of victim.inbox) expect(session.handle(d)).toBe(true);
    for (const p of session.received.slice(answered)) expect(p.frames.every((f) => f.type === "pathResponse" || f.type === "padding")).toBe(true);
    expect(sameAddress(inbound.remoteAddress, home)).toBe(true);
    expect(before.listenerErrors).toBe(0);
    expect(await stillDelivers(session, inbound)).toBe(true);
  });

  // Found by this suite (probe amplification): a probe from another address was answered there by one
  // datagram per PATH_CHALLENGE it held (4 challenges, 65 B, brought back 152 B: 2.3×). Now the
  // first challenge alone is answered.
  test("a probe holding several PATH_CHALLENGEs, from a victim's address: no more bytes back than the probe", async () => {
    const { session } = await connected();
    const victim = track(await EvilSocket.bind("127.0.0.8"));
    const rows: string[] = [];
    let worst = 0;
    for (let challenges = 1; challenges <= 6; challenges++) {
      const [sent, received] = [victim.bytesSent, victim.bytesReceived];
      for (let i = 0; i < 10; i++) session.send(Array.from({ length: challenges }, challenge), { via: victim });
      await sleep(150);
      const ratio = (victim.bytesReceived - received) / (victim.bytesSent - sent);
      worst = Math.max(worst, ratio);
      rows.push(`${challenges} challenges: ${(victim.bytesSent - sent) / 10} B → ${(victim.bytesReceived - received) / 10} B (${ratio.toFixed(2)}×)`);
    }
    figure("probe answers by challenges per probe", rows.join("; "));
    expect(worst).toBeLessThanOrEqual(1);
  });

  test("a peer moved onto a victim cannot validate it by echoing every challenge it sees, nor by guessing", async () => {
    const { gateway, session, inbound } = await connected();
    const changes = watchChanges(inbound);
    const victim = track(await EvilSocket.bind("127.0.0.8"));
    victim.handler = () => {}; // the attacker cannot read what reaches the victim
    // The attacker's own socket echoes every challenge (EvilSession answers them by default), so a
    // challenge sent on the old path with the new path's data would validate the victim.
    session.send([{ type: "ping" }], { via: victim });
    expect(await eventually(() => sameAddress(inbound.remoteAddress, victim.address))).toBe(true);
    for (let i = 0; i < 20; i++) session.send([{ type: "pathResponse", data: new Uint8Array(randomBytes(8)) }]);
    for (let i = 0; i < 20; i++) session.send([{ type: "pathResponse", data: new Uint8Array(8) }], { via: victim });
    const reverted = await eventually(() => changes.some((c) => c.kind === "reverted"), 4000);
    figure("moved onto a victim, echoing and guessing", {
      changes: changes.map((c) => `${c.kind} ${c.address.host}:${c.address.port}`),
      toVictim: victim.bytesReceived,
      fromVictim: victim.bytesSent,
      challengesSeenAtHome: session.frames().filter((f) => f.type === "pathChallenge").length,
    });
    expect(reverted).toBe(true);
    expect(changes.some((c) => c.kind === "validated" && sameAddress(c.address, victim.address))).toBe(false);
    expect(victim.bytesReceived).toBeLessThanOrEqual(3 * victim.bytesSent);
    expect(gateway.stats().listenerErrors).toBe(0);
  });

  test("an answer from a third address validates the address the challenge went to, and moves nothing there", async () => {
    const { session, inbound } = await connected();
    const changes = watchChanges(inbound);
    const moved = track(await EvilSocket.bind("127.0.0.2"));
    const third = track(await EvilSocket.bind("127.0.0.7"));
    // The peer moves to a new port of its own and reads the challenge there, but answers from a third address.
    session.answerChallenges = false;
    session.socket = moved; // its ACKs leave from the new port too
    moved.handler = (d) => {
      if (!session.handle(d)) return;
      const last = session.received[session.received.length - 1];
      for (const f of last.frames) if (f.type === "pathChallenge") session.send([{ type: "pathResponse", data: f.data }], { via: third });
    };
    session.send([{ type: "ping" }], { via: moved });
    expect(await eventually(() => changes.some((c) => c.kind === "validated"), 3000)).toBe(true);
    await sleep(100);
    figure("answered from a third address", changes.map((c) => `${c.kind} ${c.address.host}:${c.address.port}`));
    expect(sameAddress(inbound.remoteAddress, moved.address)).toBe(true);
    expect(changes.every((c) => !sameAddress(c.address, third.address))).toBe(true);
  });

  test("forged PATH_RESPONSEs and PATH_CHALLENGEs (no key) are decryptFailed and answered by nothing", async () => {
    const { gateway, session } = await connected();
    const forger = track(await EvilSocket.bind("127.0.0.6"));
    const before = gateway.stats();
    for (let i = 0; i < 100; i++) {
      const frames = new Uint8Array([i % 2 === 0 ? 0x19 : 0x1a, ...randomBytes(8)]);
      forger.send(sealData(randomBytes(32), 0, session.remoteId, session.nextPacketNumber + 1 + i, frames), gateway.address);
    }
    expect(await eventually(() => gateway.stats().datagramsReceived - before.datagramsReceived >= 100)).toBe(true);
    await sleep(100);
    const after = gateway.stats();
    expect(after.drops.decryptFailed - before.drops.decryptFailed).toBe(100);
    expect(forger.datagramsReceived).toBe(0);
  });
});

describe3("STOP_SENDING (0x1b) and MESSAGE_REFUSED (0x1c)", () => {
  test("cut short: the packet is malformed, counted, and nothing in it takes effect", async () => {
    const { gateway, session, inbound } = await connected();
    const before = inbound.stats().delivery.malformedPackets;
    const hello = new TextEncoder().encode("must not arrive");
    for (const cut of [Uint8Array.of(0x1b, 0, 0), Uint8Array.of(0x1c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]) {
      // A whole message first: a packet that does not parse is dropped whole.
      session.send([{ type: "messageData", sequence: session.nextMessage, total: hello.length, offset: 0, bytes: hello }, { type: "raw", bytes: cut }]);
    }
    expect(await eventually(() => inbound.stats().delivery.malformedPackets - before >= 2)).toBe(true);
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(await stillDelivers(session, inbound)).toBe(true); // the first message is this one, not "must not arrive"
  });

  test("for streams and messages that never were, in a flood: no throw, no more bytes back than sent, later streams and messages unharmed", async () => {
    const { gateway, session, inbound } = await connected();
    const perPacket = Math.floor(MAX_PLAINTEXT_BYTES / 13);
    const sentBefore = session.socket.bytesSent;
    const receivedBefore = session.socket.bytesReceived;
    const packets: Frame[][] = [];
    // STOP_SENDING for every stream id the gateway could open, and far beyond; MESSAGE_REFUSED for
    // messages it never sent, naming a limit of 0 bytes.
    const stopIds = [...Array.from({ length: 4096 }, (_, i) => i), 2 ** 31, 2 ** 32 - 1];
    for (let i = 0; i < stopIds.length; i += Math.floor(MAX_PLAINTEXT_BYTES / 6)) {
      packets.push(stopIds.slice(i, i + Math.floor(MAX_PLAINTEXT_BYTES / 6)).map((stream) => ({ type: "stopSending", stream, code: i % 256 })));
    }
    for (let start = 0; start < 4096; start += perPacket) {
      packets.push(Array.from({ length: perPacket }, (_, i) => ({ type: "messageRefused", sequence: start + i, declared: 2 ** 32 - 1, largest: 0 })));
    }
    packets.push([{ type: "messageRefused", sequence: 2 ** 32 - 1, declared: 0, largest: 2 ** 32 - 1 }]);
    await session.sendAll(packets, { timeoutMs: 5000 });
    await sleep(100);
    const sent = session.socket.bytesSent - sentBefore;
    const back = session.socket.bytesReceived - receivedBefore;
    figure("STOP_SENDING and MESSAGE_REFUSED flood", { packets: packets.length, attackerBytes: sent, gatewayBytesBack: back, listenerErrors: gateway.stats().listenerErrors, streamErrors: inbound.stats().delivery.streamErrors });
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(back).toBeLessThanOrEqual(sent);
    expect(inbound.closed).toBe(false);
    expect(await stillDelivers(session, inbound)).toBe(true);
    // The gateway's own stream 0 and its first message were cancelled and refused before they were
    // opened or sent: neither takes effect on a stream or message that did not exist.
    const writer = inbound.openStream().getWriter();
    await writer.write(new TextEncoder().encode("stream bytes"));
    const message = inbound.send(new TextEncoder().encode("a message"));
    const streamArrived = await session.until(() => session.frames().some((f) => f.type === "streamData" && f.bytes.length > 0), 2000);
    const sendResult = await message.then(() => "sent", (e: { code?: string }) => e.code ?? "rejected");
    const messageArrived = await session.until(() => session.frames().some((f) => f.type === "messageData"), 2000);
    figure("after refusals of what never was", { streamArrived, sendResult, messageArrived });
    expect(streamArrived).toBe(true);
    expect(sendResult).toBe("sent");
    expect(messageArrived).toBe(true);
    await writer.close().catch(() => {});
  });

  test("the MESSAGE_REFUSEDs a node owes for 1023 oversize messages, never acknowledged: about the bytes the peer sent", async () => {
    const { gateway, session, inbound } = await connected();
    session.autoAck = false; // never acknowledge: the node re-sends what it owes until acknowledged
    const sentBefore = session.socket.bytesSent;
    const receivedBefore = session.socket.bytesReceived;
    // 1023 messages each declaring 4 GiB (over maxMessageBytes), one byte each.
    const frames: Frame[] = Array.from({ length: 1023 }, (_, sequence) => ({ type: "messageData", sequence, total: 2 ** 32 - 1, offset: 0, bytes: Uint8Array.of(1) }));
    const perPacket = Math.floor(MAX_PLAINTEXT_BYTES / 16);
    for (let i = 0; i < frames.length; i += perPacket) session.send(frames.slice(i, i + perPacket));
    await sleep(2000);
    const sent = session.socket.bytesSent - sentBefore;
    const back = session.socket.bytesReceived - receivedBefore;
    const refusals = session.frames().filter((f) => f.type === "messageRefused").length;
    figure("refusals owed for oversize messages, never acknowledged", { attackerBytes: sent, gatewayBytesBack: back, refusalFrames: refusals, ratio: (back / sent).toFixed(2) });
    expect(refusals).toBeGreaterThan(0);
    expect(gateway.stats().listenerErrors).toBe(0);
    expect(back).toBeLessThanOrEqual(3 * sent); // its own connection, and yet no amplifier: about 1× with its re-sends
    expect(inbound.closed).toBe(false);
  });
});
