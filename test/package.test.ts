// The package as a user gets it: `npm pack`, installed into a fresh project (the tarball extracted
// into node_modules/sluice: it has no dependencies, so nothing is fetched), with @types/node 20
// copied from this repository. A small application (test/package/app.ts: a gateway and a peer
// exchanging a message and a stream, importing only "sluice") is type-checked under three ordinary
// strict settings, run by Node, then checked and run by Deno from the same node_modules. The
// README's runnable blocks are type-checked beside it (test/readme.test.ts runs them).
import { execFile, execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runnableBlocks } from "./support/readme.ts";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const deno = join(root, "node_modules/.bin/deno");

/** Every path the tarball may hold: what a user needs, and no sources, maps, tests or benchmarks. */
const ALLOWED = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/, /^CHANGELOG\.md$/,
  /^docs\/(?!benchmarks\.md$)[a-z-]+\.md$/, // the docs, but not the benchmark figures of one machine
  /^dist\/(index|internal|cli)\.js$/, /^dist\/chunk-[A-Z0-9]+\.js$/, /^dist\/(index|internal)\.d\.ts$/,
  /^dist\/types\/(src|build)\/[a-z0-9/-]+\.d\.ts$/,
];
const REQUIRED = ["package.json", "README.md", "LICENSE", "CHANGELOG.md", "docs/api.md", "dist/index.js", "dist/index.d.ts", "dist/internal.js", "dist/internal.d.ts"];
/**
 * The packed tarball's bound: 240 KiB today (a 402 kB bundle holding the wasm core as base64, its
 * declarations, the docs; 202 KiB before the path MTU search, the ladder, the handshake under load
 * and the fixes users asked for; 133 KiB before the relays and the rendezvous). A source map of the
 * bundle would add ~100 KiB; sources about as much: either still breaks this bound.
 */
const MAX_TARBALL_BYTES = 288 * 1024;

/** The consumer's compiler settings: each an ordinary strict project, none tailored to Sluice. */
const SETTINGS: Record<string, object> = {
  nodenext: { module: "nodenext", strict: true, types: ["node"], outDir: "out" },
  "node16 + exactOptionalPropertyTypes": { module: "node16", strict: true, exactOptionalPropertyTypes: true, types: ["node"], noEmit: true },
  bundler: { module: "esnext", moduleResolution: "bundler", target: "es2022", strict: true, types: ["node"], noEmit: true },
};

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

let project: string;
let packed: Packed;
/** The JSR dry run, started with the setup so that it runs beside the in-process type checks. */
let publishDryRun: Promise<{ stderr: string } | Error>;

beforeAll(async () => {
  // --allow-dirty: the check is of the sources as they are, committed or not. Works offline.
  // --no-check: the type check of the same entry is test/deno.test.ts's `deno check` (10 s of CPU
  // twice over); the slow-types check, what JSR adds, still runs.
  publishDryRun = run(deno, ["publish", "--dry-run", "--allow-dirty", "--no-check"], { cwd: root, timeout: 100_000, env: { ...process.env, NO_COLOR: "1" } })
    .catch((error: Error) => error);
  project = mkdtempSync(join(tmpdir(), "sluice-consumer-"));
  // --ignore-scripts: `prepack` would rebuild; `npm test` has just built dist/.
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", project], { cwd: root });
  packed = (JSON.parse(stdout) as Packed[])[0]!;
  const installed = join(project, "node_modules/sluice");
  cpSync(join(root, "node_modules/@types/node"), join(project, "node_modules/@types/node"), { recursive: true });
  cpSync(join(root, "node_modules/undici-types"), join(project, "node_modules/undici-types"), { recursive: true });
  mkdirSync(installed, { recursive: true });
  await run("tar", ["-xzf", join(project, packed.filename), "-C", installed, "--strip-components=1"]);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { sluice: `file:${packed.filename}` } }));
  writeFileSync(join(project, "app.ts"), readFileSync(new URL("package/app.ts", import.meta.url)));
  // "sluice/internal" (the repository's test seams, not an API) is checked too: its declarations must hold.
  const files = ["app.ts", "node_modules/sluice/dist/internal.d.ts"];
  for (const block of runnableBlocks()) {
    files.push(`readme-${block.name}.ts`);
    writeFileSync(join(project, files.at(-1)!), block.code);
  }
  for (const [name, compilerOptions] of Object.entries(SETTINGS)) {
    writeFileSync(join(project, configFile(name)), JSON.stringify({ compilerOptions, files }));
  }
}, 60_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

const configFile = (settings: string) => `tsconfig.${settings.split(" ")[0]}.json`;

test("the packed package.json runs nothing at install (npm 11 warned of `prepare` on every tarball install): the build runs before a pack, and for a git dependency", () => {
  const manifest = JSON.parse(execFileSync("tar", ["-xzOf", join(project, packed.filename), "package/package.json"], { encoding: "utf8" })) as { scripts?: Record<string, string> };
  const installTime = ["preinstall", "install", "postinstall", "prepare"].filter((name) => manifest.scripts?.[name] !== undefined);
  expect(installTime).toEqual([]);
  expect(manifest.scripts?.["prepack"]).toBe("npm run build");
});

test("the tarball holds the bundle, its declarations and the docs; no sources, source maps, tests or benchmarks", () => {
  const paths = packed.files.map((file) => file.path).sort();
  expect(paths.filter((path) => !ALLOWED.some((allowed) => allowed.test(path)))).toEqual([]);
  expect(REQUIRED.filter((path) => !paths.includes(path))).toEqual([]);
  expect(paths.filter((path) => path.startsWith("dist/chunk-"))).toHaveLength(1);
  expect(packed.size).toBeLessThan(MAX_TARBALL_BYTES);
  console.log(`tarball: ${paths.length} files, ${(packed.size / 1024).toFixed(1)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(1)} KiB unpacked`);
});

describe("a consumer's tsc (strict, @types/node 20) type-checks an app importing \"sluice\", and the README's code, with zero errors", () => {
  // One compiler host for the three programs, so @types/node and the package are parsed once.
  const parsed = new Map<string, ts.SourceFile>();
  for (const settings of Object.keys(SETTINGS)) {
    test(settings, () => {
      const config = ts.getParsedCommandLineOfConfigFile(join(project, configFile(settings)), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
      const host = ts.createCompilerHost(config.options);
      const getSourceFile = host.getSourceFile.bind(host);
      host.getSourceFile = (fileName, language, ...rest) => {
        const key = `${fileName}\0${JSON.stringify(language)}`;
        if (!parsed.has(key)) parsed.set(key, getSourceFile(fileName, language, ...rest)!);
        return parsed.get(key);
      };
      const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, host });
      // Every diagnostic of the app and of the installed package. TypeScript's own lib files and
      // @types/node are not ours to check (they cost 4 s a program): a consumer's tsc reports their
      // errors the same with or without Sluice.
      const ours = program.getSourceFiles().filter((file) => !file.fileName.includes("/node_modules/typescript/") && !/\/node_modules\/(@types\/node|undici-types)\//.test(file.fileName));
      expect(ours.map((file) => file.fileName)).toContain(join(project, "node_modules/sluice/dist/index.d.ts"));
      expect(ours.map((file) => file.fileName)).toContain(join(project, "node_modules/sluice/dist/types/src/internal.d.ts"));
      const diagnostics = [
        ...config.errors, ...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(),
        ...ours.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]),
      ];
      if (settings === "nodenext") diagnostics.push(...program.emit(program.getSourceFile(join(project, "app.ts"))).diagnostics);
      expect(ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => project, getNewLine: () => "\n" })).toBe("");
    });
  }
});

const EXPECTED = { message: "hello, gateway", streamedBytes: 200_000, streamIntact: true };

test("the app runs in Node (as tsc emitted it under nodenext)", async () => {
  const { stdout } = await run(process.execPath, ["out/app.js"], { cwd: project, timeout: 15_000 });
  expect(JSON.parse(stdout)).toEqual({ socket: "node:dgram", ...EXPECTED });
});

test("Deno type-checks the same app against the installed package and runs it (\"unstable\": [\"net\"] in deno.json)", async () => {
  // What the README tells a Deno user: the fast socket through deno.json rather than a flag.
  writeFileSync(join(project, "deno.json"), JSON.stringify({ unstable: ["net"] }));
  await run(deno, ["check", "app.ts"], { cwd: project, timeout: 60_000 });
  // --allow-net is the one permission it needs (the core is inside the bundle: nothing to read).
  const { stdout } = await run(deno, ["run", "--allow-net", "app.ts"], { cwd: project, timeout: 15_000 });
  expect(JSON.parse(stdout)).toEqual({ socket: "Deno.listenDatagram", ...EXPECTED });
}, 90_000);

test("JSR: deno.json names the package at package.json's version, and `deno publish --dry-run` is clean (no slow types)", async () => {
  const denoJson = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")) as { version: string; exports: Record<string, string> };
  const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  expect(denoJson.version).toBe(packageJson.version);
  expect(denoJson.exports).toEqual({ ".": "./src/index.ts" });
  const result = await publishDryRun;
  if (result instanceof Error) throw result;
  const { stderr } = result;
  expect(stderr).toContain("Dry run complete");
  expect(stderr).not.toMatch(/\b(error|warning)\b/i);
}, 120_000); // started in the setup; a bound for a hang
