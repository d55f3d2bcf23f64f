// The `sluice` command on loopback: what it prints, and how it fails. Each failure is one line on
// stderr and a status: 2 for a mistake on the command line, 1 for what went wrong out there. The
// transfer itself is tested through two NATs in test/netns/cli.test.ts; here, on loopback, what a
// receiver does when its gateway goes away, and when Ctrl-C stops it mid-transfer.
import { execFile } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { decodeKey, encodeKey, generateKeyPair, publicKeyOf, Transport } from "sluice";
import { CLI, runCli, type CliRun } from "./support/cli.ts";

const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;

function sluice(args: string[], runtime: string[] = [process.execPath]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(runtime[0]!, [...runtime.slice(1), CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

const KEYS = /^secret: ([0-9a-f]{64})\npublic: ([0-9a-f]{64})\n$/;

test("keygen prints a secret key and its public key, in Node and in Deno", async () => {
  for (const runtime of [[process.execPath], [deno, "run", "--allow-read", "--allow-env"]]) {
    const { status, stdout } = await sluice(["keygen"], runtime);
    expect(status).toBe(0);
    const [, secret, publicKey] = KEYS.exec(stdout)!;
    expect(publicKeyOf(decodeKey(secret!))).toEqual(decodeKey(publicKey!));
  }
});

test("command-line mistakes: status 2 and one line that says what is wrong", async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /^sluice: a command is needed\nUsage:/],
    [["fly"], /^sluice: unknown command "fly"\nUsage:/],
    [["send"], /^sluice: no FILE given: sluice send FILE --via HOST:PORT --gateway-key KEY --to PEERKEY\.\n$/],
    [["send", "f", "--via", "127.0.0.1:7", "--gateway-key", "ab".repeat(32), "--to", "nope"], /^sluice: --to must be a key as 64 hex or 43 base64url characters .*, not "nope"\.\n$/],
    [["send", "f", "--via", "nowhere", "--gateway-key", "ab".repeat(32), "--to", "ab".repeat(32)], /^sluice: --via must be HOST:PORT \(e\.g\. 203\.0\.113\.7:7000\), not nowhere\.\n$/],
    [["receive", "--via", "127.0.0.1:7"], /^sluice: --gateway-key is missing\.\n$/],
    [["gateway", "--port", "70000"], /^sluice: --port must be a port number \(0 to 65535\), not 70000\.\n$/],
    [["gateway", "--bogus"], /^sluice: Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const { status, stderr } = await sluice(args);
    expect({ args, status, stderr }).toEqual({ args, status: 2, stderr: expect.stringMatching(message) });
  }
});

test("failures out there: status 1 and one line with what to try (a missing file, no gateway answering)", async () => {
  const missing = await sluice(["send", "/nonexistent/file", "--via", "127.0.0.1:9", "--gateway-key", "ab".repeat(32), "--to", "cd".repeat(32)]);
  expect(missing).toMatchObject({ status: 1, stderr: "sluice: cannot read /nonexistent/file: ENOENT.\n" });
  // Nothing listens on port 9 here (discard): the intros go unanswered for connect()'s 3 s.
  const noGateway = await sluice(["send", CLI, "--via", "127.0.0.1:9", "--gateway-key", "ab".repeat(32), "--to", "cd".repeat(32)]);
  expect(noGateway.status).toBe(1);
  expect(noGateway.stderr).toMatch(/^sluice: no answer from a gateway with key (ab){32} at 127\.0\.0\.1:9 within 3 s\. Check --via and --gateway-key \(the gateway prints both\), that `sluice gateway` runs there, and that UDP reaches its port\.\n$/);
});

const hex = (key: Uint8Array) => encodeKey(key, "hex");

/** `sluice gateway` on 127.0.0.1 with the secret key `secret`, on `port` (0: a free one): the run and its port. */
async function startGateway(secret: Uint8Array, port = 0): Promise<{ run: CliRun; port: number }> {
  const run = runCli(["gateway", "--host", "127.0.0.1", "--port", String(port), "--key", hex(secret)]);
  return { run, port: Number(await run.line(/Listening on 127\.0\.0\.1:(\d+)/)) };
}

/** `sluice receive` through the gateway on 127.0.0.1:`port` into a new directory: the run, its key, the directory. */
async function startReceiver(port: number, gatewayKey: Uint8Array, extra: string[] = []): Promise<{ run: CliRun; key: string; out: string }> {
  const out = await mkdtemp(join(tmpdir(), "sluice-cli-"));
  const run = runCli(["receive", "--via", `127.0.0.1:${port}`, "--gateway-key", hex(gatewayKey), "--out", out, ...extra]);
  const key = await run.line(/Your key: ([0-9a-f]{64})/);
  await run.line(/Waiting for senders/);
  return { run, key, out };
}

test("receive: its gateway stopped (Ctrl-C) and not back: it says so, tries to reconnect (each attempt said), then one line and status 1", async () => {
  const gatewayKeys = generateKeyPair();
  const gateway = await startGateway(gatewayKeys.secretKey);
  const receiver = await startReceiver(gateway.port, gatewayKeys.publicKey);
  try {
    gateway.run.child.kill("SIGINT");
    expect(await gateway.run.exited).toBe(0);
    // The gateway's CLOSE says so at once: no waiting for a silence.
    await receiver.run.line(/Lost the gateway at 127\.0\.0\.1:\d+ \(it closed the connection\); reconnecting/);
    expect(await receiver.run.exited).toBe(1);
    expect(receiver.run.stdout).toMatch(/Reconnecting to the gateway at 127\.0\.0\.1:\d+ \(attempt 1 of 4\)[^]*\(attempt 4 of 4\)/);
    expect(receiver.run.stderr).toMatch(/^sluice: lost the gateway at 127\.0\.0\.1:\d+ \(it closed the connection\), and it did not answer 4 attempts to reconnect over \d+ s\. Check that `sluice gateway` runs there \(with the same --key\), then start `sluice receive` again\.\n$/);
  } finally {
    await rm(receiver.out, { recursive: true, force: true });
  }
}, 90_000);

test("receive: its gateway killed (kill -9) and restarted with the same key and port: the receiver notices the silence, reconnects, and receives the next file", async () => {
  const gatewayKeys = generateKeyPair();
  const first = await startGateway(gatewayKeys.secretKey);
  const receiver = await startReceiver(first.port, gatewayKeys.publicKey, ["--once"]);
  const dir = await mkdtemp(join(tmpdir(), "sluice-cli-"));
  let second: CliRun | undefined;
  try {
    first.run.child.kill("SIGKILL");
    await first.run.exited;
    second = (await startGateway(gatewayKeys.secretKey, first.port)).run;
    // A killed gateway sends no CLOSE: the receiver learns of it from its unanswered keep-alives
    // (5 s idle, then 10 s of silence by default).
    await receiver.run.line(/Lost the gateway at 127\.0\.0\.1:\d+ \(peer unreachable/, 40_000);
    await receiver.run.line(/Reconnected to the gateway at 127\.0\.0\.1:\d+/, 20_000);
    await second.line(new RegExp(`peer ${receiver.key.slice(0, 12)}… connected`));

    const file = join(dir, "after-restart.bin");
    const bytes = randomFillSync(new Uint8Array(256 * 1024));
    await writeFile(file, bytes);
    const sender = runCli(["send", file, "--via", `127.0.0.1:${first.port}`, "--gateway-key", hex(gatewayKeys.publicKey), "--to", receiver.key]);
    expect({ status: await sender.exited, stderr: sender.stderr }).toEqual({ status: 0, stderr: "" });
    expect({ status: await receiver.run.exited, stderr: receiver.run.stderr }).toEqual({ status: 0, stderr: "" });
    expect(await readFile(join(receiver.out, "after-restart.bin"))).toEqual(Buffer.from(bytes));
    expect(second.stdout).toMatch(/introducing [0-9a-f]{12}… to [0-9a-f]{12}…/);
  } finally {
    second?.child.kill("SIGINT");
    await rm(receiver.out, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}, 90_000);

test("receive: Ctrl-C mid-transfer removes the partial file and says so in one line, status 130 (and the gateway logs a refused request as refused)", async () => {
  const gatewayKeys = generateKeyPair();
  const gateway = await startGateway(gatewayKeys.secretKey);
  const receiver = await startReceiver(gateway.port, gatewayKeys.publicKey);
  // The sender is this process, on the library, so that the transfer is mid-way for as long as the
  // test needs: a header for 64 MiB, then 256 KiB of it, then nothing more.
  const sender = await Transport.bind({ host: "127.0.0.1", log: null });
  try {
    const introducer = await sender.connect({ host: "127.0.0.1", port: gateway.port }, gatewayKeys.publicKey);
    // On the way, a key the gateway holds no connection with: refused, and its log says so.
    await expect(sender.connectVia(introducer, "ab".repeat(32))).rejects.toMatchObject({ reason: "unknownPeer" });
    await gateway.run.line(/refused: [0-9a-f]{12}… asked for (ab){6}…, which is not connected here/);
    expect(gateway.run.stdout).not.toMatch(/introducing [0-9a-f]{12}… to (ab){6}…/);
    const peer = await sender.connectVia(introducer, receiver.key);
    await peer.send(new TextEncoder().encode(JSON.stringify({ name: "big.bin", size: 64 * 2 ** 20 })));
    await peer.openStream().getWriter().write(new Uint8Array(256 * 1024));
    const partial = join(receiver.out, "big.bin.part");
    for (let waitedMs = 0; ; waitedMs += 50) {
      const size = await stat(partial).then((info) => info.size, () => 0);
      if (size > 0) break;
      if (waitedMs > 20_000) throw new Error(`no bytes in ${partial} after 20 s; receiver stdout: ${receiver.run.stdout}; stderr: ${receiver.run.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    receiver.run.child.kill("SIGINT");
    expect(await receiver.run.exited).toBe(130);
    expect(receiver.run.stderr).toMatch(/^sluice: interrupted while receiving big\.bin \([\d.]+ [KM]iB of 64\.0 MiB\): the partial file .*big\.bin\.part was removed\.\n$/);
    expect(await readdir(receiver.out)).toEqual([]);
  } finally {
    await sender.close();
    gateway.run.child.kill("SIGINT");
    await rm(receiver.out, { recursive: true, force: true });
  }
}, 60_000);
