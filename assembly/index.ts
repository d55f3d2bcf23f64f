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
// Constants the host needs: scripts/build.mjs reads every exported global once and writes them to
// build/core-constants.js, so the host copies none of them by hand.
// Layout: the offsets the host waits on (Atomics.waitAsync) or reads, the frame layout it copies
// through, and the answers of reserve() and channelState().
export {
  AR_FRAME_COUNT, AR_ID, AR_MAGIC, AR_POOL_SEQ, ARENA_MAGIC_VALUE, CH_WAKE_SEQ, FRAME_DATA, FRAME_LENGTH, LN_SPACE_SEQ,
  RESERVE_CLOSED, RESERVE_FULL, RESERVE_POOL_EMPTY, STATE_EMPTY, STATE_ENDED, STATE_READY,
} from "./layout";
// Datagram framing (docs/wire.md): kinds, sizes, field offsets and wireParse's refusals.
export {
  wireConnection, wirePacketNumberHigh, wirePacketNumberLow, wireParse, wireWriteDataHeader,
  wireWriteIntroHeader, wireWriteResponseHeader,
  DATA_CONNECTION, DATA_HEADER_BYTES, DATA_MIN_BYTES, DATA_PACKET_NUMBER, INTRO_BODY_BYTES, INTRO_BYTES, INTRO_EPHEMERAL,
  INTRO_SEALED, KEY_BYTES, KIND_DATA, KIND_INTRO, KIND_RESPONSE, MAX_DATAGRAM_BYTES, RESPONSE_BODY_BYTES, RESPONSE_BYTES,
  RESPONSE_CONNECTION, RESPONSE_EPHEMERAL, RESPONSE_SEALED, TAG_BYTES, WIRE_BAD_CONNECTION, WIRE_BAD_LENGTH,
  WIRE_BAD_PACKET_NUMBER, WIRE_EMPTY, WIRE_OVERSIZE, WIRE_UNKNOWN_KIND, WIRE_UNKNOWN_VERSION, WIRE_VERSION,
} from "./wire";
// The AEAD of data packets (ChaCha20-Poly1305, RFC 8439), in place on shared memory.
export { aeadOpen, aeadSeal, AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_SCRATCH_BYTES, AEAD_TAG_BYTES } from "./aead";
