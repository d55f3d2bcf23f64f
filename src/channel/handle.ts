// Handles: plain structured-cloneable objects that carry one end of a channel to ONE other thread
// (Node worker_threads, Deno Web Workers). The memory and the compiled module travel with them, so
// the receiving thread never re-compiles or re-reads the wasm.
import { invalidArgValue, validateInteger, validateObject, validateOneOf } from "../errors/validate.ts";
import { Arena } from "../memory/arena.ts";
import { FRAME_DATA } from "../memory/core.ts";

const HANDLE_VERSION = 1;

// A handle is opaque to applications: only `sluice`, `version` and `maxPacketSize` are declared in
// the published types; the rest is how the receiving thread finds the channel.
interface HandleBase {
  readonly version: number;
  /** @internal */
  readonly memory: WebAssembly.Memory;
  /** @internal */
  readonly module: WebAssembly.Module;
  /** @internal */
  readonly channel: number;
  /** @internal */
  readonly nonce: number;
  readonly maxPacketSize: number;
}

/** One end of a channel's sending side, for one other thread: postMessage it, then Sender.fromHandle(). */
export interface SenderHandle extends HandleBase {
  readonly sluice: "sender";
  /** Offset of the lane made for this handle. @internal */
  readonly lane: number;
}

/** A channel's receiving end, moving to another thread: postMessage it, then Receiver.fromHandle(). */
export interface ReceiverHandle extends HandleBase {
  readonly sluice: "receiver";
  /** One-time token: the first fromHandle() claims it. @internal */
  readonly token: number;
}

export function handleFields(arena: Arena, channel: number, nonce: number, maxPacketSize: number): HandleBase {
  return { version: HANDLE_VERSION, memory: arena.memory, module: arena.module, channel, nonce, maxPacketSize };
}

/**
 * Checks the shape of a handle and that its channel still exists, and attaches its arena. The claim
 * itself (one compare-and-swap) is the caller's.
 */
export function openHandle(handle: unknown, kind: "sender" | "receiver"): { arena: Arena; fields: HandleBase } {
  validateObject(handle, "handle");
  const h = handle as { [K in keyof HandleBase]?: unknown } & { sluice?: unknown };
  validateOneOf(h.sluice, "handle.sluice", [kind]);
  validateOneOf(h.version, "handle.version", [HANDLE_VERSION]);
  validateInteger(h.channel, "handle.channel", 1, 2 ** 32 - 1);
  validateInteger(h.nonce, "handle.nonce", 0, 2 ** 32 - 1);
  const arena = Arena.attach(h.memory, h.module);
  // A packet is copied into one frame: a larger limit would let a send write past it.
  validateInteger(h.maxPacketSize, "handle.maxPacketSize", 0, arena.frameBytes - FRAME_DATA);
  const live = h.channel % arena.frameBytes === 0 && h.channel + arena.frameBytes <= arena.memory.buffer.byteLength
    && arena.core.nonceOf(h.channel) === h.nonce;
  if (!live) throw invalidArgValue("handle.channel", h.channel, "does not name a live channel (it is closed, or the handle is from another arena)");
  return { arena, fields: handle as HandleBase };
}
