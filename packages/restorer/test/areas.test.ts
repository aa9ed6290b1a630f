import { describe, expect, it } from 'vitest';
import { firstEndingAfter } from '@crtools/common';
import { byAddress, coveredUpTo, spanAt, spansMeeting } from '../src/areas.js';

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
