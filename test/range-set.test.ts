// RangeSet against a plain set of numbers: random adds, removes and trims, the ranges compared after each.
import { describe, expect, it } from "vitest";
import { RangeSet } from "../src/reliable/range-set.ts";
import { mulberry32 } from "./support/random.ts";

function rangesOf(set: RangeSet): Array<[number, number]> {
  return Array.from({ length: set.rangeCount }, (_, i) => set.rangeFromTop(set.rangeCount - 1 - i));
}

function rangesOfModel(model: Set<number>): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const value of [...model].sort((a, b) => a - b)) {
    const last = ranges.at(-1);
    if (last !== undefined && last[1] === value) last[1]++;
    else ranges.push([value, value + 1]);
  }
  return ranges;
}

describe("RangeSet", () => {
  it.each([1, 2, 3, 4, 5, 6])("matches a set of numbers through 2,000 random adds and removes (seed %i)", (seed) => {
    const random = mulberry32(seed);
    const set = new RangeSet();
    const model = new Set<number>();
    for (let step = 0; step < 2000; step++) {
      const start = Math.floor(random() * 200);
      const end = start + Math.floor(random() * (random() < 0.5 ? 4 : 40));
      if (random() < 0.6) {
        let fresh = 0;
        for (let v = start; v < end; v++) if (!model.has(v)) (model.add(v), fresh++);
        expect(set.add(start, end)).toBe(fresh);
      } else {
        set.remove(start, end);
        for (let v = start; v < end; v++) model.delete(v);
      }
      expect(rangesOf(set)).toEqual(rangesOfModel(model));
    }
  });

  it("takes bytes off a range's front, back and middle in place, and adds after the last", () => {
    const set = new RangeSet();
    set.add(0, 10);
    set.add(10, 20); // joins
    set.add(30, 40); // after the last
    expect(rangesOf(set)).toEqual([[0, 20], [30, 40]]);
    set.remove(0, 5);
    set.remove(15, 20);
    set.remove(33, 35);
    expect(rangesOf(set)).toEqual([[5, 15], [30, 33], [35, 40]]);
    set.remove(20, 30); // nothing there
    set.remove(30, 33); // a whole range
    expect(rangesOf(set)).toEqual([[5, 15], [35, 40]]);
  });
});
