// Bounded work, in virtual time: the intro retry schedule, the gateway accept ramp, per-IP budgets,
// the recently-closed grace, and the replay window against a set model (seeded).
import { expect, test } from "vitest";
import { AcceptRamp, DEFAULT_ACCEPT_RAMP, ipKey, isLoopbackSource, KeyedBuckets, RecentlyClosed } from "../src/handshake/admission.ts";
import { DEFAULT_RETRY, LOADED_RESPONDER_DEADLINES, LOADED_RESPONDER_MAX_INTERVAL_MS, RetrySchedule } from "../src/handshake/retry.ts";
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

test("intros after a COOKIE reply: the intervals double up to 1.6 s, and the deadline is 3 × deadlineMs from the start", () => {
  const schedule = new RetrySchedule({ ...DEFAULT_RETRY, jitter: 0 }, 0, mulberry32(1));
  expect(schedule.poll(0)).toBe("send");
  schedule.responderLoaded();
  expect(schedule.deadlineAt).toBe(LOADED_RESPONDER_DEADLINES * DEFAULT_RETRY.deadlineMs);
  const sends = [0, ...run(schedule, 20_000)];
  const gaps = sends.slice(1).map((at, i) => at - sends[i]!);
  expect(gaps).toEqual([200, 400, 800, LOADED_RESPONDER_MAX_INTERVAL_MS, 1600, 1600, 1600]);
  expect(schedule.poll(LOADED_RESPONDER_DEADLINES * DEFAULT_RETRY.deadlineMs)).toBe("expired");
});

test("intros, with COOKIEs at random moments (seeded): never more than maxAttempts, never past 3 × deadlineMs, at most one answer at once between two scheduled sends", () => {
  for (let seed = 1; seed <= 50; seed++) {
    const random = mulberry32(seed);
    const options = { ...DEFAULT_RETRY, maxAttempts: 5 + Math.floor(random() * 40), deadlineMs: 500 + Math.floor(random() * 5000) };
    const schedule = new RetrySchedule(options, 0, mulberry32(seed + 1000));
    let sent = 0;
    let extrasSinceScheduled = 0;
    for (let now = 0; ; now += 1 + Math.floor(random() * 50)) {
      const due = schedule.poll(now);
      if (due === "expired") {
        expect(now).toBeLessThanOrEqual(LOADED_RESPONDER_DEADLINES * options.deadlineMs + 50);
        break;
      }
      if (due === "send") {
        sent++;
        extrasSinceScheduled = 0;
      }
      if (random() < 0.3) { // a COOKIE arrives
        schedule.responderLoaded();
        if (schedule.takeExtraAttempt()) {
          sent++;
          extrasSinceScheduled++;
        }
      }
      expect(extrasSinceScheduled).toBeLessThanOrEqual(1);
      expect(sent).toBeLessThanOrEqual(options.maxAttempts);
      expect(schedule.attempts).toBe(sent);
    }
  }
});

test("accept ramp: 5 per second for 30 s, 20 per second until 2 min, then unlimited; one IP takes at most a quarter of a window", () => {
  const ramp = new AcceptRamp(DEFAULT_ACCEPT_RAMP, 0);
  const take = (now: number, n: number, ip = (i: number) => `198.18.0.${i}`) => Array.from({ length: n }, (_, i) => ramp.tryTake(ip(i), now)).filter(Boolean).length;
  expect(take(0, 6)).toBe(5);
  expect(take(500, 1)).toBe(0);
  expect(take(1001, 1)).toBe(1);
  expect(take(30_000, 25)).toBe(20);
  expect(take(120_000, 1000)).toBe(1000);
  expect(take(31_000, 25, () => "198.18.9.9")).toBe(5); // 20/s, a quarter per IP
  expect(take(1000 + 999, 5, () => "198.18.9.9")).toBe(0); // the window of 1001 is not over
});

test("accept ramp: loopback peers (::1, or 127.0.0.0/8 as plain IPv4) share the whole window, never more; forms a remote sender can use do not", () => {
  const ramp = new AcceptRamp(DEFAULT_ACCEPT_RAMP, 0);
  const take = (now: number, n: number, host: string, relay?: number) => {
    const from = relay === undefined ? { host, port: 9 } : { host, port: 9, relay };
    return Array.from({ length: n }, () => ramp.tryTake(ipKey(host), now, isLoopbackSource(from))).filter(Boolean).length;
  };
  expect(take(0, 7, "127.0.0.1")).toBe(5); // 5/s: all of it, where one IP's quarter is 1
  expect(take(1000, 7, "::1")).toBe(5);
  expect(take(2000, 2, "198.18.0.1")).toBe(1); // any other IP: its quarter, as before
  expect(take(2000, 9, "127.0.0.1")).toBe(4); // loopback's share is the window, not more than what is left of it
  // What a dual-stack socket reports for datagrams the kernel lets in from other interfaces (a
  // review reached a fresh gateway with both from another network namespace), and a relayed intro.
  expect(take(3000, 3, "::ffff:127.0.0.1")).toBe(1);
  expect(take(4000, 3, "::2")).toBe(1);
  expect(take(5000, 3, "127.0.0.1", 7)).toBe(1);
});


test("per-IP token buckets: a burst, then the refill rate; a bounded memory of IPs", () => {
  const buckets = new KeyedBuckets(3, 2, 4);
  const take = (key: string, now: number, n: number) => Array.from({ length: n }, () => buckets.tryTake(key, now)).filter(Boolean).length;
  expect(take("a", 0, 5)).toBe(3);
  expect(take("a", 499, 1)).toBe(0);
  expect(take("a", 500, 2)).toBe(1); // 2 per second: one more after 500 ms
  expect(take("b", 500, 3)).toBe(3); // another IP has its own
  for (const key of ["c", "d", "e", "f"]) take(key, 600, 1); // "a" is forgotten beyond 4 keys
  expect(take("a", 600, 3)).toBe(3);
});

test("per IP means per IPv4 address and per IPv6 /64; an IPv4-mapped address is its IPv4", () => {
  expect(ipKey("198.18.0.1")).toBe("198.18.0.1");
  expect(ipKey("::ffff:198.18.0.1")).toBe("198.18.0.1");
  expect(ipKey("2001:db8:1:2:3:4:5:6")).toBe(ipKey("2001:db8:1:2::9"));
  expect(ipKey("2001:db8:1:2::9")).not.toBe(ipKey("2001:db8:1:3::9"));
  expect(ipKey("::1")).toBe("0:0:0:0::/64");
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
      // A plain check, not expect(): 200,000 of them, where expect() cost most of the test's time.
      if (window.check(pn) !== expected) throw new Error(`seed ${seed}, arrival ${i}: check(${pn}) answered ${!expected}, not ${expected}`);
      if (expected) {
        window.record(pn);
        seen.add(pn);
        highest = Math.max(highest, pn);
      }
    }
  }
});
