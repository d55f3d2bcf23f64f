// The system commands the bed runs (iproute2, nftables, conntrack), each with a time bound and an
// error that carries the command's own stderr.
import { execFileSync, spawn } from "node:child_process";

/** No command of the bed takes more than a few milliseconds; this bounds a hung one. */
const COMMAND_TIMEOUT_MS = 10_000;

/** Runs `command` (with `input` on its stdin); resolves with its stdout, rejects with its stderr. */
export function run(command: string, args: readonly string[], input = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], timeout: COMMAND_TIMEOUT_MS });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    child.stdin.on("error", () => {}); // a command that reads no input may exit before we close its stdin
    child.stdin.end(input);
  });
}

/** Runs `command` inside network namespace `namespace`. */
export function runIn(namespace: string, command: string, args: readonly string[], input?: string): Promise<string> {
  return run("ip", ["netns", "exec", namespace, command, ...args], input);
}

/** The synchronous form, for exit handlers and the availability probe; throws with the command's stderr. */
export function runSync(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: COMMAND_TIMEOUT_MS });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim();
    throw new Error(`${command} ${args.join(" ")} failed: ${stderr || (error as Error).message}`);
  }
}
