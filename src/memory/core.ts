// The compiled WebAssembly core and the typed shape of its exports. The module is compiled once per
// thread that needs it (or received ready-compiled inside a handle) and instantiated once per arena.
import coreBase64 from "../../build/core-wasm.js";

/** Exports of assembly/index.ts. Offsets and counts are i32 on this side; see docs/ring.md. */
export interface CoreExports {
  attachThread(): number;
  allocFrame(): number;
  flushCache(): void;
  freeFrame(frame: number): void;
  freeFrameCount(): number;
  frameBytes(): number;
  initArena(id: number, frameShift: number, frameCount: number, poolBase: number, summary: number): void;
  loadArenaGlobals(): void;
  preparePoolWait(): number;
  endPoolWait(): void;

  reserve(lane: number): number;
  commit(lane: number, frame: number, length: number): number;
  handOver(lane: number, frame: number, length: number): number;
  publish(lane: number): number;
  prepareSpaceWait(lane: number): number;
  endSpaceWait(lane: number): void;
  hasSpace(lane: number): number;
  available(lane: number, wanted: number): number;
  peekFrame(lane: number, ahead: number): number;
  release(lane: number, count: number): number;
  notifySpace(lane: number): void;

  createChannel(capacity: number, lanes: number, nonce: number): number;
  addLane(channel: number): number;
  claimLane(lane: number): number;
  hasLane(channel: number, lane: number): number;
  laneOf(channel: number, index: number): number;
  lanesOf(channel: number): number;
  nonceOf(channel: number): number;
  capacityOf(channel: number): number;
  closeLane(lane: number): number;
  closeReceiver(channel: number): void;
  leaveReceiver(channel: number): number;
  isReceiverClosed(channel: number): number;
  discardedCount(): number;
  channelState(channel: number): number;
  prepareSleep(channel: number): number;
  endSleep(channel: number): void;
  notifyReceiver(channel: number): void;
  offerReceiver(channel: number, token: number): void;
  claimReceiver(channel: number, token: number): number;
  maxCapacity(): number;
  maxLanes(): number;
  laneSent(lane: number): number;
  laneFull(lane: number): number;
  lanePoolEmpty(lane: number): number;
  laneClosedRefused(lane: number): number;
  laneReceived(lane: number): number;
  laneQueued(lane: number): number;

  wireParse(at: number, length: number): number;
  wireConnection(at: number): number;
  wirePacketNumberLow(at: number): number;
  wirePacketNumberHigh(at: number): number;
  wireWriteIntroHeader(at: number): void;
  wireWriteResponseHeader(at: number, connection: number): void;
  wireWriteDataHeader(at: number, connection: number, packetNumberLow: number, packetNumberHigh: number): void;

  aeadSeal(key: number, nonce: number, aad: number, aadLength: number, text: number, textLength: number, tag: number, scratch: number): void;
  aeadOpen(key: number, nonce: number, aad: number, aadLength: number, text: number, textLength: number, tag: number, scratch: number): number;
  AEAD_SCRATCH_BYTES: WebAssembly.Global;

  AR_MAGIC: WebAssembly.Global;
  AR_ID: WebAssembly.Global;
  AR_POOL_SEQ: WebAssembly.Global;
  ARENA_MAGIC_VALUE: WebAssembly.Global;
  AR_FRAME_COUNT: WebAssembly.Global;
  CH_WAKE_SEQ: WebAssembly.Global;
  LN_SPACE_SEQ: WebAssembly.Global;
  FRAME_DATA: WebAssembly.Global;
}

// Mirrors of assembly/layout.ts (test/core.test.ts checks they match the module's exports). The
// arena magic sits at byte 0 and the arena id at byte 4, read before any instance exists.
export const ARENA_MAGIC = 0x534c4331;
/** Where a packet's bytes start in its frame (the length word is at 0). */
export const FRAME_DATA = 8;
// Mirrors of assembly/layout.ts return codes (plain numbers: they are compared on the hot path).
export const RESERVE_FULL = -1;
export const RESERVE_CLOSED = -2;
export const RESERVE_POOL_EMPTY = -3;
export const STATE_READY = 0;
export const STATE_EMPTY = 1;
export const STATE_ENDED = 2;

let compiled: WebAssembly.Module | undefined;

/** The core module, compiled on first use in this thread (~4 KB: synchronous compile is fine). */
export function coreModule(): WebAssembly.Module {
  if (!compiled) {
    const binary = atob(coreBase64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

export function instantiateCore(module: WebAssembly.Module, memory: WebAssembly.Memory): CoreExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as CoreExports;
}
