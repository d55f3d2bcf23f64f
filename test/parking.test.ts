// A waiting receiver sleeps: no CPU while parked, woken by notify, and it keeps the process alive.
// Measured in a fresh child process, where process.cpuUsage is not shared with vitest's own threads.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);
const child = new URL("./children/parked-receiver.mjs", import.meta.url).pathname;

for (const mode of ["same-thread", "worker"]) {
  test(`recv_does_not_busy_loop_while_idle, measured: parked 500 ms costs < 5 ms CPU and holds the process (${mode})`, async () => {
    // The only waker is unref'd: if the parked receiver did not hold the process, it would exit
    // before printing anything.
    const { stdout } = await run(process.execPath, ["--expose-gc", child, mode], { cwd: new URL("..", import.meta.url).pathname });
    const result = JSON.parse(stdout) as { values: number[]; cpuMs: number[]; median: number };
    console.log(`${mode}: CPU per 500 ms park ${result.cpuMs.map((ms) => ms.toFixed(2)).join(", ")} ms`);
    expect(result.values).toEqual([7, 7, 7]);
    expect(result.median).toBeLessThan(5);
  });
}
