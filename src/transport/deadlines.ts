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

/** A look this long (ms) after the host timer's time, or after the last look, says the event loop was blocked. */
const STALL_MS = 20;
/** Turns the firing waits at most for the socket's backlog after a stall (libuv reads 32 datagrams per socket per turn). */
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
 * After a stall (the host timer STALL_MS late, or a block between its expiry and the firing) the
 * firing waits one more turn while the last turn read any datagram, at most MAX_BACKLOG_TURNS:
 * libuv reads 32 datagrams per socket per turn, and a connection's second and later datagrams of a
 * turn are opened by its drain, which runs after the firing in that turn. A gateway whose 96 peers
 * all answered during a 600 ms block took 48-63 spurious timeouts with a one-turn wait; none now.
 * Without a stall the deadlines fire after one turn even under a flood, so pacing and ACK timers
 * stay on time.
 */
export class DeadlineTimer extends Deadlines {
  readonly #now: () => number;
  /** Datagrams the transport's socket delivered so far (a running count). */
  readonly #datagramsReceived: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline the host timer is armed for (Infinity: none; -Infinity: stopped). */
  #timerAt = Infinity;
  /** When the host timer is due to go off: later than #timerAt when that deadline was already past. */
  #hostDueAt = 0;
  /** Whether a #fire is scheduled (setImmediate). */
  #firePending = false;
  /** When the expiry or the last #fire looked: a gap of STALL_MS since then is a block. */
  #lookedAt = 0;
  /** Whether a stall was seen since the expiry: the backlog is read first. */
  #stalled = false;
  /** The datagram count at the last look (what the turn since then read). */
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
    const now = this.#now();
    const delayMs = Math.max(0, Math.ceil(at - now));
    this.#hostDueAt = now + delayMs;
    this.#timer = setTimeout(this.#expired, delayMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  readonly #expired = (): void => {
    this.#timer = undefined;
    if (this.#firePending) return;
    this.#firePending = true;
    const now = this.#now();
    this.#stalled = now - this.#hostDueAt >= STALL_MS;
    this.#lookedAt = now;
    this.#receivedBefore = this.#datagramsReceived();
    this.#backlogTurns = 0;
    setImmediate(this.#fire);
  };

  readonly #fire = (): void => {
    if (this.#timerAt === -Infinity) return; // stopped meanwhile
    const now = this.#now();
    const received = this.#datagramsReceived();
    const blocked = now - this.#lookedAt >= STALL_MS; // no turn's I/O may have run since the last look
    this.#lookedAt = now;
    if (blocked) this.#stalled = true;
    if (this.#stalled && (blocked || received !== this.#receivedBefore) && this.#backlogTurns < MAX_BACKLOG_TURNS) {
      this.#receivedBefore = received;
      this.#backlogTurns++;
      setImmediate(this.#fire); // the next turn reads (and opens) on first
      return;
    }
    this.#firePending = false;
    this.#timerAt = Infinity;
    this.fireDue(now);
    if (this.#timerAt === Infinity) this.#arm(); // unless a callback armed it meanwhile
  };
}
