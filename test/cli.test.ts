// The `sluice` command on loopback: what it prints, and how it fails. Each failure is one line on
// stderr and a status: 2 for a mistake on the command line, 1 for what went wrong out there. The
// transfer itself is tested through two NATs in test/netns/cli.test.ts.
import { execFile } from "node:child_process";
import { expect, test } from "vitest";
import { publicKeyOf, decodeKey } from "sluice";

const CLI = new URL("../dist/cli.js", import.meta.url).pathname;
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
