// Socket addresses: the { host, port } shape of the API, the map key the listener uses, and the
// 19-byte form a handshake response carries (family 4 or 6, port u16 LE, 16 address bytes; an
// IPv4-mapped IPv6 address travels as IPv4, and IPv6 is read back in RFC 5952's compressed form).
import { isIP } from "node:net";
import { invalidArgValue, validateInteger, validateObject, validateString } from "../errors/validate.ts";

export interface Address {
  host: string;
  port: number;
  /**
   * Set when the peer is reached through a relay: host:port is then the gateway's, and this the relay
   * id it forwards by (docs/wire.md, "Relays"). Absent for a direct address.
   */
  relay?: number;
}

export const ADDRESS_BYTES = 19;

export function addressKey(host: string, port: number, relay?: number): string {
  const direct = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return relay === undefined ? direct : `${direct} relay ${relay}`;
}

/**
 * Whether two addresses are the same path (host, port and relay), an IPv4-mapped host (how a
 * dual-stack socket sees an IPv4 peer) and its IPv4 form alike: a dual-stack transport hears from
 * ::ffff:a.b.c.d what it was told (by its caller, an introduction, a probe) as a.b.c.d.
 */
export function sameAddress(a: Address, b: Address): boolean {
  return a.port === b.port && a.relay === b.relay && (a.host === b.host || unmapped(a.host) === unmapped(b.host));
}

/**
 * A copy of `address` once it is { host: an IP address or a host name, port: 1..65535, relay?: a relay
 * id }; `name` names it in errors. A name is resolved later (transport/resolve.ts).
 */
export function checkAddress(address: unknown, name: string): Address {
  validateObject(address, name);
  const { host, port } = address as { host?: unknown; port?: unknown };
  validateHost(host, `${name}.host`);
  validateInteger(port, `${name}.port`, 1, 65535);
  const { relay } = address as { relay?: unknown };
  if (relay === undefined) return { host, port };
  validateInteger(relay, `${name}.relay`, 1, 2 ** 32 - 1);
  return { host, port, relay };
}

/** An IP address or a host name (not empty, no spaces): what bind() and connect() take as a host alike. */
export function validateHost(host: unknown, name: string): asserts host is string {
  validateString(host, name);
  if (isIP(host) === 0 && !/^[^\s/]+$/.test(host)) throw invalidArgValue(name, host, "must be an IP address or a host name");
}

export function writeAddress(address: Address, into: Uint8Array, at: number): void {
  into.fill(0, at, at + ADDRESS_BYTES);
  into[at + 1] = address.port & 0xff;
  into[at + 2] = address.port >>> 8;
  const host = unmapped(address.host);
  if (isIP(host) === 4) {
    into[at] = 4;
    host.split(".").forEach((octet, i) => (into[at + 3 + i] = Number(octet)));
    return;
  }
  into[at] = 6;
  ipv6Groups(host).forEach((group, i) => {
    into[at + 3 + 2 * i] = group >>> 8;
    into[at + 4 + 2 * i] = group & 0xff;
  });
}

/** The address, or undefined if the bytes do not encode one. */
export function readAddress(from: Uint8Array, at: number): Address | undefined {
  const port = from[at + 1]! | (from[at + 2]! << 8);
  if (port === 0) return undefined;
  if (from[at] === 4) return { host: Array.from(from.subarray(at + 3, at + 7)).join("."), port };
  if (from[at] !== 6) return undefined;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((from[at + 3 + 2 * i]! << 8) | from[at + 4 + 2 * i]!);
  return { host: formatIpv6(groups), port };
}

const IPV4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/**
 * `to` in the form a socket bound to `boundHost` can send to, or undefined if it cannot: an IPv4
 * socket sends to IPv4 (an IPv4-mapped address as its IPv4 form), a socket bound to one IPv6 address
 * to IPv6 (not IPv4, nor IPv4-mapped), a dual-stack socket (bound to "::") anywhere. A send across
 * families fails in the kernel (EINVAL, ENETUNREACH): a connect() to such an address could only time out.
 */
export function reachableFrom(boundHost: string, to: Address): Address | undefined {
  const family = isIP(to.host);
  if (family === 0 || boundHost === "::") return to;
  const mapped = unmapped(to.host);
  // A socket bound to an IPv4-mapped address is a udp6 socket that talks IPv4 only.
  if (isIP(unmapped(boundHost)) === 4) return family === 4 ? to : mapped !== to.host ? { ...to, host: mapped } : undefined;
  return family === 6 && mapped === to.host ? to : undefined;
}

/** An IPv4-mapped IPv6 address (how a dual-stack socket sees an IPv4 peer) as the IPv4 address it is; any other host as it is. */
export function unmapped(host: string): string {
  return IPV4_MAPPED.exec(host)?.[1] ?? host;
}

/** The eight 16-bit groups of a valid IPv6 address string (a zone index is dropped; an IPv4 tail is two groups). */
export function ipv6Groups(host: string): number[] {
  const address = host.split("%")[0]!;
  const groups = (part: string): number[] => {
    if (part === "") return [];
    return part.split(":").flatMap((group) => {
      if (!group.includes(".")) return [parseInt(group, 16)];
      const [a, b, c, d] = group.split(".").map(Number) as [number, number, number, number];
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  if (!address.includes("::")) return groups(address);
  const [head = "", tail = ""] = address.split("::");
  const front = groups(head);
  const back = groups(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/** RFC 5952's text form: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
function formatIpv6(groups: readonly number[]): string {
  let runAt = -1;
  let runLength = 1;
  for (let i = 0; i < 8;) {
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > runLength) {
      runAt = i;
      runLength = end - i;
    }
    i = end === i ? i + 1 : end;
  }
  const text = (from: number, to: number) => groups.slice(from, to).map((group) => group.toString(16)).join(":");
  if (runAt < 0) return text(0, 8);
  return `${text(0, runAt)}::${text(runAt + runLength, 8)}`;
}
