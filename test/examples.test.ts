// Every program in examples/ runs as its header says, importing "sluice" as a user's program does
// (the package's own name resolves to dist/). Servers are stopped with SIGINT, as Ctrl-C would.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, test } from "vitest";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), "sluice-examples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs an example to its end (at most `timeout` ms) and answers its output. */
async function example(file: string, args: string[] = [], timeout = 15_000): Promise<string> {
  const { stdout } = await run(process.execPath, [`examples/${file}`, ...args], { cwd: root, timeout });
  return stdout;
}

/** Starts a server example; answers its first line of output and a stop() that sends SIGINT and waits for it to exit. */
async function server(file: string, args: string[] = []): Promise<{ firstLine: string; stop: () => Promise<{ code: number | null; output: string }> }> {
  const child = spawn(process.execPath, [`examples/${file}`, ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const firstLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} printed nothing within 10 s`)), 10_000);
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("\n")) {
        clearTimeout(timer);
        resolve(output.slice(0, output.indexOf("\n")));
      }
    });
    child.once("exit", (code) => reject(new Error(`${file} exited (${code}) before printing its address`)));
  });
  return {
    firstLine,
    async stop() {
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return { code, output };
    },
  };
}

/** "… on 127.0.0.1:41234, public key 9f…" → the address and key arguments a client takes. */
function addressAndKey(line: string): [string, string] {
  const match = / on (\S+), public key ([0-9a-f]{64})$/.exec(line);
  if (match === null) throw new Error(`no address and key in: ${line}`);
  return [match[1]!, match[2]!];
}

test("echo: the client's words come back from the server, which stops on SIGINT", async () => {
  const echo = await server("echo-server.mjs");
  try {
    const stdout = await example("echo-client.mjs", [...addressAndKey(echo.firstLine), "one", "two", "three"]);
    expect(stdout.split("\n").filter(Boolean).map((line) => line.replace(/ \(.* ms\)$/, ""))).toEqual(["one", "two", "three"]);
  } finally {
    const { code, output } = await echo.stop();
    expect(code).toBe(0);
    expect(output).toMatch(/ closed\n/); // the client's graceful close reached it
  }
});

test("file transfer: 3 MB arrive byte for byte, and both ends agree on the SHA-256", async () => {
  const contents = randomBytes(3_000_000);
  const file = join(scratch, "payload.bin");
  writeFileSync(file, contents);
  const folder = mkdtempSync(join(scratch, "received-"));
  const receiver = await server("file-receiver.mjs", [folder]);
  try {
    const stdout = await example("file-sender.mjs", [file, ...addressAndKey(receiver.firstLine)]);
    expect(stdout).toMatch(/^sent payload\.bin: 3000000 bytes in .* receiver: intact\n$/);
    expect(readFileSync(join(folder, "payload.bin")).equals(contents)).toBe(true);
  } finally {
    const { code, output } = await receiver.stop();
    expect(code).toBe(0);
    expect(output).toMatch(/payload\.bin: 3000000 bytes, SHA-256 [0-9a-f]{64} matches/);
  }
});

test("a gateway introduces two peers, which then exchange messages directly", async () => {
  const stdout = await example("gateway-and-peers.mjs");
  expect(stdout).toContain("bob got: hello bob, from alice\n");
  expect(stdout).toContain("alice got: hi alice, bob here\n");
});

test("a worker thread's packets reach the main thread through a channel, all and in order; in Deno too, with nothing on stderr", async () => {
  const stdout = await example("worker-channel.mjs", ["20000"]);
  expect(stdout).toMatch(/^received 20000 packets in order: true /);
  // Deno's node:worker_threads has no parentPort.close(): the example called it, and Deno printed an uncaught TypeError.
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const inDeno = await run(deno, ["run", "--allow-read", "--allow-env", "examples/worker-channel.mjs", "20000"], { cwd: root, timeout: 20_000 });
  expect(inDeno.stdout).toMatch(/^received 20000 packets in order: true /);
  expect(inDeno.stderr).toBe("");
});
