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

/**
 * Blocks that cannot run yet, and why. The Transport tour writes 4 MiB, then awaits writer.close()
 * before the peer calls acceptStream(): close() waits for the peer to acknowledge every byte, and an
 * unaccepted stream is credited 1 MiB, so it never resolves. The stream-semantics change on the
 * api branch (writer.close() resolving once the data is handed to the connection, or an unaccepted
 * stream credited enough) makes it run; then this entry goes.
 */
const PENDING = new Map([["Transport tour", "writer.close() before acceptStream() waits forever today"]]);

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
