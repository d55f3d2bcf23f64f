// Byte offsets of every shared word in the arena. docs/ring.md is the long form; this file is the
// single source of truth (the host reads the few it needs through exported globals, see index.ts).
//
// Owner legend: P = the lane's producer thread writes it, C = the channel's consumer thread writes it,
// I = written once at initialisation and read-only afterwards, A = any thread (atomic read-modify-write).

// ---- Arena header, at offset 0 (the module has no static data, so nothing else lives here) ----
export const ARENA_MAGIC_VALUE: u32 = 0x53_4c_43_31; // "SLC1"
export const AR_MAGIC: u32 = 0; //        I  ARENA_MAGIC_VALUE once initialised
export const AR_ID: u32 = 4; //           I  random 32-bit id, lets a thread tell arenas apart
export const AR_FRAME_SHIFT: u32 = 8; //  I  log2(frame size in bytes)
export const AR_FRAME_COUNT: u32 = 12; // I  frames in the pool (a multiple of 32)
export const AR_POOL_BASE: u32 = 16; //   I  byte offset of frame 0
export const AR_SUMMARY: u32 = 20; //     I  byte offset of the summary: bit w set = bitmap word w may have free frames
// Contended line: touched once per batch of 32 frames, never per packet.
export const AR_FREE_COUNT: u32 = 128; // A  frames whose bit is set in the bitmap (a hint: may lag by a batch)
// Pool waiters line: only senders parked on an exhausted pool and the threads that free frames touch it.
export const AR_POOL_WAITERS: u32 = 256; // A number of senders parked waiting for a free frame
export const AR_POOL_SEQ: u32 = 260; //    A bumped (then notified) when frames are freed while someone waits
// Accounting line
export const AR_DISCARDED: u32 = 384; //   A  packets accepted but freed unread: the receiver had closed and left
// Queue reserves line (an arena whose queues share their packet frames: a transport's). 0 = no reserve
// rule: every lane may fill to its capacity from the pool. Otherwise a lane holding AR_QUEUE_RESERVE
// packets or more takes another only while more than AR_SHARED_GUARD − AR_CONTROL_FRAMES frames are
// free: those stay for every other queue's reserve, opened or yet to be (docs/ring.md, "reserves").
export const AR_QUEUE_RESERVE: u32 = 512; // I  packets every lane may always hold (0: rule off)
export const AR_SHARED_GUARD: u32 = 516; //  I  frames kept free for reserves and control frames when no channel is open
export const AR_CONTROL_FRAMES: u32 = 640; // A channel, lane and ring-segment frames in use (own line: written per channel)
export const AR_BITMAP: u32 = 1024; //     A one bit per frame, 1 = free; claimed a whole word at a time by xchg

// ---- Thread cache: one frame per attached thread, private to that thread ----
// [count u32][frame offsets u32 × (CACHE_CAPACITY + 1)]: one spare slot, filled just before a flush
export const CACHE_CAPACITY: u32 = 64;
export const CACHE_FLUSH: u32 = 32; // frames returned to the bitmap when the cache overflows

// ---- Packet frame ----
export const FRAME_LENGTH: u32 = 0; // P  payload length in bytes
// Payload at 8, not 4: V8 copies into and out of a SharedArrayBuffer word by word only when both
// ends are 8-byte aligned, else byte by byte. Measured on Node 20, 1200 bytes: 72 ns at +0 or +8,
// 381 ns at +4 (Deno: 43 ns vs 202 ns).
export const FRAME_DATA: u32 = 8; //  P  payload bytes, up to frame size − FRAME_DATA

// ---- Channel frame ----
// Lines are grouped by how often, and by whom, they are written, because a producer reads the first
// two on every packet: a word written often must not share a line with a word read on every packet.
// Parking line: written only when the receiver parks or is woken.
export const CH_SLEEPING: u32 = 0; //     A  SLEEP_AWAKE / SLEEP_PARKED (receiver: set, re-check, wait) / SLEEP_WAKING (a producer claimed the wake)
export const CH_WAKE_SEQ: u32 = 4; //     A  a producer adds 1 then notifies when it claimed the wake
// Read-mostly line: written at creation and by the rare close / lane / handle operations.
export const CH_RECV_CLOSED: u32 = 128; // C  1 once receiver.close() ran: producers answer 'closed'
export const CH_NONCE: u32 = 132; //       I  random, checked by fromHandle (a freed channel reads 0)
export const CH_CAPACITY: u32 = 136; //    I  packets per lane
export const CH_MAX_LANES: u32 = 140; //   I  lanes this channel may ever have
export const CH_LANE_COUNT: u32 = 144; //  A  lanes claimed so far (entries may still read 0 while being built)
export const CH_PARTIES: u32 = 148; //     A  open lanes + an open receiver; whoever takes it to 0 frees the channel
export const CH_RECV_TOKEN: u32 = 152; //  A  non-zero while a receiver handle is in transit
export const CH_LANES: u32 = 256; //       A  u32 byte offset of each lane frame (0 = not published yet)

// ---- Lane frame: one single-producer single-consumer descriptor ring ----
// Three lines, each 128 bytes from the next: the adjacent-line prefetcher pulls 128-byte pairs on
// x86, so 64 bytes apart still false-shares (anchors.md: ~7 M vs ~11.5 M msg/s). Read-only words a
// side needs on every packet are copied into its own line.
// Producer line: written on every packet by the producer; the consumer reads LN_TAIL once per batch.
export const LN_TAIL: u32 = 0; //          P  free-running count of packets published (visible to the consumer)
export const LN_CACHED_HEAD: u32 = 4; //   P  producer's possibly stale copy of LN_HEAD (refreshed when the lane looks full)
export const LN_CHANNEL: u32 = 8; //       I  byte offset of the channel frame
export const LN_CAPACITY: u32 = 12; //     I  copy of CH_CAPACITY
export const LN_SLOT_MASK_P: u32 = 16; //  I  ring slots − 1 (slots are a power of two ≥ capacity), producer's copy
export const LN_WRITTEN: u32 = 20; //      P  free-running count of packets committed; LN_TAIL catches up at publish()
export const LN_SENT: u32 = 32; //         P  u64 packets accepted
export const LN_FULL: u32 = 40; //         P  u64 packets refused because the lane was full
export const LN_POOL_EMPTY: u32 = 48; //   P  u64 packets refused because the frame pool was empty
export const LN_CLOSED_REFUSED: u32 = 56; // P u64 packets refused because the receiver had closed
// Consumer line: written once per batch by the consumer; the producer reads LN_HEAD only when full.
export const LN_HEAD: u32 = 128; //        C  free-running count of packets consumed
export const LN_CACHED_TAIL: u32 = 132; // C  consumer's possibly stale copy of LN_TAIL
export const LN_SLOT_MASK: u32 = 136; //   I  consumer's copy of the slot mask
export const LN_SPACE_SEQ: u32 = 140; //   A  consumer adds 1 then notifies when it saw LN_SPACE_WAITING = 1
export const LN_RECEIVED: u32 = 144; //    C  u64 packets consumed
// Flags line: written rarely (close, parking for space, handle claim); the consumer reads it per batch.
export const LN_SENDER_CLOSED: u32 = 256; // P 1 once every sender on this lane closed
export const LN_SPACE_WAITING: u32 = 260; // P 1 while a sender on this lane is parked in send()
export const LN_CLAIMED: u32 = 264; //     A  0 while a sender handle for this lane is unclaimed, then 1
// Segment table: the ring's slots live in pool frames, frameBytes / 4 descriptors per segment.
export const LN_SEGMENTS: u32 = 384;

export const SLEEP_AWAKE: u32 = 0;
export const SLEEP_PARKED: u32 = 1;
export const SLEEP_WAKING: u32 = 2;

// reserve() answers a frame offset (> 0) or one of these.
export const RESERVE_FULL: i32 = -1;
export const RESERVE_CLOSED: i32 = -2;
export const RESERVE_POOL_EMPTY: i32 = -3;

// channelState() answers
export const STATE_READY: i32 = 0; //  at least one packet is queued
export const STATE_EMPTY: i32 = 1; //  nothing queued, some sender may still send
export const STATE_ENDED: i32 = 2; //  nothing queued and nothing more can come
