/**
 * Address spans [start, end) kept sorted by start and disjoint (a task's areas, page runs, the
 * written ranges of dirty tracking): where a binary search starts.
 */
export interface Span {
  start: bigint;
  end: bigint;
}

/** The position in `sorted` (by start, disjoint) of the first span ending after `addr` (`sorted.length` if none). */
export function firstEndingAfter(sorted: readonly Span[], addr: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
