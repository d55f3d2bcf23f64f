// A set of non-negative integers kept as sorted, disjoint, non-adjacent half-open ranges [start, end).
// Used for received packet numbers (the ranges an ACK frame reports), for the ids of finished
// incoming streams, and for the bytes of a send buffer the peer acknowledged or that were lost.
// (Received stream and message bytes are tracked by reassembly.ts, bit per byte.)
//
// Bounded by construction where it faces the peer: received packet numbers are capped
// (`limitRanges`, the oldest dropped), finished stream ids lie within the stream credit, and the send
// buffer's ranges within the send buffer.

export class RangeSet {
  /** starts[i] < ends[i] < starts[i + 1]: sorted, disjoint and never touching. */
  #starts: number[] = [];
  #ends: number[] = [];

  get rangeCount(): number {
    return this.#starts.length;
  }

  get isEmpty(): boolean {
    return this.#starts.length === 0;
  }

  /** The largest member + 1, or 0 when empty. */
  get end(): number {
    const last = this.#ends.length - 1;
    return last < 0 ? 0 : this.#ends[last]!;
  }

  /** The end of the range that starts at `from`, or `from` itself if `from` is not in the set. */
  contiguousEnd(from: number): number {
    const i = this.#indexContaining(from);
    return i < 0 ? from : this.#ends[i]!;
  }

  has(value: number): boolean {
    return this.#indexContaining(value) >= 0;
  }

  /** Range i from the top (0 = the highest): [start, end). */
  rangeFromTop(i: number): [number, number] {
    const at = this.#starts.length - 1 - i;
    return [this.#starts[at]!, this.#ends[at]!];
  }

  /** Adds [start, end); answers how many of those values were not members before. */
  add(start: number, end: number): number {
    if (end <= start) return 0;
    const starts = this.#starts;
    const ends = this.#ends;
    // First range that ends at or after `start` (it may merge), last range that starts at or before `end`.
    const first = lowerBound(ends, start);
    let last = first;
    let covered = 0;
    let newStart = start;
    let newEnd = end;
    while (last < starts.length && starts[last]! <= end) {
      covered += Math.min(ends[last]!, end) - Math.max(starts[last]!, start);
      newStart = Math.min(newStart, starts[last]!);
      newEnd = Math.max(newEnd, ends[last]!);
      last++;
    }
    if (last - first === 1) {
      // Joined to one range (a packet number or bytes after the last, most often): changed in place,
      // as splice() allocates the array of what it removed even when that is nothing.
      starts[first] = newStart;
      ends[first] = newEnd;
    } else if (first === starts.length) {
      starts.push(newStart);
      ends.push(newEnd);
    } else {
      starts.splice(first, last - first, newStart);
      ends.splice(first, last - first, newEnd);
    }
    return end - start - covered;
  }

  /** Calls visit(start, end) for each part of [start, end) that is not in the set, in order. */
  forEachGap(start: number, end: number, visit: (start: number, end: number) => void): void {
    let cursor = start;
    for (let i = lowerBound(this.#ends, start + 1); i < this.#starts.length && cursor < end; i++) {
      const s = this.#starts[i]!;
      if (s >= end) break;
      if (s > cursor) visit(cursor, s);
      cursor = Math.max(cursor, this.#ends[i]!);
    }
    if (cursor < end) visit(cursor, end);
  }

  /** Removes [start, end). */
  remove(start: number, end: number): void {
    if (end <= start) return;
    const starts = this.#starts;
    const ends = this.#ends;
    const first = lowerBound(ends, start + 1);
    if (first === starts.length || starts[first]! >= end) return; // nothing of it is here (an empty set, most often)
    if (first + 1 === starts.length || starts[first + 1]! >= end) {
      // One range overlaps (acknowledged bytes taken off its front, most often): changed in place.
      const rangeStart = starts[first]!;
      const rangeEnd = ends[first]!;
      if (rangeStart < start && rangeEnd > end) {
        starts.splice(first + 1, 0, end);
        ends.splice(first, 0, start);
      } else if (rangeStart < start) ends[first] = start;
      else if (rangeEnd > end) starts[first] = end;
      else {
        starts.splice(first, 1);
        ends.splice(first, 1);
      }
      return;
    }
    const keptStarts: number[] = [];
    const keptEnds: number[] = [];
    let last = first;
    while (last < starts.length && starts[last]! < end) {
      if (starts[last]! < start) { keptStarts.push(starts[last]!); keptEnds.push(start); }
      if (ends[last]! > end) { keptStarts.push(end); keptEnds.push(ends[last]!); }
      last++;
    }
    starts.splice(first, last - first, ...keptStarts);
    ends.splice(first, last - first, ...keptEnds);
  }

  /** Keeps only the `max` highest ranges. */
  limitRanges(max: number): void {
    const excess = this.#starts.length - max;
    if (excess > 0) {
      this.#starts.splice(0, excess);
      this.#ends.splice(0, excess);
    }
  }

  /** Drops the ranges that lie wholly below `value`, keeping the highest range whatever it holds. */
  dropRangesBelow(value: number): void {
    const below = Math.min(lowerBound(this.#ends, value + 1), this.#starts.length - 1); // ranges with end <= value
    if (below > 0) {
      this.#starts.splice(0, below);
      this.#ends.splice(0, below);
    }
  }

  #indexContaining(value: number): number {
    const i = lowerBound(this.#ends, value + 1);
    return i < this.#starts.length && this.#starts[i]! <= value ? i : -1;
  }
}

/** The first index whose value is ≥ `value` in a sorted array. */
function lowerBound(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
