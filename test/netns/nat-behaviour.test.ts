// The bed's NATs behave as the scenarios assume (checked through what Sluice's gateways observe),
// and a stranger gets nowhere with a node that is not a gateway.
import { beforeAll, expect, it } from "vitest";
import type { Address } from "sluice";
import type { Host, Nat } from "./support/bed.ts";
import type { Peer } from "./support/peer.ts";
import { CONE, describeNetns, figure, FULL_CONE, show, SYMMETRIC, useBed } from "./support/scenario.ts";

/** A stranger's connect() gives up after this; its intros go every ~200 ms until then. */
const STRANGER_DEADLINE_MS = 600;

describeNetns("the kernel NATs of the bed", () => {
  const bed = useBed();
  let gateways: { peer: Peer; address: Address }[];
  let behind: Record<"cone" | "symmetric" | "fullCone" | "double" | "flushed", { nat: Nat; host: Host; peer: Peer }>;
  let stranger: Peer;
  let target: { peer: Peer; address: Address };

  beforeAll(async () => {
    const internet = await bed().internet();
    gateways = [];
    for (const name of ["gateway1", "gateway2"]) {
      const host = await bed().host(name, internet);
      const peer = bed().peer(host);
      const { address } = await peer.bind({ port: 7000, gateway: true });
      gateways.push({ peer, address: { host: host.address, port: address.port } });
    }
    const strangerHost = await bed().host("stranger", internet);
    const targetHost = await bed().host("target", internet);
    behind = {} as typeof behind;
    for (const [key, behaviour] of [["cone", CONE], ["symmetric", SYMMETRIC], ["fullCone", FULL_CONE]] as const) {
      const nat = await bed().nat(`nat-${key}`, internet, behaviour);
      const host = await bed().host(`behind-${key}`, nat.lan);
      behind[key] = { nat, host, peer: bed().peer(host) };
    }
    // A second host behind the cone NAT, whose only connection is the flush test's.
    const flushedHost = await bed().host("behind-cone-2", behind.cone.nat.lan);
    behind.flushed = { nat: behind.cone.nat, host: flushedHost, peer: bed().peer(flushedHost) };
    // A double NAT (as carriers do): a cone NAT behind the cone NAT above, a host behind both.
    const inner = await bed().nat("nat-inner", behind.cone.nat.lan, CONE);
    const innerHost = await bed().host("behind-double", inner.lan);
    behind.double = { nat: behind.cone.nat, host: innerHost, peer: bed().peer(innerHost) };
    stranger = bed().peer(strangerHost);
    target = { peer: bed().peer(targetHost), address: { host: targetHost.address, port: 0 } };
    const [, bound] = await Promise.all([
      stranger.bind(),
      target.peer.bind({ port: 7100 }),
      ...Object.values(behind).map(({ peer }) => peer.bind()),
    ]);
    target.address.port = bound.address.port;
  });

  /** The address each gateway saw `peer` at (the connection's observedAddress). */
  async function seenByGateways(peer: Peer): Promise<Address[]> {
    const seen: Address[] = [];
    for (const gateway of gateways) seen.push((await peer.connect(gateway.address, gateway.peer.publicKey)).observedAddress!);
    return seen;
  }

  it("a cone NAT (masquerade) maps a socket to one external port for every destination: its own", async () => {
    const { nat, peer } = behind.cone;
    const seen = await seenByGateways(peer);
    const own = (await peer.info()).address.port;
    expect(seen).toEqual([{ host: nat.wan, port: own }, { host: nat.wan, port: own }]);
    figure("cone NAT", `both gateways see ${show(seen[0])} (the socket's own port ${own} kept)`);
  });

  it("a conntrack flush (a NAT reboot) is not a remap: a cone NAT maps the socket to the same port again", async () => {
    const { nat, peer } = behind.flushed;
    const [gateway] = gateways;
    const connected = await peer.connect(gateway!.address, gateway!.peer.publicKey);
    let accepted;
    do accepted = await gateway!.peer.accept(1000); // (the queue holds other peers' connections too)
    while (accepted.remotePublicKey !== peer.publicKey);
    await nat.flushConntrack();
    await Promise.all([peer.send(connected.connection, 1, 64), gateway!.peer.recv(accepted.connection, 1)]);
    expect((await gateway!.peer.info(accepted.connection)).remoteAddress).toEqual(accepted.remoteAddress);
    expect(accepted.remoteAddress).toEqual(connected.observedAddress);
  });

  it("a double NAT: the gateway sees the outer NAT's address", async () => {
    const { nat, host, peer } = behind.double;
    const [seen] = await seenByGateways(peer);
    expect(seen!.host).toBe(nat.wan);
    figure("double NAT", `${host.address} behind two cone NATs is seen at ${show(seen)}`);
  });

  it("a symmetric NAT (masquerade random) maps a socket to a new external port per destination", async () => {
    const { nat, peer } = behind.symmetric;
    const seen = await seenByGateways(peer);
    expect(seen.map((address) => address.host)).toEqual([nat.wan, nat.wan]);
    expect(seen[0]!.port).not.toBe(seen[1]!.port);
    figure("symmetric NAT", `gateway 1 sees ${show(seen[0])}, gateway 2 sees ${show(seen[1])}`);
  });

  it("a stranger's intros to a non-gateway are refused and counted as unknownSender; a NAT's filter may drop them first", async () => {
    /** The stranger tries `to` (whose key it knows): connect() fails; answers how many intros it sent. */
    const tryStranger = async (to: Address, publicKey: string): Promise<number> => {
      const before = (await stranger.info()).stats.datagramsSent;
      await expect(stranger.connect(to, publicKey, { deadlineMs: STRANGER_DEADLINE_MS })).rejects.toThrow(/not a gateway and not connecting to us/);
      return (await stranger.info()).stats.datagramsSent - before;
    };

    // On the public segment: every intro reaches the target, which refuses it without a handshake.
    const intros = await tryStranger(target.address, target.peer.publicKey);
    const { stats } = await target.peer.info();
    expect(intros).toBeGreaterThanOrEqual(3);
    expect(stats.drops.unknownSender).toBe(intros);
    expect(stats.datagramsReceived).toBe(intros);
    expect([stats.connections, stats.handshakes, stats.handshakesFailed]).toEqual([0, 0, 0]);

    // Behind NATs, once each node has opened a mapping by connecting to a gateway: a full cone lets
    // the stranger's intros through (refused by the node as above); Linux's own filter drops them.
    const external = async (key: "cone" | "fullCone") => {
      const { peer } = behind[key];
      const known = (await peer.info()).externalAddress;
      if (known !== undefined) return known;
      return (await peer.connect(gateways[0]!.address, gateways[0]!.peer.publicKey)).observedAddress!;
    };
    const throughFullCone = await tryStranger(await external("fullCone"), behind.fullCone.peer.publicKey);
    expect((await behind.fullCone.peer.info()).stats.drops.unknownSender).toBe(throughFullCone);
    // (Its connection to the gateway still receives, so it is the drops that must not move: every
    // intro that reached the node would be counted there, as through the full cone.)
    const behindCone = await external("cone");
    const dropsBefore = (await behind.cone.peer.info()).stats.drops;
    await tryStranger(behindCone, behind.cone.peer.publicKey);
    expect((await behind.cone.peer.info()).stats.drops).toEqual(dropsBefore);
    figure("stranger", `${intros} intros to a public non-gateway, all counted as unknownSender, no handshake; through a full cone the same (${throughFullCone}); a cone NAT's filter let none through`);
  }, 15_000);
});
