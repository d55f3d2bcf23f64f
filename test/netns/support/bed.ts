// A network made of Linux network namespaces for one test file: a "public internet" segment, NAT
// routers (the kernel's own NAT: nftables masquerade and conntrack), hosts behind them, loss, and
// Sluice peers running in the hosts. Everything is made per run and always removed.
//
// Names: every namespace is `sluice-<pid>-<bed>-<name>`, so parallel runs never collide; a bed
// removes the namespaces of runs whose process is gone (a crash, a SIGKILL) before making its own.
// Interfaces are created inside their namespaces, so no name ever exists in the host's namespace.
// Addresses: only 198.18.0.0/15 (RFC 2544's benchmarking range), inside these namespaces:
// 198.18.0.0/24 for the public segment, 198.19.N.0/24 for the LAN behind NAT number N.
//
// Shape: a segment is a bridge in a namespace of its own (the public one) or in its router's (a LAN);
// a host or a router's WAN side is one end of a veth pair whose other end is a port of the bridge.
// A double NAT is a NAT whose upstream is another NAT's LAN.
//
// The kernel's NAT, as measured here (kernel 6.18), which scenarios must allow for:
// - masquerade keeps the socket's source port for every destination while no other mapping holds it
//   (a cone); `masquerade random` draws a new port per conntrack entry, i.e. per destination.
// - conntrack filters by address and port: only a reply to where the host sent gets in.
// - A packet to the router's own address that reaches its stack (no mapping, a closed port) leaves a
//   confirmed conntrack entry holding that port, and masquerade then moves the host to a random
//   port: the routers drop such packets before conntrack confirms them (see the input chain).
// - A conntrack flush is not a remap: the next packet gets the same preserved port. A remap needs
//   the old port unavailable as well (here: a pinned port, see Nat.remap).
// - UDP mappings last 30 s (nf_conntrack_udp_timeout) until a flow has had replies for 2 s, then
//   120 s (nf_conntrack_udp_timeout_stream), refreshed by each packet.
// - No hairpinning: a LAN host's packet to its own router's WAN address ends at the router.
// - Hosts on one LAN reach each other: with br_netfilter loaded (as on this machine), bridged packets
//   pass the router's forward chain too (in and out on "lan"), which therefore accepts them.
import { runIn, run, runSync } from "./commands.ts";
import { Peer } from "./peer.ts";

const NAME_PREFIX = "sluice-";
const PUBLIC_PREFIX = "198.18.0";
/** A peer that does not exit within this after its stdin closed is killed. */
const PEER_STOP_GRACE_MS = 1000;
/** First external port a remap pins a cone NAT's host to: below Linux's ephemeral range (32768-60999), so never a preserved port. */
const FIRST_PINNED_PORT = 20000;

export interface Segment {
  /** The namespace that holds the segment's bridge. */
  readonly namespace: string;
  readonly bridge: string;
  /** The first three octets of its /24. */
  readonly prefix: string;
  /** The address hosts on it route through (a NAT's LAN side), if any. */
  readonly router?: string;
}

export interface Host {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
}

/**
 * How a NAT maps and filters (RFC 4787's terms).
 * - mapping "cone": one external port per internal socket whatever the destination (Linux masquerade
 *   keeps the source port when it is free); "symmetric": a new random port per destination
 *   (`masquerade random`).
 * - filtering "address-and-port": inbound only from where the host has sent (conntrack: Linux's own);
 *   "endpoint-independent": anyone may send to a mapped port ("full cone", emulated with a dynamic
 *   nftables map from external port to internal socket, refreshed by every outbound packet).
 */
export interface NatBehaviour {
  mapping: "cone" | "symmetric";
  filtering: "address-and-port" | "endpoint-independent";
}

/** Percent of packets dropped, each way, at a NAT (numgen random: not seeded, so only the rate is fixed). */
export interface Loss {
  /** From the LAN to the WAN side. */
  outbound: number;
  /** From the WAN to the LAN side. */
  inbound: number;
}

const live = new Set<Bed>();
let beds = 0;
let handlersInstalled = false;

/** Removes every live bed synchronously: the process is exiting, or a signal is about to end it. */
function destroyAllSync(): void {
  for (const bed of live) bed.destroySync();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once("exit", destroyAllSync);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.once(signal, () => {
      destroyAllSync();
      process.exit(code);
    });
  }
}

/** Namespaces left by runs whose process is gone. */
function staleNamespaces(): string[] {
  const names = runSync("ip", ["netns", "list"]).split("\n").map((line) => line.split(" ")[0]!);
  return names.filter((name) => {
    const pid = /^sluice-(\d+)-/.exec(name)?.[1];
    if (pid === undefined) return false;
    try {
      process.kill(Number(pid), 0);
      return false; // its run is alive
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  });
}

function deleteNamespaceSync(name: string): void {
  try {
    runSync("ip", ["netns", "del", name]);
  } catch {
    // already gone
  }
}

let availability: string | undefined | null = null;

/**
 * Why this machine cannot run the bed (undefined when it can): it needs Linux, root, iproute2's
 * `ip netns`, nftables in a namespace, and conntrack. Probed once per process with a throwaway namespace.
 */
export function netnsUnavailable(): string | undefined {
  if (availability !== null) return availability;
  availability = probe();
  return availability;
}

function probe(): string | undefined {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "network namespaces need root (run as root, as CI does)";
  for (const [tool, flag, from] of [["ip", "-V", "iproute2"], ["nft", "--version", "nftables"], ["conntrack", "--version", "conntrack"]] as const) {
    try {
      runSync(tool, [flag]);
    } catch {
      return `${tool} is missing (apt-get install -y ${from})`;
    }
  }
  const name = `${NAME_PREFIX}${process.pid}-probe`;
  try {
    runSync("ip", ["netns", "add", name]);
    runSync("ip", ["netns", "exec", name, "nft", "list", "ruleset"]);
    runSync("ip", ["netns", "exec", name, "conntrack", "-L"]);
    return undefined;
  } catch (error) {
    return `cannot make a network namespace with nftables and conntrack: ${(error as Error).message}`;
  } finally {
    deleteNamespaceSync(name);
  }
}

export class Bed {
  readonly #prefix: string;
  readonly #namespaces: string[] = [];
  readonly #peers = new Set<Peer>();
  /** Bridge ports made per segment namespace (their names: p1, p2...). */
  readonly #ports = new Map<string, number>();
  /** Next host number per segment prefix. */
  readonly #hostNumbers = new Map<string, number>();
  #lans = 0;

  private constructor() {
    this.#prefix = `${NAME_PREFIX}${process.pid}-${++beds}-`;
  }

  /** A new, empty bed; first removes what dead runs left. Throws if netnsUnavailable() says why not. */
  static async create(): Promise<Bed> {
    const unavailable = netnsUnavailable();
    if (unavailable !== undefined) throw new Error(unavailable);
    for (const name of staleNamespaces()) deleteNamespaceSync(name);
    installExitHandlers();
    const bed = new Bed();
    live.add(bed);
    return bed;
  }

  /** The public internet: a bridge on 198.18.0.0/24 in a namespace of its own, no router. */
  async internet(): Promise<Segment> {
    const namespace = await this.#namespace("internet");
    await this.#bridge(namespace, "br0");
    return { namespace, bridge: "br0", prefix: PUBLIC_PREFIX };
  }

  /** A host on `segment` (its default route through the segment's router, if any). */
  async host(name: string, segment: Segment): Promise<Host> {
    const namespace = await this.#namespace(name);
    const address = await this.#attach(namespace, "eth0", segment);
    return { name, namespace, address };
  }

  /** A NAT router on `upstream`, with a LAN of its own (198.19.N.0/24, N = 1, 2...) for hosts behind it. */
  async nat(name: string, upstream: Segment, behaviour: NatBehaviour): Promise<Nat> {
    const namespace = await this.#namespace(name);
    const wan = await this.#attach(namespace, "wan", upstream);
    const prefix = `198.19.${++this.#lans}`;
    await this.#bridge(namespace, "lan", `${prefix}.1/24`);
    await runIn(namespace, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    const nat = new Nat(namespace, wan, { namespace, bridge: "lan", prefix, router: `${prefix}.1` }, behaviour);
    await nat.configure(behaviour);
    return nat;
  }

  /**
   * Moves `host` to `segment` (a laptop leaving one network for another): its link to the old segment
   * is removed, then a new one plugged into `segment`, with a new address and default route. Its
   * sockets stay open; from `cutAt` to `liveAt` (epoch ms) it has no link at all. Answers the host as
   * it is now.
   */
  async move(host: Host, segment: Segment): Promise<{ host: Host; cutAt: number; liveAt: number }> {
    const now = () => performance.timeOrigin + performance.now();
    await run("ip", ["-n", host.namespace, "link", "del", "eth0"]); // both ends of the veth pair go
    const cutAt = now();
    const address = await this.#attach(host.namespace, "eth0", segment);
    return { host: { ...host, address }, cutAt, liveAt: now() };
  }

  /** A Sluice peer process (test/netns/peer.mjs) in `host`, stopped by destroy(). */
  peer(host: Host): Peer {
    const peer = new Peer(host.namespace, host.name);
    this.#peers.add(peer);
    return peer;
  }

  /** Stops every peer, then removes every namespace (and with them every interface and rule). */
  async destroy(): Promise<void> {
    await Promise.all([...this.#peers].map((peer) => peer.stop(PEER_STOP_GRACE_MS)));
    this.#peers.clear();
    await Promise.all(this.#namespaces.splice(0).map((name) => run("ip", ["netns", "del", name]).catch(() => {})));
    live.delete(this);
  }

  /** destroy() for exit handlers: kills the peers and removes the namespaces without waiting on anything. */
  destroySync(): void {
    for (const peer of this.#peers) peer.kill();
    this.#peers.clear();
    for (const name of this.#namespaces.splice(0)) deleteNamespaceSync(name);
    live.delete(this);
  }

  async #namespace(name: string): Promise<string> {
    const namespace = `${this.#prefix}${name}`;
    await run("ip", ["netns", "add", namespace]);
    this.#namespaces.push(namespace);
    await run("ip", ["-n", namespace, "link", "set", "lo", "up"]);
    return namespace;
  }

  async #bridge(namespace: string, name: string, address?: string): Promise<void> {
    await run("ip", ["-n", namespace, "link", "add", name, "type", "bridge"]);
    if (address !== undefined) await run("ip", ["-n", namespace, "addr", "add", address, "dev", name]);
    await run("ip", ["-n", namespace, "link", "set", name, "up"]);
  }

  /** Plugs interface `ifname` of `namespace` into `segment`'s bridge; answers its address there. */
  async #attach(namespace: string, ifname: string, segment: Segment): Promise<string> {
    const portNumber = (this.#ports.get(segment.namespace) ?? 0) + 1;
    this.#ports.set(segment.namespace, portNumber);
    const port = `p${portNumber}`;
    const hostNumber = (this.#hostNumbers.get(segment.prefix) ?? 1) + 1; // .1 is the router's
    this.#hostNumbers.set(segment.prefix, hostNumber);
    const address = `${segment.prefix}.${hostNumber}`;
    await run("ip", ["link", "add", ifname, "netns", namespace, "type", "veth", "peer", "name", port, "netns", segment.namespace]);
    await run("ip", ["-n", segment.namespace, "link", "set", port, "master", segment.bridge, "up"]);
    await run("ip", ["-n", namespace, "addr", "add", `${address}/24`, "dev", ifname]);
    await run("ip", ["-n", namespace, "link", "set", ifname, "up"]);
    if (segment.router !== undefined) await run("ip", ["-n", namespace, "route", "add", "default", "via", segment.router]);
    return address;
  }
}

/** A NAT router: its rules can change at any time (behaviour, loss, a remap) while traffic flows. */
export class Nat {
  readonly namespace: string;
  /** Its address on the upstream segment (what peers outside see). */
  readonly wan: string;
  /** The segment behind it, for bed.host(). */
  readonly lan: Segment;
  #behaviour: NatBehaviour;
  /** Internal address → the single external port a remap moved it to (cone mapping only). */
  readonly #pinned = new Map<string, number>();
  #nextPinnedPort = FIRST_PINNED_PORT;

  /** @internal Made by Bed.nat(). */
  constructor(namespace: string, wan: string, lan: Segment, behaviour: NatBehaviour) {
    this.namespace = namespace;
    this.wan = wan;
    this.lan = lan;
    this.#behaviour = behaviour;
  }

  /**
   * Replaces the NAT's rules in one nftables transaction (e.g. relaxing symmetric to cone mid-transfer).
   * Live mappings stay in conntrack; the full-cone map refills from the next outbound packet of each.
   */
  async configure(behaviour: NatBehaviour): Promise<void> {
    this.#behaviour = { ...behaviour };
    await this.#nft(this.#rules());
  }

  /**
   * Gives `host` a new external port, as a NAT that lost its mapping and could not keep the port: the
   * old port leads nowhere from then on. A cone mapping moves to a pinned port (answered); a
   * symmetric one to new random ports (undefined: they are picked per destination).
   *
   * The host is cut off while its conntrack entries are deleted: with traffic flowing, a packet
   * between two deletions re-creates a mapping (and the full-cone map re-learns the old port from
   * it), which made the "new" port the old one or a random one in some runs. One script in the
   * namespace does it all (one command per step from here took 30-100 ms each on a loaded machine)
   * and stamps the cut: from `cutAt` (the cut is in force) to `liveAt` (the new rules are being
   * loaded), epoch ms, nothing reaches or leaves the host.
   */
  async remap(host: Host): Promise<{ port: number | undefined; cutAt: number; liveAt: number }> {
    const cutRules = this.#rules(host.address);
    let port: number | undefined;
    if (this.#behaviour.mapping === "cone") {
      port = this.#nextPinnedPort++;
      this.#pinned.set(host.address, port);
    }
    // conntrack exits 1 both when nothing matched and when it failed: a failed deletion shows as an
    // unchanged port, which every remap test checks.
    const stamps = await runIn(this.namespace, "sh", ["-ec", `
      printf '%s' "$1" | nft -f -
      date +%s%N
      conntrack -D -p udp --orig-src "$3" >/dev/null 2>&1 || true
      conntrack -D -p udp --reply-src "$3" >/dev/null 2>&1 || true
      date +%s%N
      printf '%s' "$2" | nft -f -`, "remap", cutRules, this.#rules(), host.address]);
    const [cutAt, liveAt] = stamps.trim().split("\n").map((nanoseconds) => Number(nanoseconds) / 1e6);
    return { port, cutAt: cutAt!, liveAt: liveAt! };
  }

  /**
   * The NAT's nftables rules, as one transaction that replaces the previous ones (the full-cone map
   * starts empty); with `cutOff`, nothing is forwarded from or to that internal address.
   */
  #rules(cutOff?: string): string {
    const { mapping, filtering } = this.#behaviour;
    const fullCone = filtering === "endpoint-independent";
    const pins = [...this.#pinned].map(([host, port]) => `oifname "wan" ip saddr ${host} meta l4proto udp masquerade to :${port}`);
    const cut = cutOff === undefined ? "" : `ip saddr ${cutOff} drop\nip daddr ${cutOff} drop`;
    return `
      table ip nat; delete table ip nat
      table ip nat {
        map cone { type inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout 120s; }
        chain postrouting {
          type nat hook postrouting priority srcnat; policy accept;
          ${pins.join("\n")}
          oifname "wan" masquerade${mapping === "symmetric" ? " random" : ""}
        }
        chain forward {
          type filter hook forward priority filter; policy drop;
          ${cut}
          ct state established,related accept
          iifname "lan" oifname "lan" accept
          iifname "lan" oifname "wan" accept
          ${fullCone ? `iifname "wan" ct status dnat accept` : ""}
        }
        # Unsolicited packets to the router itself are dropped before conntrack confirms them. Let through
        # (to a closed port), a peer's early intro leaves an entry that holds the host's port, and the host's
        # own first packet to that peer is then masqueraded to a random port: hole punching fails.
        chain input {
          type filter hook input priority filter; policy accept;
          iifname "wan" ct state established,related accept
          iifname "wan" drop
        }
        ${fullCone ? `
        chain remember {
          type filter hook postrouting priority srcnat + 1; policy accept;
          oifname "wan" ct direction original meta l4proto udp update @cone { udp sport : ct original ip saddr . ct original proto-src }
        }
        chain admit {
          type nat hook prerouting priority dstnat; policy accept;
          iifname "wan" meta l4proto udp dnat ip to udp dport map @cone
        }` : ""}
      }`;
  }

  /** Drops `loss.outbound` % of packets leaving the LAN and `loss.inbound` % entering it; 0 and 0 for none. */
  async setLoss(loss: Loss): Promise<void> {
    const rule = (from: string, to: string, percent: number) =>
      percent > 0 ? `iifname "${from}" oifname "${to}" numgen random mod 100 < ${percent} drop` : "";
    await this.#nft(`
      table ip loss; delete table ip loss
      table ip loss {
        chain forward {
          type filter hook forward priority filter - 1; policy accept;
          ${rule("lan", "wan", loss.outbound)}
          ${rule("wan", "lan", loss.inbound)}
        }
      }`);
  }

  /** Forgets every mapping (a NAT reboot): a cone NAT maps each socket to its own port again, if free. */
  async flushConntrack(): Promise<void> {
    await runIn(this.namespace, "conntrack", ["-F"]);
  }

  #nft(script: string): Promise<string> {
    return runIn(this.namespace, "nft", ["-f", "-"], script);
  }
}
