// Host names, resolved once as node:dgram resolves them (dns.lookup), for bind() and connect() alike:
// an IP address is taken as it is, a name becomes its first address of the family wanted.
import { isIP } from "node:net";
import { abortErrorOf, SluiceError } from "../errors/errors.ts";

/** dns.promises.lookup with `all: true`, as resolveHost calls it (a test seam may stand in for it). */
export type HostLookup = (host: string, options: { all: true; family: 0 | 4 | 6 }) => Promise<{ address: string; family: number }[]>;

const systemLookup: HostLookup = async (host, options) => (await import("node:dns/promises")).lookup(host, options);

/**
 * `host` as an IP address: itself if it is one; else the first address `lookup` (dns.lookup) gives
 * for it, of `family` if 4 or 6, else IPv4 first and IPv6 if it has none (node:dgram's udp4 default).
 * Rejects with ERR_SLUICE_HOST_NOT_FOUND (the resolver's error as `cause`), or AbortError if `signal`
 * fires.
 */
export async function resolveHost(host: string, family: 0 | 4 | 6, signal?: AbortSignal, lookup = systemLookup): Promise<string> {
  if (isIP(host) !== 0) return host;
  if (signal?.aborted) throw abortErrorOf(signal);
  let addresses: { address: string; family: number }[];
  let onAbort: (() => void) | undefined;
  try {
    addresses = await new Promise((resolve, reject) => {
      lookup(host, { all: true, family }).then(resolve, reject);
      if (signal !== undefined) signal.addEventListener("abort", (onAbort = () => reject(abortErrorOf(signal))), { once: true });
    });
  } catch (error) {
    if (signal?.aborted) throw abortErrorOf(signal);
    throw new SluiceError("ERR_SLUICE_HOST_NOT_FOUND", `cannot resolve ${JSON.stringify(host)}: ${(error as Error).message}`, { cause: error });
  } finally {
    if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
  }
  const chosen = addresses.find((address) => address.family === 4) ?? addresses[0];
  if (chosen === undefined) throw new SluiceError("ERR_SLUICE_HOST_NOT_FOUND", `cannot resolve ${JSON.stringify(host)}: no address`);
  return chosen.address;
}
