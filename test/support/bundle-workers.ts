// vitest global setup: Node 20 cannot start a .ts worker, so every test/workers/*.ts is bundled
// (esbuild, ~10 ms each) into .test-build/*.mjs before the tests run. 'sluice' resolves to the
// built package, exactly as a user's worker would import it. Each project of vitest.config.ts runs
// this: a bundle is written aside and renamed into place, so a worker never reads a partial one.
import { mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

export default async function bundleWorkers(): Promise<void> {
  const dir = new URL("../workers/", import.meta.url);
  const outdir = new URL("../../.test-build/", import.meta.url).pathname;
  const entryPoints = readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => new URL(f, dir).pathname);
  const { outputFiles } = await build({
    entryPoints,
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
    write: false,
  });
  mkdirSync(outdir, { recursive: true });
  for (const file of outputFiles) {
    const aside = `${file.path}.${process.pid}.tmp`;
    writeFileSync(aside, file.contents);
    renameSync(aside, file.path);
  }
}
