// Socket addresses: the { host, port } shape of the API, the map key the listener uses, and the
// 19-byte form a handshake response carries (family 4 or 6, port u16 LE, 16 address bytes).
import { isIP } from "node:net";

export interface Address {
  host: string;
  port: number;
}

export const ADDRESS_BYTES = 19;

export function addressKey(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function checkAddress(address: unknown, what: string): Address {
  if (typeof address !== "object" || address === null) throw new TypeError(`${what} must be an object { host, port }, got ${address === null ? "null" : typeof address}`);
  const { host, port } = address as Partial<Address>;
  if (typeof host !== "string" || isIP(host) === 0) throw new TypeError(`${what}.host must be an IPv4 or IPv6 address string, got ${JSON.stringify(host)}`);
  if (!Number.isInteger(port) || port! < 1 || port! > 65535) throw new RangeError(`${what}.port must be an integer from 1 to 65535, got ${String(port)}`);
  return { host, port: port! };
}

export function writeAddress(address: Address, into: Uint8Array, at: number): void {
  into.fill(0, at, at + ADDRESS_BYTES);
  into[at + 1] = address.port & 0xff;
  into[at + 2] = address.port >>> 8;
  if (isIP(address.host) === 4) {
    into[at] = 4;
    address.host.split(".").forEach((octet, i) => (into[at + 3 + i] = Number(octet)));
    return;
  }
  into[at] = 6;
  const [head = "", tail = ""] = address.host.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const front = groups(head);
  const back = groups(tail);
  const all = address.host.includes("::") ? [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back] : front;
  all.forEach((group, i) => {
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
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(((from[at + 3 + 2 * i]! << 8) | from[at + 4 + 2 * i]!).toString(16));
  return { host: groups.join(":"), port };
}
