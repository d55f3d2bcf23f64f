// Bounded work, in virtual time: the intro retry schedule, the gateway accept ramp, the per-address
// intro limit, the recently-closed grace, and the replay window against a set model (seeded).
import { expect, test } from "vitest";
import { AcceptRamp, DEFAULT_ACCEPT_RAMP, PerKeyInterval, RecentlyClosed } from "../src/handshake/admission.ts";
import { DEFAULT_RETRY, RetrySchedule } from "../src/handshake/retry.ts";
import { REPLAY_WINDOW_PACKETS, ReplayWindow } from "../src/wire/replay-window.ts";
import { mulberry32 } from "./support/random.ts";

function run(schedule: RetrySchedule, until: number): number[] {
  const sends: number[] = [];
  for (let now = 0; now <= until; now = schedule.nextDeadline()) {
    const due = schedule.poll(now);
    if (due === "expired") break;
    if (due === "send") sends.push(now);
  }
  return sends;
}

test("intros: every 200 ms ± 20% until the 3 s deadline; never more than 40", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const sends = run(new RetrySchedule(DEFAULT_RETRY, 0, mulberry32(seed)), 10_000);
    expect(sends[0]).toBe(0);
    expect(sends.at(-1)!).toBeLessThan(3000);
    expect(sends.length).toBeGreaterThanOrEqual(13);
    expect(sends.length).toBeLessThanOrEqual(19);
    for (let i = 1; i < sends.length; i++) {
      expect(sends[i]! - sends[i - 1]!).toBeGreaterThanOrEqual(160);
      expect(sends[i]! - sends[i - 1]!).toBeLessThanOrEqual(240);
    }
  }
  const long = new RetrySchedule({ ...DEFAULT_RETRY, deadlineMs: 60_000 }, 0, mulberry32(7));
  expect(run(long, 60_000)).toHaveLength(40);
  expect(long.poll(59_999)).toBe("expired");
});

test("accept ramp: 5 per second for 30 s, 20 per second until 2 min, then unlimited", () => {
  const ramp = new AcceptRamp(DEFAULT_ACCEPT_RAMP, 0);
  const take = (now: number, n: number) => Array.from({ length: n }, () => ramp.tryTake(now)).filter(Boolean).length;
  expect(take(0, 6)).toBe(5);
  expect(take(500, 1)).toBe(0);
  expect(take(1001, 1)).toBe(1);
  expect(take(30_000, 25)).toBe(20);
  expect(take(120_000, 1000)).toBe(1000);
});

test("one intro decryption per address per second, with a bounded memory of addresses", () => {
  const limit = new PerKeyInterval(1000, 3);
  expect(limit.tryTake("a", 0)).toBe(true);
  expect(limit.tryTake("a", 999)).toBe(false);
  expect(limit.tryTake("b", 999)).toBe(true);
  expect(limit.tryTake("a", 1000)).toBe(true);
  for (const key of ["c", "d", "e"]) expect(limit.tryTake(key, 1001)).toBe(true); // evicts the oldest beyond 3
  expect(limit.tryTake("b", 1002)).toBe(true); // forgotten, so allowed: memory stays bounded
});

test("recently closed: 2 s of grace, bounded", () => {
  const closed = new RecentlyClosed<number>(2000, 2);
  closed.add(1, 0);
  expect(closed.has(1, 1999)).toBe(true);
  expect(closed.has(1, 2000)).toBe(false);
  closed.add(2, 10);
  closed.add(3, 11);
  closed.add(4, 12);
  expect(closed.has(2, 13)).toBe(false); // the oldest went first
  expect(closed.has(4, 13)).toBe(true);
});

test("replay window: agrees with a set of seen numbers (within the window) on seeded random arrivals", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const random = mulberry32(seed);
    const window = new ReplayWindow();
    const seen = new Set<number>();
    let highest = -1;
    let front = 0;
    for (let i = 0; i < 20_000; i++) {
      // Mostly increasing, with reordering, duplicates, old packets and jumps.
      const r = random();
      front += r < 0.02 ? Math.floor(random() * 500) : r < 0.6 ? 1 : 0;
      const pn = Math.max(0, front - Math.floor(random() * 200));
      const expected = pn > highest || (highest - pn < REPLAY_WINDOW_PACKETS && !seen.has(pn));
      expect(window.check(pn)).toBe(expected);
      if (expected) {
        window.record(pn);
        seen.add(pn);
        highest = Math.max(highest, pn);
      }
    }
  }
});
