// The receiving half of one stream: pieces that arrived, in any order and possibly more than once,
// kept as views of the packets' plaintext (no copy) and handed out in order. Memory is what arrived:
// nothing is allocated from a length the peer declares.

import { ownedBytes } from "../memory/owned-copy.ts";
import { RangeSet } from "./range-set.ts";

export class Reassembly {
  readonly #received = new RangeSet();
  /** Pieces by stream offset; they tile the received set without overlapping. */
  readonly #pieces = new Map<number, Uint8Array>();
  #readOffset = 0;
  #bufferedBytes = 0;

  /** Bytes held: arrived and not yet read. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Bytes handed out so far. */
  get readOffset(): number {
    return this.#readOffset;
  }

  /** One past the highest byte that arrived. */
  get highestReceived(): number {
    return this.#received.end;
  }

  /** Whether every byte in [0, length) arrived. */
  hasAll(length: number): boolean {
    return length === 0 || this.#received.contiguousEnd(0) >= length;
  }

  /** Stores what is new in data (at stream offset `offset`); answers how many bytes were new. */
  insert(offset: number, data: Uint8Array): number {
    let added = 0;
    this.#received.forEachGap(offset, offset + data.length, (start, end) => {
      this.#pieces.set(start, data.subarray(start - offset, end - offset));
      added += end - start;
    });
    this.#received.add(offset, offset + data.length);
    this.#bufferedBytes += added;
    return added;
  }

  /** The next piece in order, or undefined if it has not arrived. */
  read(): Uint8Array | undefined {
    const piece = this.#pieces.get(this.#readOffset);
    if (piece === undefined) return undefined;
    this.#pieces.delete(this.#readOffset);
    this.#readOffset += piece.length;
    this.#bufferedBytes -= piece.length;
    return piece;
  }

  /** All of [0, length) as one array (call once hasAll(length) holds; allocates exactly `length`). */
  assemble(length: number): Uint8Array {
    const whole = ownedBytes(length);
    for (let at = this.#readOffset, piece = this.read(); piece !== undefined; at = this.#readOffset, piece = this.read()) whole.set(piece, at);
    return whole;
  }
}
