// Sluice's WebAssembly core. Pure: no I/O, no clock, no allocation, no static data (so a second
// instantiation in another thread rewrites nothing in the shared memory). Every export takes and
// answers i32/u32 (or f64 for counters), so no call allocates on the JS side.
export {
  attachThread, allocFrame, flushCache, freeFrame, freeFrameCount, frameBytes, initArena,
  loadArenaGlobals, endPoolWait, preparePoolWait, reserveQueues,
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
  wireConnection, wireKeyPhase, wirePacketNumberHigh, wirePacketNumberLow, wireParse, wireWriteDataHeader,
  COOKIE_BYTES, COOKIE_NONCE, COOKIE_SEALED, DATA_CONNECTION, DATA_HEADER_BYTES, DATA_MIN_BYTES, DATA_PACKET_NUMBER,
  HANDSHAKE_CONNECTION, INTRO_BYTES, INTRO_EPHEMERAL, INTRO_MAC1, INTRO_MAC2, INTRO_PAYLOAD, INTRO_PAYLOAD_BYTES,
  INTRO_STATIC, KEY_BYTES, KEY_PHASE_BIT, KIND_COOKIE, KIND_DATA, KIND_INTRO, KIND_RELAY, KIND_RESPONSE, MAC_BYTES,
  MAX_DATAGRAM_BYTES, RELAY_HEADER_BYTES, RESPONSE_BYTES, RESPONSE_EPHEMERAL, RESPONSE_MAC1, RESPONSE_MAC2, RESPONSE_PAYLOAD, RESPONSE_PAYLOAD_BYTES, TAG_BYTES,
  WIRE_BAD_CONNECTION, WIRE_BAD_LENGTH, WIRE_BAD_PACKET_NUMBER, WIRE_EMPTY, WIRE_OVERSIZE, WIRE_UNKNOWN_KIND,
  WIRE_UNKNOWN_VERSION, WIRE_VERSION,
} from "./wire";
// The AEAD of data packets (ChaCha20-Poly1305, RFC 8439), in place on shared memory.
export { aeadOpen, aeadSeal, AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_SCRATCH_BYTES, AEAD_TAG_BYTES } from "./aead";
// BLAKE2s (RFC 7693), keyed or not: the handshake's hash, HMAC and MACs, and the cookies.
export { blake2s, blake2sKeyState, blake2sWithState, BLAKE2S_MAX_BYTES, BLAKE2S_SCRATCH_BYTES } from "./blake2s";
