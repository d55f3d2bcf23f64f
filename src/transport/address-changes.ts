// A connection's address changes as the application sees them: each call of
// connection.addressChanges() is a subscription of its own, an async iterator that yields every
// change from then on and ends when the connection does. An iterator nobody reads keeps only the
// newest MAX_QUEUED_ADDRESS_CHANGES changes.
//
// The iterator is written by hand (connection-iterator.ts): as an async generator, giving up on a
// pending next() hung return() and kept the subscription and its signal listener (2000 of 2000 in a
// user's loop), and a generator returned before its first next() never ran its body, so never
// unsubscribed (100,000 of them held 9.4 MiB until the connection closed). return() settles at once
// and unsubscribes at once.
import { abortErrorOf } from "../errors/errors.ts";
import { DONE, EndsAtOnce, type ConnectionIterator } from "./connection-iterator.ts";
import type { Address } from "../wire/address.ts";

/** Changes one subscription holds for a reader that is behind; older ones are dropped. */
export const MAX_QUEUED_ADDRESS_CHANGES = 16;

/** One change of where a connection sends (docs/wire.md, "Paths"). */
export interface AddressChange {
  /**
   * "moved": an authenticated packet newer than any before came from `address`; the connection sends
   * there now, unvalidated (at most 3× what it received from it) while a PATH_CHALLENGE goes there.
   * Or a re-punch's challenge to `address` (where the introducer sees the peer now) was answered:
   * "validated" follows at once.
   * "validated": `address` answered the challenge; what was in flight goes again at once.
   * "reverted": it did not answer within 3 RTOs (at least 1 s); the connection is back at `address`,
   * its last validated address.
   * "direct": the connection ran over a relay and a direct address of the peer answered its probe;
   * it sends there now, validated both ways, and what was in flight goes again at once.
   */
  readonly kind: "moved" | "validated" | "reverted" | "direct";
  /** Where the connection sends now. */
  readonly address: Address;
  /** Where it sent before this change (for "validated", the address before the move). */
  readonly previous: Address;
}

/**
 * What connection.addressChanges() returns, for `for await`. next() answers a queued change or the
 * next to come; done once the connection ended and the changes queued before were read, or once the
 * iterator was ended; it rejects with an AbortError once the signal aborts (then done). return() and
 * throw() leave the connection's subscribers at once, even while a next() waits.
 */
export type AddressChangeIterator = ConnectionIterator<AddressChange>;

interface Waiter {
  resolve: (result: IteratorResult<AddressChange, undefined>) => void;
  reject: (error: unknown) => void;
}

/** One addressChanges() call: the changes queued for its reader, or the next() calls waiting for one. */
class Subscription extends EndsAtOnce<AddressChange> {
  readonly #feed: AddressChangeFeed;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#aborted();
  /** Changes not read yet; never more than MAX_QUEUED_ADDRESS_CHANGES. Non-empty only while no next() waits. */
  #queue: AddressChange[] = [];
  /** next() calls waiting for a change, in call order (a reader that does not await may make several). */
  #waiters: Waiter[] = [];
  /** Still in the feed: the feed has not ended, and neither return(), throw() nor the signal ended it. */
  #subscribed = false;
  /** next() answers done: the iterator was ended, or the feed's end was read. */
  #done = false;

  /** Not `subscribed`: the feed had ended, or the signal had fired; the first next() answers (done, or the AbortError). */
  constructor(feed: AddressChangeFeed, signal: AbortSignal | undefined, subscribed: boolean) {
    super();
    this.#feed = feed;
    this.#signal = signal;
    if (!subscribed) return;
    this.#subscribed = true;
    signal?.addEventListener("abort", this.#onAbort);
  }

  /** A change from the feed: to the first waiting next(), or queued (the oldest dropped past the bound). */
  push(change: AddressChange): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) return waiter.resolve({ done: false, value: change });
    if (this.#queue.length >= MAX_QUEUED_ADDRESS_CHANGES) this.#queue.shift();
    this.#queue.push(change);
  }

  /** The feed ended (it forgets this subscription itself): waiting next() calls are done; queued changes are still read. */
  feedEnded(): void {
    this.#leaveFeed(false);
    if (this.#waiters.length > 0) this.end(); // a next() waits only when nothing is queued
  }

  next(): Promise<IteratorResult<AddressChange, undefined>> {
    if (this.#done) return Promise.resolve(DONE);
    if (this.#signal?.aborted) {
      this.end();
      return Promise.reject(abortErrorOf(this.#signal));
    }
    const change = this.#queue.shift();
    if (change !== undefined) return Promise.resolve({ done: false, value: change });
    if (!this.#subscribed) {
      this.end();
      return Promise.resolve(DONE);
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The signal fired: a waiting next() rejects with the AbortError; otherwise the next next() does. */
  #aborted(): void {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      this.#leaveFeed(true);
      this.#queue = [];
      return;
    }
    this.end();
    waiter.reject(abortErrorOf(this.#signal!));
  }

  /** Done from now on: out of the feed, nothing queued, every waiting next() settled with done. */
  end(): void {
    this.#done = true;
    this.#leaveFeed(true);
    this.#queue = [];
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(DONE);
  }

  #leaveFeed(unsubscribe: boolean): void {
    if (!this.#subscribed) return;
    this.#subscribed = false;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (unsubscribe) this.#feed.unsubscribe(this);
  }
}

export class AddressChangeFeed {
  readonly #subscriptions = new Set<Subscription>();
  #ended = false;

  /** Subscriptions not yet ended: the bound of what the feed holds is this × MAX_QUEUED_ADDRESS_CHANGES. */
  get subscribers(): number {
    return this.#subscriptions.size;
  }

  emit(change: AddressChange): void {
    for (const subscription of this.#subscriptions) subscription.push(change);
  }

  /** The connection ended: every iterator ends once it has yielded what it holds. */
  end(): void {
    this.#ended = true;
    for (const subscription of this.#subscriptions) subscription.feedEnded();
    this.#subscriptions.clear();
  }

  /** Changes from now on (subscribed at the call, not at the first next()). */
  subscribe(signal: AbortSignal | undefined): AddressChangeIterator {
    const subscribed = !this.#ended && signal?.aborted !== true;
    const subscription = new Subscription(this, signal, subscribed);
    if (subscribed) this.#subscriptions.add(subscription);
    return subscription;
  }

  unsubscribe(subscription: Subscription): void {
    this.#subscriptions.delete(subscription);
  }
}
