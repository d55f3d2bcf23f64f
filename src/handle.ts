// Handles: plain structured-cloneable objects that carry one end of a channel to ONE other thread
// (Node worker_threads, Deno Web Workers). The memory and the compiled module travel with them, so
// the receiving thread never re-compiles or re-reads the wasm.
import { Arena } from "./arena.ts";

const HANDLE_VERSION = 1;

interface HandleBase {
  readonly version: number;
  readonly memory: WebAssembly.Memory;
  readonly module: WebAssembly.Module;
  readonly channel: number;
  readonly nonce: number;
  readonly maxPacketSize: number;
}

export interface SenderHandle extends HandleBase {
  readonly sluice: "sender";
  /** Offset of the lane made for this handle. */
  readonly lane: number;
}

export interface ReceiverHandle extends HandleBase {
  readonly sluice: "receiver";
  /** One-time token: the first fromHandle() claims it. */
  readonly token: number;
}

export function handleFields(arena: Arena, channel: number, nonce: number, maxPacketSize: number): HandleBase {
  return { version: HANDLE_VERSION, memory: arena.memory, module: arena.module, channel, nonce, maxPacketSize };
}

function isOffset(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value > 0 && value % 4 === 0;
}

/**
 * Checks the shape of a handle and that its channel still exists, and attaches its arena. The claim
 * itself (one compare-and-swap) is the caller's.
 */
export function openHandle(handle: unknown, kind: "sender" | "receiver"): { arena: Arena; fields: HandleBase } {
  const what = `Sluice ${kind} handle`;
  if (typeof handle !== "object" || handle === null) throw new TypeError(`expected a ${what}, got ${handle === null ? "null" : typeof handle}`);
  const h = handle as { [K in keyof HandleBase]?: unknown } & { sluice?: unknown };
  if (h.sluice !== kind) throw new TypeError(`expected a ${what}, got an object whose sluice field is ${JSON.stringify(h.sluice)}`);
  if (h.version !== HANDLE_VERSION) throw new TypeError(`${what} has version ${String(h.version)}; this Sluice reads version ${HANDLE_VERSION}`);
  if (!isOffset(h.channel) || typeof h.nonce !== "number" || typeof h.maxPacketSize !== "number" || !Number.isInteger(h.maxPacketSize)) {
    throw new TypeError(`${what} is malformed (channel, nonce or maxPacketSize missing or not integers)`);
  }
  const arena = Arena.attach(h.memory, h.module);
  const inArena = h.channel % arena.frameBytes === 0 && h.channel + arena.frameBytes <= arena.memory.buffer.byteLength;
  if (!inArena || arena.core.nonceOf(h.channel) !== h.nonce) {
    throw new TypeError(`${what} does not name a live channel (it is closed, or the handle is from another arena)`);
  }
  return { arena, fields: handle as HandleBase };
}
