// The sleep/notify wrapper the benchmark puts around ringbuf.js, so that it is compared with Sluice
// on equal terms: the same protocol (flag, re-check, Atomics.waitAsync; notify only a flagged
// sleeper, once per park) and the same one-turn linger before the consumer parks.
export const CONTROL = { SLEEPING: 0, WAKE_SEQ: 1, SPACE_WAITING: 2, SPACE_SEQ: 3, DONE: 4, WORDS: 5 };
const SAFETY_MS = 1000;

export function wakeConsumer(words) {
  if (Atomics.load(words, CONTROL.SLEEPING) === 1 && Atomics.compareExchange(words, CONTROL.SLEEPING, 1, 2) === 1) {
    Atomics.add(words, CONTROL.WAKE_SEQ, 1);
    Atomics.notify(words, CONTROL.WAKE_SEQ);
  }
}

export async function waitForSpace(ring, words, size) {
  while (ring.availableWrite() < size) {
    Atomics.store(words, CONTROL.SPACE_WAITING, 1);
    const seq = Atomics.load(words, CONTROL.SPACE_SEQ);
    if (ring.availableWrite() < size) {
      const wait = Atomics.waitAsync(words, CONTROL.SPACE_SEQ, seq, SAFETY_MS);
      if (wait.async) await wait.value;
    }
    Atomics.store(words, CONTROL.SPACE_WAITING, 0);
  }
}

/** Consumer: receives until the producer is done; answers the number of records. */
export async function consumeAll(ring, words, size, onRecord) {
  const out = new Uint8Array(size);
  let received = 0;
  for (let lingered = false; ; ) {
    let batch = 0;
    while (ring.availableRead() >= size) {
      ring.pop(out);
      onRecord(out);
      batch++;
    }
    if (batch > 0) {
      received += batch;
      lingered = false;
      if (Atomics.load(words, CONTROL.SPACE_WAITING) === 1) {
        Atomics.add(words, CONTROL.SPACE_SEQ, 1);
        Atomics.notify(words, CONTROL.SPACE_SEQ);
      }
      continue;
    }
    if (Atomics.load(words, CONTROL.DONE) === 1 && ring.availableRead() === 0) return received;
    if (!lingered) {
      lingered = true;
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    Atomics.store(words, CONTROL.SLEEPING, 1);
    const seq = Atomics.load(words, CONTROL.WAKE_SEQ);
    if (ring.availableRead() < size && Atomics.load(words, CONTROL.DONE) === 0) {
      const wait = Atomics.waitAsync(words, CONTROL.WAKE_SEQ, seq, SAFETY_MS);
      if (wait.async) await wait.value;
    }
    Atomics.store(words, CONTROL.SLEEPING, 0);
    lingered = false;
  }
}
