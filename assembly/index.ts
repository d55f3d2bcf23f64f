// Sluice's WebAssembly core. Pure: no I/O, no clock, no allocation, no static data (so a second
// instantiation in another thread rewrites nothing in the shared memory). Every export takes and
// answers i32/u32 (or f64 for counters), so no call allocates on the JS side.
export {
  attachThread, allocFrame, flushCache, freeFrame, freeFrameCount, frameBytes, initArena,
  loadArenaGlobals, endPoolWait, preparePoolWait,
} from "./pool";
export {
  available, commit, endSpaceWait, handOver, hasSpace, notifySpace, peekFrame, prepareSpaceWait,
  publish, release, reserve,
} from "./lane";
export {
  addLane, capacityOf, channelState, claimLane, claimReceiver, closeLane, closeReceiver,
  createChannel, discardedCount, endSleep, hasLane, isReceiverClosed, laneClosedRefused, laneFull, laneOf, lanePoolEmpty,
  laneQueued, laneReceived, lanesOf, laneSent, leaveReceiver, maxCapacity, maxLanes, nonceOf,
  notifyReceiver, offerReceiver, prepareSleep,
} from "./channel";
// Offsets the host needs for Atomics.waitAsync, and the frame layout it copies through.
export {
  AR_FRAME_COUNT, AR_ID, AR_MAGIC, AR_POOL_SEQ, ARENA_MAGIC_VALUE, CH_WAKE_SEQ,
  FRAME_DATA, FRAME_LENGTH, LN_SPACE_SEQ,
} from "./layout";
// Datagram framing (docs/wire.md).
export {
  wireConnection, wirePacketNumberHigh, wirePacketNumberLow, wireParse, wireWriteDataHeader,
  wireWriteIntroHeader, wireWriteResponseHeader, INTRO_BYTES, RESPONSE_BYTES, DATA_HEADER_BYTES, DATA_MIN_BYTES,
  MAX_DATAGRAM_BYTES, WIRE_VERSION,
} from "./wire";
// The AEAD of data packets (ChaCha20-Poly1305, RFC 8439), in place on shared memory.
export { aeadOpen, aeadSeal, AEAD_SCRATCH_BYTES, AEAD_TAG_BYTES } from "./aead";
