// Real worker threads for the tests: each runs a bundled script from test/workers/ (see
// bundle-workers.ts) and answers "ready" once its message listener is attached.
import { Worker } from "node:worker_threads";

export async function startWorker(name: string): Promise<Worker> {
  const worker = new Worker(new URL(`../../.test-build/${name}.mjs`, import.meta.url));
  await new Promise<void>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("message", (message) => (message === "ready" ? resolve() : reject(new Error(`unexpected ${String(message)}`))));
  });
  return worker;
}

/** Posts one request (unless undefined) and resolves with the worker's next message. */
export function ask<T>(worker: Worker, request: unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("message", resolve);
    if (request !== undefined) worker.postMessage(request);
  });
}

/** Decodes the 8-byte test packet [sender id, sequence]. */
export function decode(packet: Uint8Array): { id: number; seq: number } {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return { id: view.getUint32(0, true), seq: view.getUint32(4, true) };
}
