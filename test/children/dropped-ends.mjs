// Child process for test/lifetimes.test.ts (run with --expose-gc): ends dropped without close() are
// closed by the garbage collector, as tokio closes them on drop. Prints one JSON line.
import { Arena, channel } from "sluice";

const collect = async () => {
  for (let i = 0; i < 5; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 10)); // finalizers run in a later task
  }
};
const arena = Arena.create({ bytes: 1 << 20, frameBytes: 1024 });
const results = {};

// A dropped sender: the receiver sees the end of the stream after the queued packet.
{
  const [tx, rx] = channel(4, { arena, maxPacketSize: 16 });
  tx.clone().trySend(new Uint8Array([5])); // the clone is dropped at once
  tx.close();
  await collect();
  results.senderDropped = [(await rx.recv())?.[0], await rx.recv()];
}

// A dropped receiver: senders see 'closed' and every frame comes back.
{
  arena.flushThreadCache();
  const before = arena.stats().freeFrames;
  let [tx, rx] = channel(4, { arena, maxPacketSize: 16 });
  tx.trySend(new Uint8Array([1]));
  rx = undefined;
  await collect();
  results.receiverDropped = tx.trySend(new Uint8Array([2]));
  tx.close();
  arena.flushThreadCache();
  results.framesBack = arena.stats().freeFrames === before;
}
console.log(JSON.stringify(results));
