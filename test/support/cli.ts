// The `sluice` command run as a child process (dist/cli.js), its output watched as it comes: for the
// tests that keep a gateway or a receiver running while they act on it.
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll } from "vitest";

export const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;

/** A run of the CLI: its output so far, and its end. */
export interface CliRun {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** The exit status (130 for a process.exit(130)), or -1 when a signal ended it. */
  exited: Promise<number>;
  /** The first stdout line matching `pattern` (its first group), within `timeoutMs`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

const running = new Set<ChildProcess>();

afterAll(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** `sluice ...args` in Node, started through `wrapper` if given (e.g. ip netns exec NAME). */
export function runCli(args: string[], wrapper: string[] = []): CliRun {
  const [command, ...rest] = [...wrapper, process.execPath, CLI, ...args];
  const child = spawn(command!, rest, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const run: CliRun = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => child.on("exit", (code) => {
      running.delete(child);
      resolve(code ?? -1);
    })),
    line: (pattern, timeoutMs = 10_000) => new Promise((resolve, reject) => {
      const look = () => {
        const match = pattern.exec(run.stdout);
        if (match === null) return false;
        clearTimeout(timer);
        child.stdout!.off("data", look);
        resolve(match[1] ?? match[0]);
        return true;
      };
      const timer = setTimeout(() => reject(new Error(`sluice ${args[0]}: no line matching ${pattern} within ${timeoutMs} ms; stdout: ${run.stdout}; stderr: ${run.stderr}`)), timeoutMs);
      if (!look()) child.stdout!.on("data", look);
    }),
  };
  // Registered before line()'s listener, so the text a chunk adds is there when line() looks.
  child.stdout!.on("data", (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}
