// vitest global setup: Node 20 cannot start a .ts worker, so every test/workers/*.ts is bundled
// (esbuild, ~10 ms each) into .test-build/*.mjs before the tests run. 'sluice' resolves to the
// built package, exactly as a user's worker would import it.
import { readdirSync } from "node:fs";
import { build } from "esbuild";

export default async function bundleWorkers(): Promise<void> {
  const dir = new URL("../workers/", import.meta.url);
  const entryPoints = readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => new URL(f, dir).pathname);
  await build({
    entryPoints,
    outdir: new URL("../../.test-build/", import.meta.url).pathname,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
  });
}
