// Parking: how an async receiver or sender sleeps until the other side makes progress.
//
// The protocol (docs/ring.md, "wake-up"): the sleeper sets a flag, reads a sequence word, re-checks
// its condition, and only then waits for the word to change. The other side publishes first, then
// reads the flag, and only if it is set bumps the word and notifies. Sequentially consistent atomics
// on both sides mean at least one of them sees the other's store, so no wake-up is lost; and
// Atomics.waitAsync answers "not-equal" at once if the word moved before the wait began.
//
// Three ways out of a park, whichever comes first:
//  - the word changes (a producer or consumer on another thread notified);
//  - the same-thread Waker fires (a producer or consumer on this thread: no atomics, no task hop);
//  - the safety net, PARK_SAFETY_MS (one interval per thread): the sleeper re-checks and parks again.
//    It is only a bound on the damage of a bug; with the protocol above it is never what wakes a
//    sleeper in time.
// While anything is parked, a ref'd interval keeps the process alive: a pending waitAsync alone does not
// (nodejs/node#61941, denoland/deno#15358).

/** Longest a parked side sleeps before re-checking on its own. */
export const PARK_SAFETY_MS = 1000;

type Wake = () => void;

/** A same-thread wake-up: fire() wakes every caller parked on it now. */
export class Waker {
  readonly #sleepers = new Set<Wake>();

  add(wake: Wake): void {
    this.#sleepers.add(wake);
  }

  delete(wake: Wake): void {
    this.#sleepers.delete(wake);
  }

  fire(): void {
    if (this.#sleepers.size === 0) return;
    const woken = [...this.#sleepers];
    this.#sleepers.clear();
    for (const wake of woken) wake();
  }
}

/**
 * Atomics.waitAsync on one word, shared by every caller that waits for the same value, with no
 * timeout. A timeout is a delayed task in the host: Node keeps its delayed tasks in a vector that it
 * searches linearly as each one fires, so at thousands of parks per second (a batch consumer) that
 * search took 22% of the receiving thread (docs/benchmarks.md). The safety net is this module's
 * own interval instead. Without a timeout nothing may outlive its park: when the last caller leaves
 * a wait that its word did not end (a same-thread wake, the safety net), the wait is ended at once
 * with a notify on the word; every other waiter that notify reaches re-checks, as after any wake.
 */
export class WordWaiter {
  #pending: { expected: number; sleepers: Set<Wake> } | undefined;
  readonly #words: Int32Array;
  readonly #index: number;

  constructor(words: Int32Array, index: number) {
    this.#words = words;
    this.#index = index;
  }

  add(expected: number, wake: Wake): void {
    const pending = this.#pending;
    if (pending !== undefined && pending.expected === expected) {
      pending.sleepers.add(wake);
      return;
    }
    const result = Atomics.waitAsync(this.#words, this.#index, expected);
    // Synchronous answers ("not-equal": the word already moved; "timed-out") carry no promise.
    if (!result.async) {
      queueMicrotask(wake);
      return;
    }
    const entry = { expected, sleepers: new Set([wake]) };
    this.#pending = entry;
    result.value.then(() => {
      if (this.#pending === entry) this.#pending = undefined;
      for (const sleeper of entry.sleepers) sleeper();
    });
  }

  delete(wake: Wake): void {
    const pending = this.#pending;
    if (pending === undefined || !pending.sleepers.delete(wake) || pending.sleepers.size > 0) return;
    this.#pending = undefined;
    Atomics.notify(this.#words, this.#index); // ends the waitAsync nobody is parked on any more
  }
}

// Keep-alive and safety net for every park on this thread: one interval, ref'd only while something
// is parked. Toggling ref is cheaper than arming a timer per park (measured: a timer set and cleared
// around each waitAsync added ~4 µs to the median wake-up, 22 → 26 µs).
const parked = new Set<Wake>();
let keepAlive: ReturnType<typeof setInterval> | undefined;

function safetyNet(): void {
  for (const wake of [...parked]) wake();
}

/**
 * Sleeps until `waker` fires, `word` moves off `expected` (when a word is given), or the safety net
 * (within PARK_SAFETY_MS). Callers re-check their condition afterwards: a wake is a hint, never a
 * promise of data.
 */
export function park(waker: Waker, word: WordWaiter | undefined, expected: number): Promise<void> {
  return new Promise<void>((resolve) => parkThen(waker, word, expected, resolve));
}

/**
 * park() for a caller that continues in a callback: `then` runs once, after the first wake. A wake
 * from the word or the safety net runs it at once (they already come from their own task or
 * microtask); a same-thread Waker fires inside another caller's send, receive or close, so `then`
 * waits for a microtask there, as a promise's continuation would.
 */
export function parkThen(waker: Waker, word: WordWaiter | undefined, expected: number, then: () => void): void {
  const wake = (): void => {
    if (!parked.delete(wake)) return; // already woken another way
    waker.delete(wakeLater);
    word?.delete(wake);
    if (parked.size === 0) keepAlive!.unref();
    then();
  };
  const wakeLater = (): void => queueMicrotask(wake);
  keepAlive ??= setInterval(safetyNet, PARK_SAFETY_MS);
  if (parked.size === 0) keepAlive.ref();
  parked.add(wake);
  waker.add(wakeLater);
  word?.add(expected, wake);
}
