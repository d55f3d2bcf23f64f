// The listener's and senders' door to assembly/wire.ts: a datagram is copied once into a scratch
// frame of the transport's arena, where the core classifies it and reads its fields; headers are
// built there and copied out. One Framer per transport (one thread), so one scratch frame suffices.
import type { Arena } from "./arena.ts";
import { FRAME_DATA } from "./core.ts";
import { DATA_HEADER_BYTES, MAX_DATAGRAM_BYTES, RESPONSE_SEALED } from "./wire.ts";

// Parsed datagrams sit at the start of the scratch payload; headers are built after them.
const BUILD_AREA = FRAME_DATA + 1536;

export class Framer {
  private readonly arena: Arena;
  private readonly frame: number;
  private readonly parsed: number;
  private readonly build: number;

  constructor(arena: Arena) {
    if (arena.frameBytes < BUILD_AREA + 64) throw new RangeError(`a transport needs frames of at least 2048 bytes, this arena has ${arena.frameBytes}`);
    const frame = arena.core.allocFrame();
    if (frame === 0) throw new RangeError("the arena's frame pool is exhausted: no scratch frame for the transport");
    this.arena = arena;
    this.frame = frame;
    this.parsed = frame + FRAME_DATA;
    this.build = frame + BUILD_AREA;
  }

  /** Copies the datagram in and classifies it: its kind, or a negative WIRE_* reason. */
  parse(datagram: Uint8Array): number {
    if (datagram.length > MAX_DATAGRAM_BYTES || datagram.length === 0) return this.arena.core.wireParse(this.parsed, datagram.length);
    this.arena.bytes.set(datagram, this.parsed);
    return this.arena.core.wireParse(this.parsed, datagram.length);
  }

  /** Destination connection id of the DATA or RESPONSE packet parse() last accepted. */
  connection(): number {
    return this.arena.core.wireConnection(this.parsed) >>> 0;
  }

  /** Packet number of the DATA packet parse() last accepted (below 2^53). */
  packetNumber(): number {
    const { core } = this.arena;
    return core.wirePacketNumberHigh(this.parsed) * 2 ** 32 + (core.wirePacketNumberLow(this.parsed) >>> 0);
  }

  dataHeader(connection: number, packetNumber: number): Buffer {
    this.arena.core.wireWriteDataHeader(this.build, connection, packetNumber % 2 ** 32, Math.floor(packetNumber / 2 ** 32));
    return this.copyOut(DATA_HEADER_BYTES);
  }

  /** The 2-byte intro header (kind, wire version). */
  introHeader(): Buffer {
    this.arena.core.wireWriteIntroHeader(this.build);
    return this.copyOut(2);
  }

  /** The response header up to its ephemeral key (kind, wire version, destination connection). */
  responseHeader(connection: number): Buffer {
    this.arena.core.wireWriteResponseHeader(this.build, connection);
    return this.copyOut(RESPONSE_SEALED - 32);
  }

  private copyOut(length: number): Buffer {
    const header = Buffer.allocUnsafe(length);
    header.set(this.arena.bytes.subarray(this.build, this.build + length));
    return header;
  }

  dispose(): void {
    this.arena.core.freeFrame(this.frame);
  }
}
