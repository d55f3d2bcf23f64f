// Same thread, 1200-byte packets: a producer loop fills a batch, a consumer drains it, repeatedly.
// Each consumer reads every packet's first byte (work no implementation can skip).
import { RingBuffer } from "ringbuf.js";
import { channel } from "sluice";

export const PACKET_BYTES = 1200;
const BATCH = 64;
/** Rounds a packet count to whole batches, so every contender moves exactly the same number. */
const whole = (total) => Math.ceil(total / BATCH) * BATCH;

function packet() {
  return new Uint8Array(PACKET_BYTES).fill(1);
}

/** Sluice, batch path: trySend copies in; drain hands a view (no copy out, no allocation). */
export function sluiceSameThread(requested) {
  const total = whole(requested);
  const [tx, rx] = channel(BATCH);
  const p = packet();
  let checksum = 0;
  const visit = (bytes, offset) => {
    checksum += bytes[offset];
  };
  const started = performance.now();
  for (let sent = 0; sent < total; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) tx.trySend(p);
    rx.drain(visit);
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum !== total) throw new Error("sluice lost packets");
  return total / seconds;
}

/** A plain JS array queue of copied Uint8Arrays (the copy gives the receiver its own bytes). */
export function arraySameThread(requested) {
  const total = whole(requested);
  const queue = [];
  const p = packet();
  let checksum = 0;
  const started = performance.now();
  for (let sent = 0; sent < total; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) queue.push(p.slice());
    for (let head = 0; head < queue.length; head++) checksum += queue[head][0];
    queue.length = 0;
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum !== total) throw new Error("array lost packets");
  return total / seconds;
}

/** ringbuf.js: a byte ring in a SharedArrayBuffer; fixed-size records copied in and out. */
export function ringbufSameThread(requested) {
  const total = whole(requested);
  const ring = new RingBuffer(RingBuffer.getStorageForCapacity(BATCH * PACKET_BYTES, Uint8Array), Uint8Array);
  const p = packet();
  const out = new Uint8Array(PACKET_BYTES);
  let checksum = 0;
  const started = performance.now();
  for (let sent = 0; sent < total; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) ring.push(p);
    for (let i = 0; i < BATCH; i++) {
      ring.pop(out);
      checksum += out[0];
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum !== total) throw new Error("ringbuf lost packets");
  return total / seconds;
}
