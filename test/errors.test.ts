// Every error the public API raises carries a `code` from ERROR_CODES, the one list (with the class
// Node would use for it); Sluice's own are SluiceErrors; cancellation is Node's AbortError; and no
// file of src/ builds an error without a code.
import { readdirSync, readFileSync } from "node:fs";
import { createSocket } from "node:dgram";
import { afterEach, expect, test } from "vitest";
import { Arena, channel, decodeKey, ERROR_CODES, publicKeyOf, SluiceError, Transport } from "sluice";
import { caught, expectCoded } from "./support/errors.ts";
import { bindTest, closeAll, connectedPair, filteredSocket, publicBinder } from "./support/transports.ts";

const open: Transport[] = [];
afterEach(() => closeAll(...open.splice(0)));
const bind = publicBinder(open);

const CODES = new Set<string>(Object.keys(ERROR_CODES));

test("ERROR_CODES is frozen and each code is its own name; SluiceError reads as Node's coded errors do", () => {
  expect(Object.isFrozen(ERROR_CODES)).toBe(true);
  for (const [name, value] of Object.entries(ERROR_CODES)) expect(value).toBe(name);
  const error = new SluiceError("ERR_SLUICE_CLOSED", "the connection was closed");
  expect(error).toBeInstanceOf(Error);
  expect(error.name).toBe("SluiceError");
  expect(String(error)).toBe("SluiceError [ERR_SLUICE_CLOSED]: the connection was closed");
  expect(error.stack).toMatch(/^SluiceError \[ERR_SLUICE_CLOSED\]: the connection was closed\n/);
});

/** [what, how the public API is made to raise it, the class and code it must carry]. */
type Scenario = [string, () => Promise<unknown> | unknown, abstract new (...args: never[]) => Error, string];

test("every error the public API raises carries a code from ERROR_CODES", async () => {
  const taken = createSocket("udp4");
  await new Promise<void>((resolve) => taken.bind(0, "127.0.0.1", resolve));
  const { gateway, joiner, atJoiner, atGateway } = await connectedPair(bind, { reliability: { maxMessageBytes: 5000 } });
  const closing = await connectedPair(bind);
  await closing.atJoiner.close();
  const aborted = await connectedPair(bind);
  const abortedRecv = aborted.atGateway.recv();
  abortedRecv.catch(() => {}); // awaited below, after the abort
  aborted.atGateway.abort(new Error("shutting down"));
  const streams = await connectedPair(bind);
  const closedTransport = await Transport.bind({ host: "127.0.0.1", log: null });
  await closedTransport.close();
  const arena = Arena.create({ bytes: 1 << 20, frameBytes: 1024 });
  const [tx] = channel(4, { arena, maxPacketSize: 16 });
  tx.close();
  const muted = { on: false };
  const silent = await connectedPair(
    (options) => bindTest(options).then((transport) => (open.push(transport), transport)),
    { reliability: { deadPeerTimeoutMs: 200, keepAliveMs: 50, idleTimeoutMs: 5000 } },
    { socket: filteredSocket(() => !muted.on) },
  );
  const idle = await connectedPair(
    (options) => bindTest(options).then((transport) => (open.push(transport), transport)),
    { reliability: { idleTimeoutMs: 300, keepAliveMs: 60_000 } },
    { socket: filteredSocket(() => !muted.on) },
  );
  const unresolving = await bindTest({ lookup: () => Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" })) });
  open.push(unresolving);
  const third = await bind();
  const [, aborted3] = await Promise.all([third.connect(gateway.address, gateway.publicKey), gateway.accept()]);
  aborted3!.abort();
  const unread = await connectedPair(bind, { reliability: { messageWindowBytes: 64 * 1024 } }, { reliability: { deadPeerTimeoutMs: 300, keepAliveMs: 100 } });
  muted.on = true;

  const scenarios: Scenario[] = [
    ["an option of the wrong type", () => Transport.bind({ host: 7 as unknown as string }), TypeError, "ERR_INVALID_ARG_TYPE"],
    // Misspelt options were ignored, their defaults used: { hots } bound every interface.
    ["a misspelt option, with the one meant", async () => {
      const error = await caught(() => Transport.bind({ hots: "127.0.0.1" } as never));
      expect((error as Error).message).toMatch(/The property 'options.hots' is not an option \(did you mean 'host'\?\); the options are host, port, /);
      throw error;
    }, TypeError, "ERR_INVALID_ARG_VALUE"],
    ["a misspelt nested option (reliability, retry, relay)", async () => {
      for (const options of [{ reliability: { keepaliveMs: 1000 } }, { retry: { deadline: 100 } }, { relay: { enable: false } }]) {
        expectCoded(await caught(() => Transport.bind(options as never)), TypeError, "ERR_INVALID_ARG_VALUE", /is not an option \(did you mean/);
      }
      throw await caught(() => joiner.connect(gateway.address, gateway.publicKey, { deadlinems: 100 } as never));
    }, TypeError, "ERR_INVALID_ARG_VALUE"],
    ["a port that is not an integer", () => Transport.bind({ port: 1.5 }), RangeError, "ERR_OUT_OF_RANGE"],
    ["a timer that is not an integer (the same class as the port)", () => Transport.bind({ reliability: { idleTimeoutMs: 1.5 } }), RangeError, "ERR_OUT_OF_RANGE"],
    ["a signal that is not one", () => Transport.bind({ signal: "stop" as unknown as AbortSignal }), TypeError, "ERR_INVALID_ARG_TYPE"],
    ["a port in use", () => Transport.bind({ host: "127.0.0.1", port: taken.address().port, log: null }), SluiceError, "ERR_SLUICE_BIND_FAILED"],
    ["new Transport()", () => new (Transport as unknown as new () => unknown)(), TypeError, "ERR_ILLEGAL_CONSTRUCTOR"],
    ["an aborted accept", () => gateway.accept({ signal: AbortSignal.abort() }), Error, "ABORT_ERR"],
    ["connect() with no answer", () => joiner.connect({ host: "127.0.0.1", port: taken.address().port }, gateway.publicKey, { intervalMs: 50, deadlineMs: 200 }), SluiceError, "ERR_SLUICE_CONNECT_TIMEOUT"],
    ["connect() on a closed transport", () => closedTransport.connect(gateway.address, gateway.publicKey), SluiceError, "ERR_SLUICE_CLOSED"],
    ["an aborted connect()", () => joiner.connect(gateway.address, gateway.publicKey, { signal: AbortSignal.abort() }), Error, "ABORT_ERR"],
    ["a host name that does not resolve", () => unresolving.connect({ host: "nowhere.invalid", port: 9 }, gateway.publicKey), SluiceError, "ERR_SLUICE_HOST_NOT_FOUND"],
    ["an empty host", () => joiner.connect({ host: "", port: 9 }, gateway.publicKey), TypeError, "ERR_INVALID_ARG_VALUE"],
    ["connect() with no key (the message named Uint8Array alone, where a string is taken too)", async () => {
      const error = await caught(() => joiner.connect(gateway.address, undefined as unknown as string));
      expect((error as Error).message).toMatch(/"publicKey" argument must be an instance of Uint8Array or of type string. Received undefined/);
      throw error;
    }, TypeError, "ERR_INVALID_ARG_TYPE"],
    ["connect() to this node's own key (it answered, and the connection was dead at once)", () => joiner.connect(gateway.address, joiner.publicKey), TypeError, "ERR_INVALID_ARG_VALUE"],
    ["connect() from an IPv4 transport to an IPv6 address (every send failed; it timed out after 3 s)", () => joiner.connect({ host: "::1", port: 9 }, gateway.publicKey), TypeError, "ERR_INVALID_ARG_VALUE"],
    ["introduce() with a closed connection", () => gateway.introduce(atGateway, aborted3!), SluiceError, "ERR_SLUICE_CLOSED"],
    ["a peer that stopped reading at close()", async () => {
      for (let i = 0; i < 8; i++) await unread.atJoiner.send(new Uint8Array(32 * 1024));
      await unread.atJoiner.close();
    }, SluiceError, "ERR_SLUICE_CLOSE_TIMEOUT"],
    ["a message that is not bytes", () => atJoiner.send("hi" as unknown as Uint8Array), TypeError, "ERR_INVALID_ARG_TYPE"],
    ["a message over our own limit", () => atGateway.send(new Uint8Array(5001)), RangeError, "ERR_OUT_OF_RANGE"],
    ["a message over the peer's limit", async () => {
      await atJoiner.send(new Uint8Array(6000));
      await atJoiner.flush();
    }, SluiceError, "ERR_SLUICE_MESSAGE_TOO_LARGE"],
    ["a send after close()", () => closing.atJoiner.send(new Uint8Array(1)), SluiceError, "ERR_SLUICE_CLOSED"],
    ["a send after the peer closed", () => closing.atGateway.send(new Uint8Array(1)), SluiceError, "ERR_SLUICE_PEER_CLOSED"],
    ["a recv pending at abort(reason)", () => abortedRecv, SluiceError, "ERR_SLUICE_ABORTED"],
    ["a vanished peer", () => silent.atGateway.recv(), SluiceError, "ERR_SLUICE_PEER_UNREACHABLE"],
    ["a silent peer", () => idle.atGateway.recv(), SluiceError, "ERR_SLUICE_IDLE_TIMEOUT"],
    ["a stream its writer aborted", async () => {
      const writer = streams.atJoiner.openStream().getWriter();
      await writer.write(new Uint8Array(10));
      const reader = (await streams.atGateway.acceptStream())!.getReader();
      await reader.read();
      await writer.abort(new Error("no more"));
      for (;;) if ((await reader.read()).done) return;
    }, SluiceError, "ERR_SLUICE_RESET"],
    ["a stream its reader cancelled", async () => {
      const writer = streams.atGateway.openStream().getWriter();
      await writer.write(new Uint8Array(10));
      const reader = (await streams.atJoiner.acceptStream())!.getReader();
      await reader.read();
      await reader.cancel();
      for (;;) await writer.write(new Uint8Array(100_000));
    }, SluiceError, "ERR_SLUICE_STREAM_CANCELLED"],
    ["too many open streams", () => {
      for (let i = 0; i <= 1024; i++) streams.atJoiner.openStream();
    }, RangeError, "ERR_SLUICE_LIMIT_REACHED"],
    ["a capacity out of range", () => channel(0), RangeError, "ERR_OUT_OF_RANGE"],
    ["a closed sender", () => tx.clone(), TypeError, "ERR_INVALID_STATE"],
    ["an empty frame pool", () => {
      for (;;) channel(64, { arena, maxPacketSize: 16 });
    }, RangeError, "ERR_SLUICE_POOL_EXHAUSTED"],
    ["a secret key of the wrong length", () => publicKeyOf(new Uint8Array(31)), RangeError, "ERR_OUT_OF_RANGE"],
    ["a key that is not text of a key", () => decodeKey("not a key"), TypeError, "ERR_INVALID_ARG_VALUE"],
  ];
  const seen: string[] = [];
  for (const [what, raise, Type, code] of scenarios) {
    const error = await caught(raise);
    seen.push(`${what}: ${(error as Error).constructor.name} ${(error as { code?: string }).code}`);
    expect(error, what).toBeInstanceOf(Type);
    expect(CODES.has((error as { code: string }).code), `${what}: ${String(error)}`).toBe(true);
    expect((error as { code: string }).code, what).toBe(code);
  }
  taken.close();
  expect(seen).toHaveLength(scenarios.length);
});

test("a dependency's error reaches the user wrapped, as the cause of a coded error", async () => {
  const taken = createSocket("udp4");
  await new Promise<void>((resolve) => taken.bind(0, "127.0.0.1", resolve));
  const error = (await caught(() => Transport.bind({ host: "127.0.0.1", port: taken.address().port }))) as SluiceError;
  taken.close();
  expect(error.code).toBe("ERR_SLUICE_BIND_FAILED");
  expect(error.message).toMatch(/^cannot bind UDP 127\.0\.0\.1:\d+: bind EADDRINUSE/);
  expect((error.cause as { code?: string }).code).toBe("EADDRINUSE");
});

test("connection.abort(reason): a pending call rejects with ERR_SLUICE_ABORTED, its cause the reason; the peer sees a clean end", async () => {
  const { atJoiner, atGateway } = await connectedPair(bind);
  const reading = atGateway.acceptStream();
  atGateway.abort("maintenance");
  const error = (await caught(() => reading)) as SluiceError;
  expect(error.code).toBe("ERR_SLUICE_ABORTED");
  expect(error.message).toBe("the connection was aborted: maintenance");
  expect(error.cause).toBe("maintenance");
  expect(atGateway.error).toBe(error);
  expect(await atJoiner.recv()).toBeUndefined(); // its one CLOSE reached the peer: a clean end there
});

test("no file of src/ constructs an error without a code, nor a plain Error for what happens on a connection", () => {
  const root = new URL("../", import.meta.url).pathname;
  const found: Record<string, string[]> = {};
  for (const file of readdirSync(`${root}src`, { recursive: true }) as string[]) {
    if (!file.endsWith(".ts") || file.startsWith("errors") || file.startsWith("cli")) continue; // the command's errors are its own, printed as one line
    // Uncoded: new Error/TypeError/RangeError(...). Sluice's own (ERR_SLUICE_*) are SluiceErrors, never codedError(Error, ...).
    const raw = readFileSync(`${root}src/${file}`, "utf8").match(/new (Error|TypeError|RangeError|AggregateError)\(|codedError\(Error\b/g);
    if (raw !== null) found[`src/${file}`] = raw;
  }
  expect(found).toEqual({});
});
