import { describe, expect, it } from 'vitest';
import { firstEndingAfter } from '@crtools/common';
import { byAddress, coveredUpTo, endingAfterCursor, spanAt, spansMeeting } from '../src/areas.js';

const s = (a: number, b: number) => ({ start: BigInt(a), end: BigInt(b) });
// sorted and disjoint: [10,20) [20,30) [40,50)
const areas = [s(10, 20), s(20, 30), s(40, 50)];

/** the scans the lookups replace, for comparison */
const scanAt = (addr: bigint) => areas.findIndex((v) => v.start <= addr && addr < v.end);
const scanMeeting = (a: bigint, b: bigint) => areas.flatMap((v, i) => (a < v.end && b > v.start ? [i] : []));
const scanCovered = (a: bigint, b: bigint) => {
  let at = a;
  for (const v of areas) if (v.start <= at && at < v.end) at = v.end < b ? v.end : b;
  return at;
};

describe('area lookups', () => {
  it('agree with a scan of every area at every address', () => {
    for (let a = 0; a <= 55; a++) {
      expect(spanAt(areas, BigInt(a))).toBe(scanAt(BigInt(a)));
      for (let b = a + 1; b <= 56; b++) {
        expect([...spansMeeting(areas, BigInt(a), BigInt(b))]).toEqual(scanMeeting(BigInt(a), BigInt(b)));
        expect(coveredUpTo(areas, BigInt(a), BigInt(b))).toBe(scanCovered(BigInt(a), BigInt(b)));
      }
    }
  });

  it('find the first area ending after an address, and none past the last', () => {
    expect(firstEndingAfter(areas, 0n)).toBe(0);
    expect(firstEndingAfter(areas, 20n)).toBe(1);
    expect(firstEndingAfter(areas, 35n)).toBe(2);
    expect(firstEndingAfter(areas, 50n)).toBe(3);
    expect(firstEndingAfter([], 1n)).toBe(0);
  });

  it('sort areas given out of order and say where each came from', () => {
    const { sorted, place } = byAddress([areas[2]!, areas[0]!, areas[1]!]);
    expect(sorted).toEqual(areas);
    expect(place).toEqual([1, 2, 0]);
  });
});

describe('endingAfterCursor', () => {
  it('answers as firstEndingAfter for addresses ascending, repeated, going back and jumping far', () => {
    // 100 areas of 10 with holes of 5: [0,10) [15,25) ...
    const many = Array.from({ length: 100 }, (_, i) => s(i * 15, i * 15 + 10));
    const asks = [
      ...Array.from({ length: 1600 }, (_, a) => a), // every address in order (holes included)
      1200, 1200, 3, 0, 1499, 1500, 1501, 700, 701, 5, 1000, 20, 1400, // back, far ahead, past the end
    ].map(BigInt);
    const after = endingAfterCursor(many);
    for (const a of asks) {
      const i = after(a);
      expect(i).toBe(firstEndingAfter(many, a));
      // (the lookups given the cursor's answer answer as without it)
      expect(spanAt(many, a, i)).toBe(spanAt(many, a));
      expect(coveredUpTo(many, a, a + 30n, i)).toBe(coveredUpTo(many, a, a + 30n));
    }
    const none = endingAfterCursor([]);
    expect([none(0n), none(99n)]).toEqual([0, 0]);
  });
});
