// A connection's address changes as the application sees them: each call of
// connection.addressChanges() is a subscription of its own, an async iterator that yields every
// change from then on and ends when the connection does (or its signal aborts). An iterator nobody
// reads keeps only the newest MAX_QUEUED_ADDRESS_CHANGES changes.
import type { Address } from "../wire/address.ts";

/** Changes one subscription holds for a reader that is behind; older ones are dropped. */
export const MAX_QUEUED_ADDRESS_CHANGES = 16;

/** One change of where a connection sends (docs/wire.md, "Paths"). */
export interface AddressChange {
  /**
   * "moved": an authenticated packet newer than any before came from `address`; the connection sends
   * there now, unvalidated (at most 3× what it received from it) while a PATH_CHALLENGE goes there.
   * "validated": `address` answered the challenge; what was in flight goes again at once.
   * "reverted": it did not answer within 3 RTOs (at least 1 s); the connection is back at `address`,
   * its last validated address.
   */
  readonly kind: "moved" | "validated" | "reverted";
  /** Where the connection sends now. */
  readonly address: Address;
  /** Where it sent before this change (for "validated", the address before the move). */
  readonly previous: Address;
}

interface Subscription {
  queue: AddressChange[];
  wake: (() => void) | undefined;
}

export class AddressChangeFeed {
  readonly #subscriptions = new Set<Subscription>();
  #ended = false;

  emit(change: AddressChange): void {
    for (const subscription of this.#subscriptions) {
      if (subscription.queue.length >= MAX_QUEUED_ADDRESS_CHANGES) subscription.queue.shift();
      subscription.queue.push(change);
      subscription.wake?.();
    }
  }

  /** The connection ended: every iterator ends once it has yielded what it holds. */
  end(): void {
    this.#ended = true;
    for (const subscription of this.#subscriptions) subscription.wake?.();
  }

  /** Changes from now on (subscribed at the call, not at the first next()). */
  subscribe(signal: AbortSignal | undefined): AsyncGenerator<AddressChange, void, undefined> {
    const subscription: Subscription = { queue: [], wake: undefined };
    this.#subscriptions.add(subscription);
    return this.#changes(subscription, signal);
  }

  async *#changes(subscription: Subscription, signal: AbortSignal | undefined): AsyncGenerator<AddressChange, void, undefined> {
    const abort = () => subscription.wake?.();
    signal?.addEventListener("abort", abort);
    try {
      for (;;) {
        if (signal?.aborted) return;
        const change = subscription.queue.shift();
        if (change !== undefined) yield change;
        else if (this.#ended) return;
        else await new Promise<void>((resolve) => (subscription.wake = resolve));
        subscription.wake = undefined;
      }
    } finally {
      this.#subscriptions.delete(subscription);
      signal?.removeEventListener("abort", abort);
    }
  }
}
