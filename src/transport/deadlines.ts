// One timer structure per transport: every connection's next deadline in one indexed binary min-heap
// (sans-IO: Deadlines takes `now`), behind one host timer (DeadlineTimer). A host timer per
// connection cost a Timeout object per re-arm (garbage), and its re-arms only ever moved earlier, so
// a deadline pushed later (every packet heard pushes the keep-alive) still woke the connection at the
// old one, for nothing. Here a re-arm moves the entry either way, in O(log n) and without garbage,
// and the host timer is re-armed only when the earliest deadline of all moves earlier.

/** One connection's place in the heap. */
export class Deadline {
  /** When it is due (performance.now() milliseconds); Infinity while not scheduled. */
  at = Infinity;
  /** Its index in the heap, or -1. @internal */
  index = -1;

  constructor(readonly fire: (now: number) => void) {}
}

export class Deadlines {
  readonly #heap: Deadline[] = [];

  get size(): number {
    return this.#heap.length;
  }

  /** The earliest deadline scheduled, or Infinity. */
  next(): number {
    return this.#heap.length === 0 ? Infinity : this.#heap[0]!.at;
  }

  /** Schedules `deadline` at `at` (earlier or later than before); Infinity cancels it. */
  schedule(deadline: Deadline, at: number): void {
    if (at === Infinity) return this.cancel(deadline);
    const heap = this.#heap;
    if (deadline.index < 0) {
      deadline.at = at;
      deadline.index = heap.length;
      heap.push(deadline);
      this.#up(deadline.index);
      return;
    }
    const earlier = at < deadline.at;
    deadline.at = at;
    if (earlier) this.#up(deadline.index);
    else this.#down(deadline.index);
  }

  cancel(deadline: Deadline): void {
    const index = deadline.index;
    if (index < 0) return;
    const heap = this.#heap;
    const last = heap.pop()!;
    deadline.index = -1;
    deadline.at = Infinity;
    if (last === deadline) return;
    heap[index] = last;
    last.index = index;
    this.#up(index);
    this.#down(last.index);
  }

  /**
   * Fires every deadline due at `now`, earliest first, each taken out of the heap before it fires (it
   * may schedule itself again). Bounded: a deadline scheduled again at or before `now` waits for the
   * next call, so no callback can keep this loop going.
   */
  fireDue(now: number): void {
    const heap = this.#heap;
    for (let budget = heap.length; budget > 0 && heap.length > 0 && heap[0]!.at <= now; budget--) {
      const due = heap[0]!;
      this.cancel(due);
      due.fire(now);
    }
  }

  #up(index: number): void {
    const heap = this.#heap;
    const item = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.at <= item.at) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = item;
    item.index = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const length = heap.length;
    const item = heap[index]!;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1]!.at < heap[child]!.at) child++;
      const smaller = heap[child]!;
      if (smaller.at >= item.at) break;
      heap[index] = smaller;
      smaller.index = index;
      index = child;
    }
    heap[index] = item;
    item.index = index;
  }
}

/** The most datagrams libuv reads from one socket per turn of the event loop (uv__udp_io's batch). */
const DATAGRAMS_PER_READ = 32;
/** A host timer expiring this late (ms) says the event loop was blocked: a backlog may wait in the socket. */
const STALL_MS = 20;
/** Turns the firing waits at most for a backlog to be read after a stall (64 × 32 = 2,048 datagrams). */
const MAX_BACKLOG_TURNS = 64;

/**
 * Deadlines driven by one host timer, armed at the earliest deadline (unref'd: the socket keeps the
 * process alive while the transport is open, a timer must not on its own).
 *
 * The timer only schedules the firing: the deadlines fire at the end of that turn of the event loop
 * (setImmediate), after it has read the datagrams waiting in the socket. Node runs due timers before
 * it polls for I/O, so after a stall (a long synchronous task, a full garbage collection) loss timers
 * fired ahead of the acknowledgements that had arrived in time and waited in the socket: a spurious
 * retransmission timeout (window collapsed, timeout doubled) on every connection with a packet in
 * flight (test/stalled-loop.test.ts: a 600 ms block while the peer answers cost one; now none).
 * The cost: one setImmediate per expiry, and the deadlines fire after that turn's I/O.
 *
 * libuv reads at most DATAGRAMS_PER_READ datagrams from a socket per turn. After a stall (the timer
 * fired STALL_MS late or more), while a turn read that many the firing waits one more turn, at most
 * MAX_BACKLOG_TURNS: a gateway's backlog of acknowledgements is read before its loss timers fire (96
 * connections' answers behind a 600 ms block: 48-63 spurious timeouts with one turn, none now). Without
 * a stall the deadlines fire after one turn even under a flood, so pacing and ACK timers stay on time.
 */
export class DeadlineTimer extends Deadlines {
  readonly #now: () => number;
  /** Datagrams the transport's socket delivered so far (a running count). */
  readonly #datagramsReceived: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  /** Whether a #fire is scheduled (setImmediate). */
  #firePending = false;
  /** Whether the host timer expired STALL_MS or more after its time. */
  #late = false;
  /** The datagram count when the last turn began (for how many that turn read). */
  #receivedBefore = 0;
  #backlogTurns = 0;

  constructor(now: () => number, datagramsReceived: () => number) {
    super();
    this.#now = now;
    this.#datagramsReceived = datagramsReceived;
  }

  override schedule(deadline: Deadline, at: number): void {
    super.schedule(deadline, at);
    if (at < this.#timerAt) this.#arm();
  }

  /** The host timer stops; deadlines stay scheduled but fire no more (the transport closed). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = -Infinity; // never armed again
  }

  #arm(): void {
    const at = this.next();
    clearTimeout(this.#timer);
    this.#timerAt = at;
    if (at === Infinity) {
      this.#timer = undefined;
      return;
    }
    this.#timer = setTimeout(this.#expired, Math.max(0, Math.ceil(at - this.#now())));
    (this.#timer as { unref?: () => void }).unref?.();
  }

  readonly #expired = (): void => {
    this.#timer = undefined;
    if (this.#firePending) return;
    this.#firePending = true;
    this.#late = this.#now() - this.#timerAt >= STALL_MS;
    this.#receivedBefore = this.#datagramsReceived();
    this.#backlogTurns = 0;
    setImmediate(this.#fire);
  };

  readonly #fire = (): void => {
    if (this.#timerAt === -Infinity) return; // stopped meanwhile
    const received = this.#datagramsReceived();
    if (this.#late && received - this.#receivedBefore >= DATAGRAMS_PER_READ && this.#backlogTurns < MAX_BACKLOG_TURNS) {
      this.#receivedBefore = received;
      this.#backlogTurns++;
      setImmediate(this.#fire); // the next turn reads on first
      return;
    }
    this.#firePending = false;
    this.#timerAt = Infinity;
    this.fireDue(this.#now());
    if (this.#timerAt === Infinity) this.#arm(); // unless a callback armed it meanwhile
  };
}
