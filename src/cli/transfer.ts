// `sluice send` and `sluice receive`: one file over a direct connection that the gateway's rendezvous
// opened. On the connection: a message {name, size}, then the bytes as one stream, then a message
// {sha256}; the receiver answers {sha256, ok} once the file is on disk, and the sender closes.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Address, Connection, Transport } from "../index.ts";
import { bindNear, closeSoon, connectGateway, connectPeer, hexKey, parseAddress, parseKey } from "./peer.ts";
import { CliError, formatBytes, formatRate, Progress, report } from "./terminal.ts";

const CHUNK_BYTES = 64 * 1024;
/** No byte moved for this long: the other side is gone (sooner than the retransmission limit says so). */
const STALL_MS = 15_000;
/** After its verdict, the receiver waits this long for the sender to close before it lets go. */
const CLOSE_WAIT_MS = 5000;

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

interface Header {
  name: string;
  size: number;
}

/** The next message as JSON; a CliError naming `what` if the connection ends first or it is not JSON. */
async function recvJson(connection: Connection, what: string): Promise<Record<string, unknown>> {
  const message = await withStall(connection.recv(), `waiting for the ${what}`);
  if (message === undefined) throw new CliError(`the other side closed the connection before the ${what}`);
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(message));
    if (typeof value === "object" && value !== null) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new CliError(`the ${what} is not what sluice sends: is the other side running sluice?`);
}

/** `promise`, or a CliError once nothing happened for STALL_MS. */
async function withStall<T>(promise: Promise<T>, doing: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliError(`the other side stopped answering (${doing}, nothing for ${STALL_MS / 1000} s)`)), STALL_MS);
  });
  try {
    return await Promise.race([promise, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** The connection's failure as "what happened after how much". */
function gone(error: unknown, who: string, done: number, total: number): unknown {
  if (error instanceof CliError) return error;
  return new CliError(`the ${who} went away after ${formatBytes(done)} of ${formatBytes(total)} (${(error as Error).message}). Run the transfer again once it is back`);
}

/** Whether Ctrl-C or a termination signal came: what failed after it failed because of it. */
interface Interruption {
  readonly interrupted: boolean;
}

/**
 * On Ctrl-C or a termination signal: closes the transport (each connection's peer is told), which
 * makes what is in progress fail, waits for `settled` (their clean-up: a partial file removed, the line
 * said), then exits with 130. A second Ctrl-C meanwhile ends the process at once (Node's default).
 */
function closeOnSignal(transport: Transport, settled: () => Promise<unknown> = () => Promise.resolve()): Interruption {
  const interruption = { interrupted: false };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      interruption.interrupted = true;
      void transport.close().then(settled).finally(() => process.exit(130));
    });
  }
  return interruption;
}

export interface SendOptions {
  file: string | undefined;
  via: string | undefined;
  gatewayKey: string | undefined;
  to: string | undefined;
  key: string | undefined;
}

export async function send(options: SendOptions): Promise<void> {
  if (options.file === undefined) throw new CliError("no FILE given: sluice send FILE --via HOST:PORT --gateway-key KEY --to PEERKEY", 2);
  const to = parseKey(options.to, "--to");
  const gatewayKey = parseKey(options.gatewayKey, "--gateway-key");
  const via = await parseAddress(options.via, "--via");
  let size: number;
  try {
    const info = await stat(options.file);
    if (!info.isFile()) throw new Error("not a regular file");
    size = info.size;
  } catch (error) {
    throw new CliError(`cannot read ${options.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const transport = await bindNear(via, options.key);
  closeOnSignal(transport);
  try {
    const gateway = await connectGateway(transport, via, gatewayKey);
    console.log(`Connected to the gateway at ${via.host}:${via.port}; asking it for ${hexKey(to)}`);
    const peer = await connectPeer(transport, gateway, to);
    console.log(`Connected to the receiver at ${peer.remoteAddress.host}:${peer.remoteAddress.port} (directly)`);
    const name = basename(options.file);
    await peer.send(json({ name, size } satisfies Header));
    const progress = new Progress(`sending ${name}`, size);
    const hash = createHash("sha256");
    let sent = 0;
    try {
      const writer = peer.openStream().getWriter();
      for await (const chunk of createReadStream(options.file, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        await withStall(writer.write(chunk), "writing");
        progress.update((sent += chunk.length));
      }
      await withStall(writer.close(), "finishing the stream");
    } catch (error) {
      progress.finish();
      throw gone(error, "receiver", sent, size);
    }
    const elapsedMs = progress.elapsedMs;
    progress.finish();
    const sha256 = hash.digest("hex");
    await peer.send(json({ sha256 }));
    const verdict = await recvJson(peer, "receiver's check");
    if (verdict.ok !== true || verdict.sha256 !== sha256) {
      throw new CliError(`the receiver's SHA-256 (${String(verdict.sha256)}) differs from the file's (${sha256}): the file changed while it was sent? Send it again`);
    }
    console.log(`Sent ${name}: ${formatBytes(sent)} in ${(elapsedMs / 1000).toFixed(2)} s, ${formatRate(sent, elapsedMs)}; SHA-256 ${sha256} checked by the receiver`);
    await peer.close();
  } finally {
    await closeSoon(transport);
  }
}

export interface ReceiveOptions {
  via: string | undefined;
  gatewayKey: string | undefined;
  key: string | undefined;
  out: string;
  once: boolean;
}

export async function receive(options: ReceiveOptions): Promise<void> {
  const gatewayKey = parseKey(options.gatewayKey, "--gateway-key");
  const via = await parseAddress(options.via, "--via");
  try {
    if (!(await stat(options.out)).isDirectory()) throw new Error("not a directory");
  } catch (error) {
    throw new CliError(`--out ${options.out}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
  }
  const transport = await bindNear(via, options.key);
  // Each transfer in progress, settling with its exit status once its failure (if any) is said.
  const transfers = new Set<Promise<number>>();
  const interruption = closeOnSignal(transport, () => Promise.all(transfers));
  try {
    let gateway: Connection | undefined = await connectGateway(transport, via, gatewayKey);
    const key = hexKey(transport.publicKey);
    console.log(`Your key: ${key}`);
    const seen = transport.externalAddress;
    console.log(`Waiting for senders introduced by the gateway at ${via.host}:${via.port}${seen ? ` (it sees this machine at ${seen.host}:${seen.port})` : ""}.`);
    console.log(`On the sending machine: npx sluice send FILE --via ${options.via} --gateway-key ${hexKey(gatewayKey)} --to ${key}`);
    // Senders arrive through the gateway's introductions, so the connection to it is watched too:
    // without it the receiver would wait for ever for senders the gateway cannot introduce.
    let accepting = transport.accept();
    while (gateway !== undefined) {
      const lost: Connection = gateway;
      const next = await Promise.race([accepting, lost.whenClosed.then(() => lost, () => lost)]);
      if (interruption.interrupted || next === undefined) return;
      if (next === lost) {
        gateway = await reconnectGateway(transport, via, gatewayKey, lost, interruption);
        continue;
      }
      accepting = transport.accept();
      const receiving = receiveOne(next, options.out, interruption).then(() => 0, report);
      transfers.add(receiving);
      void receiving.then(() => transfers.delete(receiving));
      if (options.once) {
        process.exitCode = await receiving;
        return;
      }
    }
  } finally {
    await Promise.all(transfers);
    await closeSoon(transport);
  }
}

/**
 * Waits before each attempt to reach the gateway again once the connection to it ended: a gateway
 * restarted in place (same --key and --port) is back within the first seconds; one that does not
 * answer these (each attempt waits up to connect()'s 3 s) within ~30 s is taken as gone.
 */
const RECONNECT_DELAYS_MS = [1000, 2000, 4000, 8000];

/**
 * Connects to the gateway again after the connection `lost` ended, each attempt said; undefined once
 * interrupted, a CliError once the attempts are spent. The transport stays, so the key does too: the
 * line already given to senders still holds.
 */
async function reconnectGateway(transport: Transport, via: Address, key: Uint8Array, lost: Connection, interruption: Interruption): Promise<Connection | undefined> {
  const where = `${via.host}:${via.port}`;
  const why = lost.error === undefined ? "it closed the connection" : lost.error.message;
  console.log(`Lost the gateway at ${where} (${why}); reconnecting`);
  const startedAt = performance.now();
  for (const [attempt, delayMs] of RECONNECT_DELAYS_MS.entries()) {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (interruption.interrupted) return undefined;
    console.log(`Reconnecting to the gateway at ${where} (attempt ${attempt + 1} of ${RECONNECT_DELAYS_MS.length})`);
    try {
      const gateway = await connectGateway(transport, via, key);
      console.log(`Reconnected to the gateway at ${where}; waiting for senders (same key)`);
      return gateway;
    } catch (error) {
      if (interruption.interrupted) return undefined;
      if (!(error instanceof CliError)) throw error;
    }
  }
  const seconds = Math.round((performance.now() - startedAt) / 1000);
  throw new CliError(
    `lost the gateway at ${where} (${why}), and it did not answer ${RECONNECT_DELAYS_MS.length} attempts to reconnect over ${seconds} s. ` +
    "Check that `sluice gateway` runs there (with the same --key), then start `sluice receive` again",
  );
}

/** Names tried for one received file: the sender picks the name, so the search has a bound. */
const MAX_NAME_TRIES = 1000;

/** The first name not taken in `dir`: `name`, else `name.1`, `name.2`... (at most MAX_NAME_TRIES). */
async function freeName(dir: string, name: string): Promise<string> {
  for (let n = 0; n < MAX_NAME_TRIES; n++) {
    const path = join(dir, n === 0 ? name : `${name}.${n}`);
    try {
      await stat(path);
    } catch {
      return path;
    }
  }
  throw new CliError(`${join(dir, name)} and ${MAX_NAME_TRIES - 1} numbered names after it are taken: clear --out`);
}

/**
 * One file from `connection` into `dir`: written to NAME.part, renamed to NAME once its SHA-256
 * matches the sender's. Whatever ends it before that (a failure, Ctrl-C) removes the partial file.
 */
async function receiveOne(connection: Connection, dir: string, interruption: Interruption): Promise<void> {
  let path: string | undefined;
  let size = 0;
  let received = 0;
  let kept = false;
  try {
    const header = await recvJson(connection, "file's name and size");
    const { name, size: announced } = header as Partial<Header>;
    if (typeof name !== "string" || typeof announced !== "number" || !Number.isSafeInteger(announced) || announced < 0) {
      throw new CliError("the sender's header is not what sluice sends: is it running sluice?");
    }
    size = announced;
    // Only the last part of the name the sender gave, and never one that leads elsewhere.
    const safe = basename(name.replace(/\\/g, "/"));
    path = await freeName(dir, safe === "" || safe === "." || safe === ".." ? "received" : safe);
    console.log(`Receiving ${basename(path)} (${formatBytes(size)}) from ${connection.remoteAddress.host}:${connection.remoteAddress.port}`);
    const progress = new Progress(`receiving ${basename(path)}`, size);
    const hash = createHash("sha256");
    const file = await open(`${path}.part`, "w");
    let elapsedMs: number;
    try {
      const stream = await withStall(connection.acceptStream(), "waiting for the file's bytes");
      if (stream === undefined) throw new CliError("the sender closed the connection before sending the file");
      const reader = stream.getReader();
      for (;;) {
        const { value, done } = await withStall(reader.read(), "reading");
        if (done) break;
        hash.update(value);
        await file.write(value);
        progress.update((received += value.length));
      }
      elapsedMs = progress.elapsedMs;
    } catch (error) {
      throw gone(error, "sender", received, size);
    } finally {
      progress.finish();
      await file.close();
    }
    const sha256 = hash.digest("hex");
    const trailer = await recvJson(connection, "file's SHA-256");
    const ok = trailer.sha256 === sha256 && received === size;
    if (ok) {
      await rename(`${path}.part`, path);
      kept = true;
    }
    await connection.send(json({ sha256, ok }));
    if (!ok) throw new CliError(`${basename(path)} arrived damaged: ${formatBytes(received)} of ${formatBytes(size)}, SHA-256 ${sha256} where the sender has ${String(trailer.sha256)}. Nothing was kept; send it again`);
    console.log(`Received ${basename(path)}: ${formatBytes(received)} in ${(elapsedMs / 1000).toFixed(2)} s, ${formatRate(received, elapsedMs)}; SHA-256 ${sha256} matches the sender's; saved as ${path}`);
  } catch (error) {
    if (!interruption.interrupted || kept) throw error;
    // The failure is the closing that Ctrl-C did: say that instead (the partial file is gone by the time this is printed).
    throw path === undefined
      ? new CliError("interrupted before a file arrived", 130)
      : new CliError(`interrupted while receiving ${basename(path)} (${formatBytes(received)} of ${formatBytes(size)}): the partial file ${path}.part was removed`, 130);
  } finally {
    if (path !== undefined && !kept) await rm(`${path}.part`, { force: true });
  }
  // The sender closes once it has our answer; wait for that (bounded), so the answer is not cut off.
  await Promise.race([connection.recv(), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
}
