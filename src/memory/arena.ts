// An arena: one shared WebAssembly.Memory holding a bounded pool of equal-size frames, from which
// every channel in it takes its packets, rings and control blocks. Its size is fixed at creation,
// so the memory never grows (views never go stale) and the pool is the one bound on shared memory.
// Pages the pool has not touched are not resident: the operating system commits them on first write.
import { AR_FRAME_COUNT, AR_ID, AR_MAGIC, AR_POOL_SEQ, ARENA_MAGIC_VALUE, coreModule, instantiateCore, type CoreExports } from "./core.ts";
import { illegalConstructor, poolExhausted } from "../errors/errors.ts";
import { invalidArgType, invalidArgValue, keysOf, validateInteger, validateKnownKeys, validateObject, validateOneOf } from "../errors/validate.ts";
import { WordWaiter } from "./park.ts";

/** Default arena size: room for ~10,000 idle channels of capacity 2048 plus their traffic. */
export const DEFAULT_ARENA_BYTES = 256 * 1024 * 1024;
/** Default frame size: one 1500-byte datagram (plus its 8-byte header) per frame. */
export const DEFAULT_FRAME_BYTES = 2048;
export const MIN_FRAME_BYTES = 1024;
export const MAX_FRAME_BYTES = 65536;
/** The core addresses memory with i32 offsets: 2 GiB is the ceiling (asconfig maximumMemory). */
export const MAX_ARENA_BYTES = 2 * 1024 * 1024 * 1024 - 65536;
const WASM_PAGE_BYTES = 65536;
const BITMAP_OFFSET = 1024;
/** The frame sizes an arena may have: powers of two from MIN_FRAME_BYTES to MAX_FRAME_BYTES. */
const FRAME_SIZES = Array.from({ length: Math.log2(MAX_FRAME_BYTES / MIN_FRAME_BYTES) + 1 }, (_, i) => MIN_FRAME_BYTES << i);

export interface ArenaOptions {
  /** Total shared memory, in bytes (rounded up to 64 KiB). Default 256 MiB. */
  bytes?: number;
  /** Frame size in bytes, a power of two from 1024 to 65536. A packet must fit one frame less 8 bytes. Default 2048. */
  frameBytes?: number;
}

export interface ArenaStats {
  bytes: number;
  frameBytes: number;
  frames: number;
  /** Frames in the shared free bitmap; up to 64 more per attached thread sit in that thread's cache. */
  freeFrames: number;
  /** Packets accepted but freed unread, because the receiver had closed and left before they arrived. */
  discarded: number;
}

/** The token only this module holds: arenas come from Arena.create(), Arena.attach() and threadDefault(). */
const FROM_ARENA = Symbol("Arena");

// Arenas this thread has created or attached, by id. A handle's arena is attached at most once per thread.
const attached = new Map<number, Arena>();
let threadDefault: Arena | undefined;

export class Arena {
  /** @internal */
  readonly memory: WebAssembly.Memory;
  /** @internal */
  readonly module: WebAssembly.Module;
  /** @internal */
  readonly core: CoreExports;
  /** @internal */
  readonly id: number;
  /** Frame size in bytes: every packet, ring and control block takes whole frames. */
  readonly frameBytes: number;
  /** Byte and word views of the whole arena; valid forever (the memory never grows). @internal */
  readonly bytes: Uint8Array;
  /** @internal */
  readonly words: Int32Array;
  /** Where senders park when the pool is empty. @internal */
  readonly poolWord: WordWaiter;

  /** Not for applications: arenas come from Arena.create() and Arena.threadDefault(). @internal */
  constructor(token: typeof FROM_ARENA, memory: WebAssembly.Memory, module: WebAssembly.Module) {
    if (token !== FROM_ARENA) throw illegalConstructor("arenas come from Arena.create() and Arena.threadDefault()", Arena);
    this.memory = memory;
    this.module = module;
    this.core = instantiateCore(module, memory);
    this.bytes = new Uint8Array(memory.buffer);
    this.words = new Int32Array(memory.buffer);
    this.id = this.words[AR_ID >> 2]!;
    this.core.loadArenaGlobals();
    this.frameBytes = this.core.frameBytes();
    this.poolWord = new WordWaiter(this.words, AR_POOL_SEQ >> 2);
    if (this.core.attachThread() === 0) {
      throw poolExhausted("this thread's frame cache", Arena);
    }
    attached.set(this.id, this);
  }

  /** A new arena. Most programs use the per-thread default arena and never call this. */
  static create(options: ArenaOptions = {}): Arena {
    validateObject(options, "options");
    validateKnownKeys(options, "options", keysOf<ArenaOptions>()("bytes", "frameBytes"));
    const frameBytes = options.frameBytes ?? DEFAULT_FRAME_BYTES;
    validateInteger(frameBytes, "options.frameBytes", MIN_FRAME_BYTES, MAX_FRAME_BYTES);
    validateOneOf(frameBytes, "options.frameBytes", FRAME_SIZES);
    const requested = options.bytes ?? DEFAULT_ARENA_BYTES;
    validateInteger(requested, "options.bytes", 4 * frameBytes + BITMAP_OFFSET + 32 * frameBytes, MAX_ARENA_BYTES);
    const pages = Math.ceil(requested / WASM_PAGE_BYTES);
    const bytes = pages * WASM_PAGE_BYTES;
    // Header (1 KiB), bitmap (one bit per frame), summary (one bit per bitmap word), then frames
    // aligned to the frame size; the frame count is a multiple of 32 so the bitmap is whole words.
    const roughFrames = Math.floor(bytes / frameBytes);
    const bitmapBytes = Math.ceil(roughFrames / 32) * 4;
    const summaryOffset = BITMAP_OFFSET + bitmapBytes;
    const summaryBytes = Math.ceil(roughFrames / 1024) * 4;
    const poolBase = Math.ceil((summaryOffset + summaryBytes) / frameBytes) * frameBytes;
    const frames = Math.floor((bytes - poolBase) / frameBytes / 32) * 32;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const module = coreModule();
    const id = (crypto.getRandomValues(new Uint32Array(1))[0]! | 1) >>> 0;
    instantiateCore(module, memory).initArena(id, Math.log2(frameBytes), frames, poolBase, summaryOffset);
    return new Arena(FROM_ARENA, memory, module);
  }

  /** The arena a handle lives in, attached to this thread on first use. @internal */
  static attach(memory: unknown, module: unknown): Arena {
    if (!(memory instanceof WebAssembly.Memory) || !(memory.buffer instanceof SharedArrayBuffer)) {
      throw invalidArgType("handle.memory", "a shared WebAssembly.Memory", memory);
    }
    if (!(module instanceof WebAssembly.Module)) throw invalidArgType("handle.module", "an instance of WebAssembly.Module", module);
    // The header's magic and id are read before any instance exists.
    const words = new Int32Array(memory.buffer, 0, 2);
    if (words[AR_MAGIC >> 2] !== ARENA_MAGIC_VALUE) throw invalidArgValue("handle.memory", memory, "is not a Sluice arena");
    const known = attached.get(words[AR_ID >> 2]!);
    if (known) return known;
    const arena = new Arena(FROM_ARENA, memory, module);
    threadDefault ??= arena;
    return arena;
  }

  /** This thread's default arena: the first one it created or attached, else a new default-sized one. */
  static threadDefault(): Arena {
    threadDefault ??= Arena.create();
    return threadDefault;
  }

  stats(): ArenaStats {
    return {
      bytes: this.memory.buffer.byteLength,
      frameBytes: this.frameBytes,
      frames: this.words[AR_FRAME_COUNT >> 2]!,
      freeFrames: this.core.freeFrameCount(),
      discarded: this.core.discardedCount(),
    };
  }

  /**
   * This thread stops tracking the arena, so the memory can be collected once nothing else holds it.
   * For an arena that never left this thread (a transport's own); handles into it stop resolving here.
   */
  forget(): void {
    if (attached.get(this.id) === this) attached.delete(this.id);
    if (threadDefault === this) threadDefault = undefined;
  }

  /**
   * Makes the arena's queues share their packet frames (assembly/lane.ts, admit): every lane may always
   * hold `reservePackets` packets; beyond that it takes a frame only while more than `guardFrames`,
   * less the control frames of the channels open, are free. Before any channel exists. @internal
   */
  reserveQueues(reservePackets: number, guardFrames: number): void {
    this.core.reserveQueues(reservePackets, guardFrames);
  }

  /** Returns this thread's cached free frames to the shared pool (exact accounting in tests; a thread about to end). */
  flushThreadCache(): void {
    this.core.flushCache();
  }
}
