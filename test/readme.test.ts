// The README's runnable blocks (```ts runnable) run as they stand: transpiled by esbuild and run by
// Node from inside the repository, so "sluice" is the built package, as it is for a user.
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { transform } from "esbuild";
import { expect, test } from "vitest";
import { runnableBlocks } from "./support/readme.ts";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const dir = new URL("../.test-build/readme/", import.meta.url).pathname;

/** Blocks that cannot run yet, and why (none now: writer.close() resolves once the end is queued). */
const PENDING = new Map<string, string>();

test("the README has runnable blocks", () => {
  expect(runnableBlocks().map((block) => block.section)).toContain("Transport tour");
});

for (const block of runnableBlocks()) {
  test.skipIf(PENDING.has(block.section))(`README "${block.section}" runs as it stands`, async () => {
    const { code } = await transform(block.code, { loader: "ts", format: "esm", target: "node20" });
    mkdirSync(dir, { recursive: true });
    const file = `${dir}${block.name}.mjs`;
    writeFileSync(file, code);
    await expect(run(process.execPath, [file], { cwd: root, timeout: 20_000 })).resolves.toBeDefined();
  }, 30_000);
}
