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
//  - the safety net, PARK_SAFETY_MS: the sleeper re-checks and parks again. It is only a bound on the
//    damage of a bug; with the protocol above it is never what wakes a sleeper in time.
// While parked, a ref'd timer keeps the process alive: a pending waitAsync alone does not
// (nodejs/node#61941, denoland/deno#15358).

/** Longest a parked side sleeps before re-checking on its own. */
export const PARK_SAFETY_MS = 1000;

/** A same-thread wake-up that any number of parked callers share. */
export class Waker {
  private resolve: (() => void) | undefined;
  private promise: Promise<void> | undefined;

  wait(): Promise<void> {
    this.promise ??= new Promise<void>((resolve) => {
      this.resolve = resolve;
    });
    return this.promise;
  }

  fire(): void {
    const resolve = this.resolve;
    if (resolve === undefined) return;
    this.resolve = undefined;
    this.promise = undefined;
    resolve();
  }
}

/**
 * Atomics.waitAsync on one word, shared by every caller that waits for the same value. Sharing
 * matters: a wait that ends through the Waker leaves its waitAsync registered until notify or
 * timeout, and re-parking must not pile up one V8 waiter per park.
 */
export class WordWaiter {
  private pending: { expected: number; done: Promise<unknown> } | undefined;

  constructor(
    private readonly words: Int32Array,
    private readonly index: number,
  ) {}

  wait(expected: number): Promise<unknown> {
    const pending = this.pending;
    if (pending !== undefined && pending.expected === expected) return pending.done;
    const result = Atomics.waitAsync(this.words, this.index, expected, PARK_SAFETY_MS);
    // Synchronous answers ("not-equal": the word already moved; "timed-out") carry no promise.
    if (!result.async) return Promise.resolve();
    const entry = { expected, done: result.value as Promise<unknown> };
    this.pending = entry;
    // Forget the wait once it ends; a side branch, so the wake itself takes no extra promise hop.
    entry.done.then(() => {
      if (this.pending === entry) this.pending = undefined;
    });
    return entry.done;
  }
}

/**
 * Sleeps until `waker` fires, `word` moves off `expected` (when a word is given), or the safety net.
 * Callers re-check their condition afterwards: a wake is a hint, never a promise of data.
 * One promise, settled directly by whichever way out comes first (no Promise.race: each hop is a
 * microtask on the wake-up latency path).
 */
export function park(waker: Waker, word: WordWaiter | undefined, expected: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const wake = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(wake, PARK_SAFETY_MS);
    waker.wait().then(wake);
    word?.wait(expected).then(wake);
  });
}
