// What `sluice send` and `sluice receive` share: reading --via and the keys, binding a transport and
// connecting to the gateway, and turning the library's coded errors into one line a person can act on.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { decodeKey, encodeKey, Transport, type Address, type Connection } from "../index.ts";
import { CliError } from "./terminal.ts";

/** HOST:PORT, [IPV6]:PORT or NAME:PORT (a name is looked up once). */
export async function parseAddress(text: string | undefined, option: string): Promise<Address> {
  const match = text === undefined ? null : /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text.trim());
  const port = match === null ? 0 : Number(match[2]);
  if (match === null || port < 1 || port > 65535) throw new CliError(`${option} must be HOST:PORT (e.g. 203.0.113.7:7000), not ${text ?? "missing"}`, 2);
  const host = match[1]!;
  if (isIP(host) !== 0) return { host, port };
  try {
    return { host: (await lookup(host)).address, port };
  } catch (error) {
    throw new CliError(`cannot resolve ${host} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Check ${option}`);
  }
}

/** A key as the command prints it: hex (a base64url key may start with "-", which reads as an option). */
export const hexKey = (key: Uint8Array): string => encodeKey(key, "hex");

/** A key given as text (hex or base64url). */
export function parseKey(text: string | undefined, option: string): Uint8Array {
  if (text === undefined) throw new CliError(`${option} is missing`, 2);
  try {
    return decodeKey(text.trim());
  } catch {
    throw new CliError(`${option} must be a key as 64 hex or 43 base64url characters (as sluice keygen and the gateway print them), not "${text}"`, 2);
  }
}

/** A transport on the same address family as `gateway`, with the secret key given if any. */
export async function bindNear(gateway: Address, secret: string | undefined): Promise<Transport> {
  const secretKey = secret === undefined ? undefined : parseKey(secret, "--key");
  return Transport.bind({ host: isIP(gateway.host) === 6 ? "::" : "0.0.0.0", log: null, ...(secretKey && { secretKey }) });
}

/**
 * Closes the transport a moment after the last connection closed: Transport.close() closes the socket
 * at once, and a datagram still queued in it (the ACK of the peer's CLOSE) would be lost, leaving the
 * peer to retransmit its CLOSE until its retransmission limit (~30 s).
 */
export async function closeSoon(transport: Transport): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  await transport.close();
}

/** Connects to the gateway at `address` with key `key`; an unreachable gateway or a wrong key is one clear line. */
export async function connectGateway(transport: Transport, address: Address, key: Uint8Array): Promise<Connection> {
  try {
    return await transport.connect(address, key);
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_SLUICE_CONNECT_TIMEOUT") throw error;
    throw new CliError(
      `no answer from a gateway with key ${hexKey(key)} at ${address.host}:${address.port} within 3 s. ` +
      "Check --via and --gateway-key (the gateway prints both), that `sluice gateway` runs there, and that UDP reaches its port",
    );
  }
}

/** connectVia(), with each way it can fail said as what happened and what to try. */
export async function connectPeer(transport: Transport, gateway: Connection, key: Uint8Array): Promise<Connection> {
  try {
    return await transport.connectVia(gateway, key);
  } catch (error) {
    const { code, reason } = error as { code?: string; reason?: string };
    const peer = hexKey(key);
    if (reason === "unknownPeer") throw new CliError(`the gateway knows no peer with key ${peer}. Start \`sluice receive\` with the same --via and --gateway-key on the other machine and pass the key it prints as --to (a receiver already running reconnects to a restarted gateway within ~20 s: try again then)`);
    if (reason === "notAllowed") throw new CliError(`the gateway does not introduce peers to ${peer} (its policy). Ask its operator`);
    if (reason === "rateLimited") throw new CliError("the gateway is refusing requests from this connection for now (too many). Try again in a few seconds");
    if (reason === "noAnswer") throw new CliError(`the gateway did not answer the introduction request (${(error as Error).message}). Check that it still runs`);
    if (code === "ERR_SLUICE_CONNECT_TIMEOUT") {
      throw new CliError(`the gateway introduced us, but no direct path to ${peer} opened within 3 s: the receiver left, or both NATs change ports per destination (symmetric). Try again, or from another network`);
    }
    throw error;
  }
}
