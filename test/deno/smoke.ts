// Deno smoke test, run by test/deno.test.ts as `deno run --allow-read test/deno/smoke.ts`. The package
// is imported by its name, as a Deno user would. Prints one JSON line of results.
import { channel } from "sluice";

const results: Record<string, unknown> = {};

// Same thread: round trip, full, end of stream.
{
  const [tx, rx] = channel(2);
  results.sameThread = [tx.trySend(new Uint8Array([1])), tx.trySend(new Uint8Array([2])), tx.trySend(new Uint8Array([3]))];
  tx.close();
  const got: number[] = [];
  for await (const packet of rx) got.push(packet[0]!);
  results.sameThreadReceived = got;
}

// A Web Worker producer: 20,000 ordered packets through a channel of capacity 64, the receiver
// parked on Atomics.waitAsync whenever it catches up.
{
  const [tx, rx] = channel(64);
  const worker = new Worker(new URL("./producer-worker.ts", import.meta.url), { type: "module" });
  worker.postMessage({ handle: tx.toHandle(), count: 20_000, delayMs: 100 });
  tx.close();
  let next = 0;
  let ordered = true;
  for await (const packet of rx) {
    const value = new DataView(packet.buffer, packet.byteOffset, packet.byteLength).getUint32(0, true);
    if (value !== next) ordered = false;
    next++;
  }
  results.workerReceived = next;
  results.workerOrdered = ordered;
  worker.terminate();
}

// A parked receiver holds the process open: the only waker is an unref'd timer, so without the
// receiver's keep-alive Deno would exit here before printing anything.
{
  const [tx, rx] = channel(1);
  setTimeout(() => tx.trySend(new Uint8Array([9])), 300).unref(); // Deno 2's timers have unref(), as Node's
  results.keptAlive = (await rx.recv())?.[0];
}

console.log(JSON.stringify(results));
