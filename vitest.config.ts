import { defineConfig } from "vitest/config";

// Three groups, one after the other (sequence.groupOrder). Most files only wait on sockets, timers
// and child processes, so they share the two cores, three at a time: on the quiet 2-vCPU VM the
// group took 81 s so and 111 s two at a time, for the same 190-200 s of files (a machine already
// loaded makes the CPU-bound ones, tsc and the virtual-time sweeps, slower; their timeouts allow for
// it). Files that measure the CPU a process spends against an absolute bound or hold a wall-clock
// bound of a few hundred milliseconds (latency under a flood, a dead-peer timeout in one event loop)
// run afterwards, one at a time, with nothing else of the suite's beside them. What sharing does not
// move shares the cores: a ratio of two CPU readings in one process (receive-memory's and
// reassembly-cpu's 16k against 128k fragments, bound 3×: sharing slows both alike), a parked
// receiver's CPU (parking: a child's own CPU over 500 ms asleep, to which sharing adds nothing) and
// a wake-up bounded at 500 ms (waits: the notify comes within milliseconds, the safety net at 1 s).
// The network-namespace bed's files run between, one at a time too: their NAT timing bounds (a p50
// of 50 ms, a move followed within 100 ms) missed when two shared a loaded machine.
const ALONE = [
  "test/mpsc-invariants.test.ts", // the same across worker threads; one slow look bounded
  "test/never-blocks.test.ts", // elapsed budgets
  "test/listener-never-blocks.test.ts", // a stalled consumer: the listener answers within 1 s
  "test/liveness.test.ts", // HTTP latency during a flood
  "test/outsider/cpu.test.ts", // a child gateway's CPU per datagram
  "test/close.test.ts", // a 400 ms dead-peer timeout in one event loop: a loop starved that long misses the ack
  "test/cancel.test.ts", // a peer's end within 500 ms
];
const NETNS = ["test/netns/**/*.test.ts"];

export default defineConfig({
  test: {
    globalSetup: ["test/support/bundle-workers.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // A bound for a hang, not a speed test: CPU-bound files (tsc, seeded sweeps) take several times
    // their quiet-machine time when the machine is shared.
    testTimeout: 60_000,
    // Setups pack the package, generate the API docs, build namespaces: seconds, more when sharing the cores.
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "shared", include: ["test/**/*.test.ts"], exclude: [...ALONE, ...NETNS], maxWorkers: 3, sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: "netns", include: NETNS, fileParallelism: false, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: "alone", include: ALONE, fileParallelism: false, sequence: { groupOrder: 2 } } },
    ],
  },
});
