// The async iterators a connection or a transport hands out (addressChanges(), for await over a
// connection's messages or a transport's inbound connections) are
// written by hand, not as async generators: a generator suspended at an await runs neither return()
// nor its finally until that await settles, so giving up on a waiting next() (a Promise.race with a
// timeout, a loop left from another task) hung return() until the next change or message came.
// Here return() and throw() settle at once, as node:events' on() iterator does.

/** An async iterator a connection or a transport hands out: return() and throw() settle at once, even while a next() waits. */
export interface ConnectionIterator<T> {
  /** The next item, or done once there is none to come or the iterator was ended. */
  next(): Promise<IteratorResult<T, undefined>>;
  /** Ends the iterator now; a waiting next() settles with done. */
  return(value?: undefined): Promise<IteratorReturnResult<undefined>>;
  /** Ends the iterator as return() does, and rejects with `error` (as a generator that does not catch it). */
  throw(error?: unknown): Promise<IteratorReturnResult<undefined>>;
  /** The iterator itself. */
  [Symbol.asyncIterator](): ConnectionIterator<T>;
}

export const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** return(), throw() and [Symbol.asyncIterator]() of a ConnectionIterator; end() says how the iterator ends. */
export abstract class EndsAtOnce<T> implements ConnectionIterator<T> {
  abstract next(): Promise<IteratorResult<T, undefined>>;

  /** Done from now on: a waiting next() settles with done, and what the iterator held goes. */
  abstract end(): void;

  return(): Promise<IteratorReturnResult<undefined>> {
    this.end();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorReturnResult<undefined>> {
    this.end();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * One for-await over a wait that answers undefined at its end (recv(), accept()): next() is the wait,
 * done once it answers undefined or the iterator was ended, and rejects as it does. Ending it withdraws
 * a waiting call, so what it waited for stays for the next call.
 */
export class EachUntilEnd<T> extends EndsAtOnce<T> {
  readonly #wait: (signal: AbortSignal) => Promise<T | undefined>;
  /** Withdraws the waiting call when the iterator ends. */
  readonly #stop = new AbortController();
  #done = false;

  constructor(wait: (signal: AbortSignal) => Promise<T | undefined>) {
    super();
    this.#wait = wait;
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    if (this.#done) return DONE;
    try {
      const value = await this.#wait(this.#stop.signal);
      if (value !== undefined) return { done: false, value };
    } catch (error) {
      if (!this.#stop.signal.aborted) {
        this.#done = true;
        throw error;
      }
    }
    this.#done = true;
    return DONE;
  }

  end(): void {
    this.#done = true;
    this.#stop.abort();
  }
}
