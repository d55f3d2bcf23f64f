// The handshake endpoint in virtual time: pairs (and crowds) of endpoints over a seeded in-memory
// network, no sockets, no clock. Attacks are built from the wire layout (the macs and seals an outsider
// can make), then checked for what they must not achieve.
import { afterAll, describe, expect, test } from "vitest";
import { Arena } from "../src/memory/arena.ts";
import { addressKey, type Address } from "../src/wire/address.ts";
import { PacketAead } from "../src/wire/packet-aead.ts";
import { PROTOCOL_VERSION, type ProtocolVersion } from "../src/wire/version.ts";
import { DEFAULT_RETRY } from "../src/handshake/retry.ts";
import { CoreCrypto } from "../src/handshake/core-crypto.ts";
import { HandshakeEndpoint, type Connected, type HandshakeDropReason, type HandshakeEvent, type HandshakeLimits } from "../src/handshake/endpoint.ts";
import { COOKIE_BYTES, HANDSHAKE_CONNECTION, INTRO_BYTES, INTRO_EPHEMERAL, INTRO_MAC1, KIND_COOKIE, KIND_INTRO, KIND_RESPONSE, RESPONSE_BYTES, RESPONSE_EPHEMERAL } from "../src/wire/constants.ts";
import { mac1Key, stampMacs } from "../src/handshake/macs.ts";
import { writeIntro } from "../src/handshake/noise.ts";
import { packetKey } from "../src/wire/packet-keys.ts";
import { generateKeyPair, makeSpareKeyPair, SPARE_KEY_PAIRS, spareKeyPairWanted } from "../src/handshake/primitives.ts";
import { mulberry32 } from "./support/random.ts";

const arena = Arena.create({ bytes: 4 * 1024 * 1024 });
const macs = new CoreCrypto(arena);
const aead = new PacketAead(arena);
afterAll(() => {
  macs.dispose();
  aead.dispose();
  arena.forget();
});

const FRAME_CONFIRM = 0x02;
const LIMITS: HandshakeLimits = {
  maxHandshakes: 64, maxHandshakesPerIp: 8, maxConnecting: 64, maxConnections: 128, maxConnectionsPerIp: 32,
  introBurstPerIp: 8, introsPerIpPerSecond: 4, underLoadIntrosPerSecond: 64, acceptRamp: [],
};
let nextId = 1;

interface Node {
  name: string;
  address: Address;
  endpoint: HandshakeEndpoint;
  publicKey: Uint8Array;
  drops: Partial<Record<HandshakeDropReason, number>>;
  events: HandshakeEvent[];
  /** Connections, by local id (the host's table, as a transport keeps it). */
  connected: Connected[];
  sent: { datagram: Uint8Array; to: Address }[];
}

interface Options {
  gateway?: boolean;
  limits?: Partial<HandshakeLimits>;
  secretKey?: ReturnType<typeof generateKeyPair>;
  version?: Required<ProtocolVersion>;
}

/** A network in virtual time: each datagram takes `delayMs`; `lose` decides (seeded) which vanish. */
class Network {
  now = 0;
  readonly nodes = new Map<string, Node>();
  readonly inFlight: { at: number; datagram: Uint8Array; from: Address; to: Address }[] = [];
  lose: (datagram: Uint8Array, from: Address, to: Address) => boolean = () => false;
  /** Rewrites a datagram's source on the way (a NAT). */
  translate: (from: Address, to: Address) => Address = (from) => from;
  readonly delayMs = 5;

  node(name: string, address: Address, options: Options = {}): Node {
    const identity = options.secretKey ?? generateKeyPair();
    const node: Node = { name, address, publicKey: identity.publicKey, drops: {}, events: [], connected: [], sent: [], endpoint: undefined! };
    const random = mulberry32(nextId * 7919);
    node.endpoint = new HandshakeEndpoint({
      identity, gateway: options.gateway ?? false, version: options.version ?? PROTOCOL_VERSION, retry: DEFAULT_RETRY,
      limits: { ...LIMITS, ...options.limits }, crypto: macs, random,
      randomBytes: (length) => Uint8Array.from({ length }, () => Math.floor(random() * 256)),
      newId: () => nextId++,
      openData: (key, datagram) => {
        const plaintext = aead.open(key, datagram);
        return plaintext && { plaintext: new Uint8Array(plaintext), packetNumber: Number(new DataView(datagram.buffer, datagram.byteOffset).getBigUint64(5, true)) };
      },
      countDrop: (reason) => (node.drops[reason] = (node.drops[reason] ?? 0) + 1),
    }, this.now);
    this.nodes.set(addressKey(address.host, address.port), node);
    return node;
  }

  /** Moves every node's output onto the wire, and the host's part: an initiator confirms at once. */
  flush(): void {
    for (const node of this.nodes.values()) {
      for (let t = node.endpoint.pollTransmit(); t !== undefined; t = node.endpoint.pollTransmit()) {
        node.sent.push(t);
        this.send(t.datagram, node.address, t.to);
      }
      for (let e = node.endpoint.pollEvent(); e !== undefined; e = node.endpoint.pollEvent()) {
        node.events.push(e);
        if (e.type !== "connected") continue;
        node.connected.push(e);
        if (e.role === "initiator") this.send(aead.seal(packetKey(macs, e.secrets.send), 0, e.remoteId, 0, [Uint8Array.of(FRAME_CONFIRM)]), node.address, e.address);
      }
    }
  }

  send(datagram: Uint8Array, from: Address, to: Address): void {
    if (this.lose(datagram, from, to)) return;
    this.inFlight.push({ at: this.now + this.delayMs, datagram: new Uint8Array(datagram), from: this.translate(from, to), to });
  }

  /** Delivers datagrams and fires timers until `until` (virtual ms). */
  run(until: number): void {
    for (;;) {
      this.flush();
      const nextDelivery = Math.min(...this.inFlight.map((d) => d.at));
      const nextTimer = Math.min(...[...this.nodes.values()].map((n) => n.endpoint.nextDeadline()));
      const next = Math.min(nextDelivery, nextTimer);
      if (next > until) {
        this.now = until;
        return;
      }
      this.now = Math.max(this.now, next);
      const due = this.inFlight.filter((d) => d.at <= this.now);
      this.inFlight.splice(0, this.inFlight.length, ...this.inFlight.filter((d) => d.at > this.now));
      for (const d of due) this.deliver(d.datagram, d.from, d.to);
      for (const node of this.nodes.values()) {
        if (node.endpoint.nextDeadline() <= this.now) node.endpoint.handleTimeout(this.now);
        node.endpoint.processQueued(this.now);
      }
    }
  }

  deliver(datagram: Uint8Array, from: Address, to: Address): void {
    const node = this.nodes.get(addressKey(to.host, to.port));
    if (node === undefined) return;
    const kind = datagram[0]!;
    if (kind === 0x02) {
      const id = new DataView(datagram.buffer, datagram.byteOffset).getUint32(1, true);
      node.endpoint.handleData(id, datagram, from, this.now);
    } else node.endpoint.handleDatagram(kind, datagram, from, this.now);
    node.endpoint.processQueued(this.now);
  }
}

const at = (host: string, port: number): Address => ({ host, port });
const sameKey = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("handshakes complete", () => {
  test("a node connects to a gateway: both ends are connected, with each other's keys, in two round trips", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const node = net.node("node", at("198.18.0.2", 5000));
    const connectId = node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(100);
    expect(node.connected).toHaveLength(1);
    expect(node.connected[0]).toMatchObject({ role: "initiator", connectId, observedAddress: node.address, address: gateway.address });
    expect(sameKey(node.connected[0]!.remoteKey, gateway.publicKey)).toBe(true);
    expect(gateway.connected).toHaveLength(1);
    expect(gateway.connected[0]).toMatchObject({ role: "responder", connectId: undefined, address: node.address });
    expect(sameKey(gateway.connected[0]!.remoteKey, node.publicKey)).toBe(true);
    // Keys agree crosswise.
    expect(gateway.connected[0]!.secrets.receive).toEqual(node.connected[0]!.secrets.send);
    expect(gateway.connected[0]!.secrets.send).toEqual(node.connected[0]!.secrets.receive);
    expect(net.now).toBe(100);
    expect(node.endpoint.stats()).toMatchObject({ connecting: 0, answering: 0, handshakesCompleted: 1 });
    expect(gateway.endpoint.stats()).toMatchObject({ connecting: 0, answering: 0, handshakesCompleted: 1 });
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    test(`30% of handshake datagrams lost (seed ${seed}): both ends still connect`, () => {
      const net = new Network();
      const random = mulberry32(seed);
      net.lose = () => random() < 0.3;
      const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
      const node = net.node("node", at("198.18.0.2", 5000));
      node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
      net.run(3000);
      expect(node.connected).toHaveLength(1);
      // The confirm may be lost too; the host repeats it (not modelled here) — so the gateway may lag.
      expect(gateway.connected.length + gateway.endpoint.stats().answering).toBe(1);
    });
  }

  /** Two key pairs, the lower public key first. */
  const keysInOrder = () => [generateKeyPair(), generateKeyPair()].sort((x, y) => Buffer.compare(Buffer.from(x.publicKey), Buffer.from(y.publicKey)));
  const failedConnect = (node: Node, connectId: number) => node.events.find((e) => e.type === "connectFailed" && e.connectId === connectId);

  for (const replayed of [false, true]) {
    test(`the higher key restarts and connects to the lower one soon after${replayed ? ", while a stranger replays an old intro of the lower key's to it" : ""}: it connects`, () => {
      const [lowKey, highKey] = keysInOrder();
      const net = new Network();
      const low = net.node("low", at("198.18.0.1", 4000), { secretKey: lowKey });
      const high = net.node("high", at("198.18.0.2", 4000), { secretKey: highKey, gateway: true });
      low.endpoint.connect(high.publicKey, [high.address], net.now);
      net.run(100);
      expect([low.connected.length, high.connected.length]).toEqual([1, 1]);
      const captured = low.sent.find((t) => t.datagram[0] === KIND_INTRO)!.datagram; // someone on the path keeps it
      net.run(4000);
      // The higher key's process restarts (same key and address, no memory of timestamps) and connects back.
      const restarted = net.node("high again", high.address, { secretKey: highKey });
      const connectId = restarted.endpoint.connect(low.publicKey, [low.address], net.now);
      if (replayed) net.send(captured, at("203.0.113.9", 9999), restarted.address);
      net.run(net.now + 6000);
      expect(failedConnect(restarted, connectId)).toBeUndefined();
      expect(restarted.connected).toHaveLength(1);
    });
  }

  test("a gateway with the lower key gives up its connect to the higher key after it was answered; the higher key's connect to it soon after completes", () => {
    const [lowKey, highKey] = keysInOrder();
    const net = new Network();
    const low = net.node("low", at("198.18.0.1", 4000), { secretKey: lowKey, gateway: true });
    const high = net.node("high", at("198.18.0.2", 4000), { secretKey: highKey, gateway: true });
    let lowConnecting = true;
    net.lose = (datagram, from) => lowConnecting && from.host === high.address.host && datagram[0] === KIND_RESPONSE;
    const lowConnect = low.endpoint.connect(high.publicKey, [high.address], net.now);
    net.run(50);
    low.endpoint.cancel(lowConnect); // its caller aborted, after the higher key answered (the answer was lost)
    lowConnecting = false;
    net.run(500);
    const connectId = high.endpoint.connect(low.publicKey, [low.address], net.now);
    net.run(net.now + 6000);
    expect(failedConnect(high, connectId)).toBeUndefined();
    expect(high.connected).toHaveLength(1);
  });

  test("ephemeral keys are made ahead (at most SPARE_KEY_PAIRS) and each is used once", () => {
    for (let i = 0; i < SPARE_KEY_PAIRS + 2; i++) makeSpareKeyPair();
    expect(spareKeyPairWanted()).toBe(false);
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const nodes = Array.from({ length: 2 * SPARE_KEY_PAIRS + 2 }, (_, i) => net.node(`node${i}`, at(`198.18.1.${i + 1}`, 5000)));
    for (const node of nodes) node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(100);
    expect(nodes.every((node) => node.connected.length === 1)).toBe(true);
    const ephemeral = (datagram: Uint8Array, at: number) => Buffer.from(datagram.subarray(at, at + 32)).toString("hex");
    const ephemerals = [
      ...nodes.map((node) => ephemeral(node.sent.find((t) => t.datagram[0] === KIND_INTRO)!.datagram, INTRO_EPHEMERAL)),
      ...gateway.sent.filter((t) => t.datagram[0] === KIND_RESPONSE).map((t) => ephemeral(t.datagram, RESPONSE_EPHEMERAL)),
    ];
    expect(ephemerals).toHaveLength(2 * nodes.length);
    expect(new Set(ephemerals).size).toBe(ephemerals.length); // intros' and responses' alike: none twice
    expect(spareKeyPairWanted()).toBe(true); // taken: the host makes more off the handshake's path
  });

  test("several candidate addresses (a LAN one that leads nowhere, the public one): intros go to each, the one that answers wins", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const node = net.node("node", at("198.18.0.2", 5000));
    node.endpoint.connect(gateway.publicKey, [at("198.19.1.9", 7000), gateway.address, at("198.19.1.9", 7000)], net.now);
    net.run(100);
    expect(node.connected).toHaveLength(1);
    expect(node.connected[0]!.address).toEqual(gateway.address);
    const intros = node.sent.filter((t) => t.datagram[0] === KIND_INTRO);
    expect(new Set(intros.map((t) => `${t.to.host}:${t.to.port}`))).toEqual(new Set(["198.19.1.9:7000", "198.18.0.1:7000"])); // a duplicate is one candidate
  });

  test("simultaneous open: one connection each, both connect()s answered, the higher key answered the intro", () => {
    const net = new Network();
    const a = net.node("a", at("198.18.0.1", 4000));
    const b = net.node("b", at("198.18.0.2", 4000));
    const idA = a.endpoint.connect(b.publicKey, [b.address], net.now);
    const idB = b.endpoint.connect(a.publicKey, [a.address], net.now);
    net.run(200);
    expect(a.connected).toHaveLength(1);
    expect(b.connected).toHaveLength(1);
    expect(a.connected[0]!.connectId).toBe(idA);
    expect(b.connected[0]!.connectId).toBe(idB);
    const higher = Buffer.compare(Buffer.from(a.publicKey), Buffer.from(b.publicKey)) > 0 ? a : b;
    expect(higher.connected[0]!.role).toBe("responder");
    expect(a.endpoint.stats().connecting + b.endpoint.stats().connecting).toBe(0);
  });

  test("simultaneous open where the lower key's first sight of the peer's intro comes after it connected, its confirm late: still one connection each", () => {
    // What a relayed introduction can do (each side's relay rung starts on its own clock): B's intros
    // reach A only once A is connected, and A's confirm is slow. A answers that intro (the peer could
    // have restarted); B, which is answering A's intro, must not complete as initiator as well, or each
    // side ends with a second connection that replaces the first one its application holds.
    const net = new Network();
    const [low, high] = [net.node("x", at("198.18.0.1", 4000)), net.node("y", at("198.18.0.2", 4000))]
      .sort((x, y) => Buffer.compare(Buffer.from(x.publicKey), Buffer.from(y.publicKey)));
    const a = low!;
    const b = high!;
    let held: { datagram: Uint8Array; from: Address; to: Address } | undefined;
    net.lose = (datagram, from, to) => {
      if (from.host === b.address.host && datagram[0] === KIND_INTRO && a.connected.length === 0) return true; // B's intros lost until A is connected
      if (from.host === a.address.host && datagram[0] === 0x02 && held === undefined) {
        held = { datagram: new Uint8Array(datagram), from, to }; // A's confirm, delivered late
        return true;
      }
      return false;
    };
    a.endpoint.connect(b.publicKey, [b.address], net.now);
    b.endpoint.connect(a.publicKey, [a.address], net.now);
    net.run(600); // B re-sends its intro meanwhile, and A answers it
    expect(a.connected).toHaveLength(1);
    net.send(held!.datagram, held!.from, held!.to);
    net.run(1200);
    expect(a.connected).toHaveLength(1);
    expect(b.connected).toHaveLength(1);
    expect(a.connected[0]!.role).toBe("initiator");
    expect(b.connected[0]!.role).toBe("responder");
  });
});

describe("strangers and replays", () => {
  test("a non-gateway does not answer a stranger, and the stranger's connect fails after its deadline", () => {
    const net = new Network();
    const lonely = net.node("lonely", at("198.18.0.1", 4000));
    const stranger = net.node("stranger", at("198.18.0.2", 4000));
    const id = stranger.endpoint.connect(lonely.publicKey, [lonely.address], net.now);
    net.run(4000);
    expect(lonely.sent).toHaveLength(0);
    expect(lonely.drops.unknownSender).toBeGreaterThan(0);
    expect(stranger.events).toEqual([expect.objectContaining({ type: "connectFailed", connectId: id })]);
  });

  test("random bytes shaped like an intro stop at mac1: no reply, no queued work, no X25519", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const random = mulberry32(9);
    for (let i = 0; i < 1000; i++) {
      const garbage = Uint8Array.from({ length: INTRO_BYTES }, () => Math.floor(random() * 256));
      garbage[0] = KIND_INTRO;
      garbage[1] = 2;
      gateway.endpoint.handleDatagram(KIND_INTRO, garbage, at("198.18.1.1", 1000 + i), net.now);
      expect(gateway.endpoint.hasQueuedWork).toBe(false);
    }
    net.flush();
    expect(gateway.drops.badMac).toBe(1000);
    expect(gateway.sent).toHaveLength(0);
  });

  test("a replayed intro is answered by nothing and changes nothing: while connected, and after the connection ended", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const node = net.node("node", at("198.18.0.2", 5000));
    node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(100);
    const intro = node.sent.find((t) => t.datagram[0] === KIND_INTRO)!.datagram;
    const before = gateway.sent.length;
    // From the node's address and from an attacker's.
    net.deliver(intro, node.address, gateway.address);
    net.deliver(intro, at("198.18.9.9", 666), gateway.address);
    net.run(200);
    expect(gateway.sent.length).toBe(before);
    expect(gateway.drops.replayed).toBe(2);
    expect(gateway.endpoint.stats().answering).toBe(0);
    // The connection ends; the replay is still refused.
    gateway.endpoint.connectionEnded(gateway.connected[0]!.remoteKey, gateway.connected[0]!.localId);
    net.deliver(intro, at("198.18.9.9", 667), gateway.address);
    net.run(300);
    expect(gateway.sent.length).toBe(before);
    expect(gateway.drops.replayed).toBe(3);
  });

  test("a restarted peer (same key, newer intro) connects again at once, and its new connection replaces the old", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const secretKey = generateKeyPair();
    const first = net.node("first", at("198.18.0.2", 5000), { secretKey });
    first.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(100);
    const oldIntro = first.sent.find((t) => t.datagram[0] === KIND_INTRO)!.datagram;
    net.nodes.delete(addressKey("198.18.0.2", 5000));
    const again = net.node("again", at("198.18.0.2", 5001), { secretKey });
    // The attacker replays the old intro first, from the restarted peer's new address even.
    net.deliver(oldIntro, again.address, gateway.address);
    again.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(300);
    expect(again.connected).toHaveLength(1);
    expect(gateway.connected).toHaveLength(2);
    expect(sameKey(gateway.connected[1]!.remoteKey, again.publicKey)).toBe(true);
    expect(gateway.drops.replayed).toBe(1);
  });

  test("a gateway's connect(X, K) is answered only by K: an intro from another key at X is a separate stranger", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true });
    const target = generateKeyPair();
    const attacker = net.node("attacker", at("198.18.0.5", 5000));
    const id = gateway.endpoint.connect(target.publicKey, [attacker.address], net.now);
    attacker.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(4000);
    // The attacker got a connection as itself (a gateway takes strangers), never as K.
    expect(gateway.connected.every((c) => c.connectId !== id && sameKey(c.remoteKey, attacker.publicKey))).toBe(true);
    expect(gateway.events).toContainEqual(expect.objectContaining({ type: "connectFailed", connectId: id }));
  });

  test("an intro sealed with another static key than it claims does not open (ss proves the key)", () => {
    const net = new Network();
    const a = net.node("a", at("198.18.0.1", 4000));
    const b = net.node("b", at("198.18.0.2", 4000));
    a.endpoint.connect(b.publicKey, [b.address], net.now);
    b.endpoint.connect(a.publicKey, [a.address], net.now);
    // A forger who knows both public keys but not a's secret writes an intro claiming to be a.
    const forger = generateKeyPair();
    const forged = writeIntro(macs, { privateKey: forger.privateKey, publicKey: a.publicKey }, b.publicKey, { senderId: 99, timestamp: Date.now() * 2000, version: PROTOCOL_VERSION })!;
    stampMacs(macs, forged.intro, INTRO_MAC1, mac1Key(macs, b.publicKey), undefined);
    net.deliver(forged.intro, a.address, b.address);
    expect(b.drops.decryptFailed).toBe(1);
    net.run(300);
    expect(a.connected).toHaveLength(1);
    expect(b.connected).toHaveLength(1);
  });
});

describe("under load", () => {
  test("a responder under load answers an intro without a cookie with a COOKIE reply only; the initiator comes back with mac2 and connects", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { underLoadIntrosPerSecond: 0 } });
    const node = net.node("node", at("198.18.0.2", 5000));
    node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(100);
    const kinds = gateway.sent.map((t) => t.datagram[0]);
    expect(kinds[0]).toBe(KIND_COOKIE);
    expect(gateway.sent[0]!.datagram.length).toBe(COOKIE_BYTES);
    expect(kinds).toContain(KIND_RESPONSE);
    expect(node.connected).toHaveLength(1);
    expect(gateway.connected).toHaveLength(1);
    // No reply larger than its request.
    for (const t of gateway.sent) expect(t.datagram.length).toBeLessThanOrEqual(INTRO_BYTES);
    expect(RESPONSE_BYTES).toBeLessThan(INTRO_BYTES);
  });

  test("a cookie is bound to the address: an intro stamped with one address's cookie, sent from another, gets a cookie again", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { underLoadIntrosPerSecond: 0 } });
    const node = net.node("node", at("198.18.0.2", 5000));
    node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(20); // cookie received, intro re-sent with mac2
    const withCookie = node.sent.filter((t) => t.datagram[0] === KIND_INTRO).at(-1)!.datagram;
    const cookiesBefore = gateway.endpoint.stats().cookiesSent;
    net.deliver(withCookie, at("198.18.7.7", 7777), gateway.address);
    expect(gateway.endpoint.stats().cookiesSent).toBe(cookiesBefore + 1);
    expect(gateway.endpoint.hasQueuedWork).toBe(false);
  });

  test("an answered intro whose response was lost, re-sent with a cookie from a new port (a NAT rebinding), gets its response: a cookie does not make it a replay", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { underLoadIntrosPerSecond: 1 } });
    const node = net.node("node", at("198.18.0.2", 5000));
    let port = 5000;
    net.translate = (from) => (from.host === "198.18.0.2" ? at(from.host, port) : from);
    net.lose = (datagram) => datagram[0] === KIND_RESPONSE && net.now < 150; // the first answer is lost
    node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(100);
    expect(gateway.endpoint.stats().answering).toBe(1);
    port = 5001; // the node's NAT maps it anew: its re-send comes from elsewhere, the gateway is "under load"
    net.nodes.set(addressKey("198.18.0.2", 5001), node);
    net.run(1000);
    expect(gateway.endpoint.stats().cookiesSent).toBeGreaterThan(0);
    expect(gateway.drops.replayed).toBeUndefined();
    expect(node.connected).toHaveLength(1);
    expect(gateway.connected).toHaveLength(1);
  });

  test("with every handshake slot taken, an intro is dropped before its X25519; a copy of one waiting for it is not queued twice", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { introsPerIpPerSecond: 10_000, introBurstPerIp: 10_000, underLoadIntrosPerSecond: 100_000 } });
    const intros = Array.from({ length: LIMITS.maxHandshakesPerIp + 1 }, (_, i) => {
      const intro = writeIntro(macs, generateKeyPair(), gateway.publicKey, { senderId: 100_000 + i, timestamp: Date.now() * 1000 + i, version: PROTOCOL_VERSION })!.intro;
      stampMacs(macs, intro, INTRO_MAC1, mac1Key(macs, gateway.publicKey), undefined);
      return intro;
    });
    const from = (i: number) => at("198.18.66.66", 10_000 + i);
    // A copy while the first waits: one decryption, one answer.
    gateway.endpoint.handleDatagram(KIND_INTRO, intros[0]!, from(0), net.now);
    gateway.endpoint.handleDatagram(KIND_INTRO, intros[0]!, from(0), net.now);
    expect(gateway.drops.handshakeRedundant).toBe(1);
    gateway.endpoint.processQueued(net.now);
    net.flush();
    expect(gateway.sent.filter((t) => t.datagram[0] === KIND_RESPONSE)).toHaveLength(1);
    for (let i = 1; i < LIMITS.maxHandshakesPerIp; i++) gateway.endpoint.handleDatagram(KIND_INTRO, intros[i]!, from(i), net.now);
    gateway.endpoint.processQueued(net.now);
    expect(gateway.endpoint.stats().answering).toBe(LIMITS.maxHandshakesPerIp);
    // The IP's slots are full: the next intro is refused before any work is queued for it.
    gateway.endpoint.handleDatagram(KIND_INTRO, intros.at(-1)!, from(99), net.now);
    expect(gateway.endpoint.hasQueuedWork).toBe(false);
    expect(gateway.drops.overCapacity).toBe(1);
  });

  test("a burst of intros from one IP, none decrypted yet, is queued only up to the IP's free handshake slots", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { introsPerIpPerSecond: 10_000, introBurstPerIp: 10_000, underLoadIntrosPerSecond: 100_000 } });
    for (let i = 0; i < 2 * LIMITS.maxHandshakesPerIp; i++) {
      const intro = writeIntro(macs, generateKeyPair(), gateway.publicKey, { senderId: 200_000 + i, timestamp: Date.now() * 1000 + i, version: PROTOCOL_VERSION })!.intro;
      stampMacs(macs, intro, INTRO_MAC1, mac1Key(macs, gateway.publicKey), undefined);
      gateway.endpoint.handleDatagram(KIND_INTRO, intro, at("198.18.66.67", 20_000 + i), net.now);
    }
    // Dropped at once, before any X25519: the queued ones will take every slot of the IP.
    expect(gateway.drops.overCapacity).toBe(LIMITS.maxHandshakesPerIp);
    gateway.endpoint.processQueued(net.now);
    expect(gateway.endpoint.stats().answering).toBe(LIMITS.maxHandshakesPerIp);
    expect(gateway.drops.overCapacity).toBe(LIMITS.maxHandshakesPerIp); // none refused after its decryption
  });

  test("a loaded responder (COOKIE replies, its answers lost): the connect backs off and gives up at 3 × deadlineMs, saying the peer is loaded", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { underLoadIntrosPerSecond: 0 } });
    const node = net.node("node", at("198.18.0.2", 5000));
    net.lose = (datagram) => datagram[0] === KIND_RESPONSE;
    const id = node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(DEFAULT_RETRY.deadlineMs + 100);
    expect(node.events).toHaveLength(0); // past the plain deadline, still trying
    net.run(3 * DEFAULT_RETRY.deadlineMs + 100);
    expect(node.events).toEqual([expect.objectContaining({ type: "connectFailed", connectId: id })]);
    const failed = node.events[0] as Extract<HandshakeEvent, { type: "connectFailed" }>;
    expect(failed.error.message).toMatch(/up but loaded/);
    // Fewer intros in 9 s than the fixed 200 ms schedule sends in 3 s (13–19).
    expect(node.sent.filter((t) => t.datagram[0] === KIND_INTRO).length).toBeLessThan(13);
  });

  test("a genuine COOKIE replayed from an address the connect does not send to is dropped: no intro goes there, the cookie held is not replaced", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { underLoadIntrosPerSecond: 0 } });
    const node = net.node("node", at("198.18.0.2", 5000));
    let captured: Uint8Array | undefined;
    net.lose = (datagram) => {
      if (datagram[0] !== KIND_COOKIE || captured !== undefined) return false;
      captured = datagram; // the first COOKIE is held back
      return true;
    };
    node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(20);
    expect(captured).toBeDefined();
    const elsewhere = at("198.18.9.9", 9);
    net.deliver(captured!, elsewhere, node.address);
    net.flush();
    expect(node.drops.unknownSender).toBe(1);
    expect(node.sent.filter((t) => t.to.host === elsewhere.host)).toHaveLength(0);
    net.run(1000); // from the gateway's own address the next COOKIE is taken, and the node connects
    expect(node.connected).toHaveLength(1);
  });

  test("forged COOKIE replies (random bytes with the connect's id) do not open: no back-off, the connect to a silent peer fails at its 3 s deadline", () => {
    const net = new Network();
    const silent = net.node("silent", at("198.18.0.1", 7000));
    const node = net.node("node", at("198.18.0.2", 5000));
    const id = node.endpoint.connect(silent.publicKey, [silent.address], net.now);
    const random = mulberry32(3);
    for (let i = 0; i < 50; i++) {
      const forged = Uint8Array.from({ length: COOKIE_BYTES }, () => Math.floor(random() * 256));
      forged[0] = KIND_COOKIE;
      forged[1] = 2;
      new DataView(forged.buffer).setUint32(HANDSHAKE_CONNECTION, id, true); // the intro's sender id
      net.deliver(forged, silent.address, node.address);
    }
    expect(node.drops.decryptFailed).toBe(50);
    net.run(DEFAULT_RETRY.deadlineMs + 100);
    expect(node.events).toEqual([expect.objectContaining({ type: "connectFailed", connectId: id })]);
  });

  test("1,000 fresh keys from 1,000 ports of one IP hold at most its per-IP share; another IP still connects", () => {
    const net = new Network();
    const gateway = net.node("gateway", at("198.18.0.1", 7000), { gateway: true, limits: { introsPerIpPerSecond: 10_000, introBurstPerIp: 10_000, underLoadIntrosPerSecond: 100_000 } });
    for (let i = 0; i < 1000; i++) {
      const key = generateKeyPair();
      const intro = writeIntro(macs, key, gateway.publicKey, { senderId: 100_000 + i, timestamp: Date.now() * 1000 + i, version: PROTOCOL_VERSION })!;
      stampMacs(macs, intro.intro, INTRO_MAC1, mac1Key(macs, gateway.publicKey), undefined);
      net.deliver(intro.intro, at("198.18.66.66", 10_000 + i), gateway.address);
    }
    net.flush();
    expect(gateway.endpoint.stats().answering).toBe(LIMITS.maxHandshakesPerIp);
    const node = net.node("node", at("198.18.0.2", 5000));
    node.endpoint.connect(gateway.publicKey, [gateway.address], net.now);
    net.run(net.now + 100);
    expect(node.connected).toHaveLength(1);
  });
});

describe("bad input to connect()", () => {
  test("a low-order public key is a RangeError that says so, and nothing is left behind", () => {
    const net = new Network();
    const node = net.node("node", at("198.18.0.2", 5000));
    const lowOrder = [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))];
    for (const key of lowOrder) expect(() => node.endpoint.connect(key, [at("198.18.0.1", 7000)], net.now)).toThrow(/low-order/);
    expect(node.endpoint.stats().connecting).toBe(0);
    expect(node.endpoint.nextDeadline()).toBe(Infinity);
  });
});
