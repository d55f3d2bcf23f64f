// The sources, tests, benchmarks and scripts type-check under the repository's strict tsconfig. A
// test of its own rather than a step before the suite: it runs beside the files that only wait on
// sockets and timers (9 s of CPU the whole suite otherwise waited for).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const tsc = new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname;

test("tsc --noEmit (strict) reports nothing", async () => {
  const outcome = await run(process.execPath, [tsc, "--noEmit", "--pretty", "false"], { cwd: root, timeout: 120_000 })
    .then(({ stdout }) => stdout, (error: { stdout?: string; message: string }) => error.stdout || error.message);
  expect(outcome).toBe("");
}, 120_000);
