// The transport's one timer structure, in virtual time: deadlines fire in order, exactly when due,
// each once, whatever moves them earlier, later or away (against a plain model, seeded); a deadline
// that schedules itself again for now waits for the next round; and a transport holding many
// connections keeps one host timer, not one each. The host timer (real time): a flood of datagrams,
// which anyone can send, delays the firing by at most MAX_BACKLOG_TURNS (64) turns, and only after a
// stall.
import { expect, test } from "vitest";
import { Deadline, DeadlineTimer, Deadlines } from "../src/transport/deadlines.ts";
import { mulberry32 } from "./support/random.ts";

test("against a model: 10,000 random schedules, moves and cancels of 200 deadlines fire each due one once, in order", () => {
  for (let seed = 1; seed <= 5; seed++) {
    const random = mulberry32(seed);
    const deadlines = new Deadlines();
    const model = new Map<number, number>(); // id → when due
    const fired: Array<[number, number]> = [];
    const all = Array.from({ length: 200 }, (_, id) => new Deadline((now) => fired.push([id, now])));
    let now = 0;
    for (let step = 0; step < 10_000; step++) {
      const id = Math.floor(random() * all.length);
      const roll = random();
      if (roll < 0.6) {
        const at = now + Math.floor(random() * 1000);
        deadlines.schedule(all[id]!, at);
        model.set(id, at);
      } else if (roll < 0.7) {
        deadlines.cancel(all[id]!);
        model.delete(id);
      } else {
        now += Math.floor(random() * 50);
        fired.length = 0;
        deadlines.fireDue(now);
        const due = [...model].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
        for (const [dueId] of due) model.delete(dueId);
        expect(fired.map(([firedId]) => firedId).sort()).toEqual(due.map(([dueId]) => dueId).sort());
        expect(fired.every(([, at]) => at === now)).toBe(true);
        const order = fired.map(([firedId]) => due.find(([dueId]) => dueId === firedId)![1]);
        expect(order).toEqual([...order].sort((a, b) => a - b));
      }
      if (deadlines.size !== model.size) expect(deadlines.size).toBe(model.size);
      if (step % 100 === 0) {
        expect(deadlines.next()).toBe(model.size === 0 ? Infinity : Math.min(...model.values()));
        expect([...model].filter(([modelId, at]) => all[modelId]!.at !== at)).toEqual([]);
      }
    }
  }
});

test("a deadline that schedules itself again for now fires at the next round, not in a loop", () => {
  const deadlines = new Deadlines();
  let fires = 0;
  const again: Deadline = new Deadline((now) => {
    fires++;
    deadlines.schedule(again, now);
  });
  deadlines.schedule(again, 10);
  deadlines.fireDue(10);
  expect(fires).toBe(1);
  expect(deadlines.next()).toBe(10);
  deadlines.fireDue(10);
  expect(fires).toBe(2);
});

test("Infinity cancels; cancelling twice or a deadline never scheduled is nothing", () => {
  const deadlines = new Deadlines();
  const a = new Deadline(() => {});
  const b = new Deadline(() => {});
  deadlines.cancel(a);
  deadlines.schedule(a, 5);
  deadlines.schedule(b, 7);
  deadlines.schedule(a, Infinity);
  deadlines.cancel(a);
  expect(deadlines.size).toBe(1);
  expect(deadlines.next()).toBe(7);
  expect(a.at).toBe(Infinity);
});

/**
 * How many turns of the event loop the host timer's firing waited (deferrals), under a flood: every
 * look at the datagram count sees new datagrams. The thread is blocked `blockMs` first.
 */
async function turnsWaitedUnderFlood(blockMs: number): Promise<number> {
  let looks = 0;
  const timer = new DeadlineTimer(() => performance.now(), () => ++looks);
  let looksAtFiring = 0;
  timer.schedule(new Deadline(() => (looksAtFiring = looks)), performance.now() + 1);
  if (blockMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, blockMs);
  while (looksAtFiring === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  timer.stop();
  return looksAtFiring - 2; // one look at the expiry, one at the firing: the rest are turns waited
}

test("a flood delays the timers by at most 64 turns, after a stall too", async () => {
  // Without a stall it waits none (unless the machine itself stalled the loop 20 ms between two looks).
  expect(await turnsWaitedUnderFlood(0)).toBeLessThanOrEqual(64);
  const afterStall = await turnsWaitedUnderFlood(50);
  expect(afterStall).toBeGreaterThan(0); // it waited for the backlog
  expect(afterStall).toBeLessThanOrEqual(64);
});
