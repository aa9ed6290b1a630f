/**
 * Address lookups in a task's areas or page runs, sorted by start and disjoint (as the kernel
 * keeps a task's mappings, and as the plan's builder checks them): a binary search instead of a
 * scan of every area for every run, which made a restore of 10,000 mappings cost seconds and
 * one of 60,000 minutes (bench/scale.mjs).
 */
import { firstEndingAfter, type Span } from '@crtools/common';

/**
 * The position in `sorted` (by start, disjoint) of the span holding `addr`, or -1. `i`:
 * firstEndingAfter(sorted, addr), when the caller has it (endingAfterCursor).
 */
export function spanAt(sorted: readonly Span[], addr: bigint, i = firstEndingAfter(sorted, addr)): number {
  return i < sorted.length && sorted[i]!.start <= addr ? i : -1;
}

/**
 * firstEndingAfter(sorted, addr) for addresses asked mostly in ascending order (a task's page
 * runs against its areas): a cursor that moves forward a few places, and a binary search when
 * the address is below the one asked before or far ahead. The same answers, fewer bigint
 * comparisons (each run's search cost a restore of 60,000 areas ~17 of them).
 */
export function endingAfterCursor(sorted: readonly Span[]): (addr: bigint) => number {
  let at = 0;
  let last = -1n;
  return (addr) => {
    if (addr < last) at = firstEndingAfter(sorted, addr);
    else {
      let steps = 0;
      while (at < sorted.length && sorted[at]!.end <= addr && steps++ < 8) at++;
      if (at < sorted.length && sorted[at]!.end <= addr) at = firstEndingAfter(sorted, addr);
    }
    last = addr;
    return at;
  };
}

/** The positions in `sorted` (by start, disjoint) of the spans meeting [start, end). */
export function spansMeeting(sorted: readonly Span[], start: bigint, end: bigint): number[] {
  const out: number[] = [];
  for (let i = firstEndingAfter(sorted, start); i < sorted.length && sorted[i]!.start < end; i++) out.push(i);
  return out;
}

/**
 * How far from `start` (towards `end`) the spans of `sorted` cover [start, end) without a hole.
 * `from`: firstEndingAfter(sorted, start), when the caller has it (endingAfterCursor).
 */
export function coveredUpTo(sorted: readonly Span[], start: bigint, end: bigint, from = firstEndingAfter(sorted, start)): bigint {
  let at = start;
  for (let i = from; i < sorted.length && at < end && sorted[i]!.start <= at; i++) {
    at = sorted[i]!.end < end ? sorted[i]!.end : end;
  }
  return at;
}

/**
 * The areas in address order, with each one's place in the given list (the plan's order need
 * not be the address order; it is, as the kernel lists them, in every image seen so far: then
 * no sort, whose bigint comparisons cost a restore of 60,000 mappings tens of ms each time).
 */
export function byAddress<T extends Span>(areas: readonly T[]): { sorted: T[]; place: number[] } {
  let inOrder = true;
  for (let i = 1; i < areas.length && inOrder; i++) inOrder = areas[i - 1]!.start <= areas[i]!.start;
  const place = areas.map((_, i) => i);
  if (inOrder) return { sorted: [...areas], place };
  place.sort((a, b) => (areas[a]!.start < areas[b]!.start ? -1 : areas[a]!.start > areas[b]!.start ? 1 : 0));
  return { sorted: place.map((i) => areas[i]!), place };
}

/** Page runs as spans of addresses. */
export const runSpans = (runs: readonly { vaddr: bigint; npages: bigint }[], page: bigint): Span[] => runs.map((r) => ({ start: r.vaddr, end: r.vaddr + r.npages * page }));
