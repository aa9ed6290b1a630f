/**
 * Which pages a lazy restore leaves to the lazy-pages daemon: the pages of the pagemap entries
 * flagged PE_LAZY, clipped to the areas that may be restored lazily (vmaCanBeLazy: private
 * anonymous, not locked, not huge pages, not vDSO/vvar/vsyscall). The restorer leaves exactly
 * these unfilled and registers those areas with userfaultfd; the daemon serves exactly these
 * (a fault elsewhere in a registered area is a zero page). One rule for both sides.
 */
import { PAGE_SIZE, PE_LAZY } from './constants.js';
import { vmaCanBeLazy, type PlanVma } from './plan.js';
import type { ReaderEntry } from './reader.js';

const PAGE = BigInt(PAGE_SIZE);

/** A range of addresses [start, end), page aligned. */
export interface LazyRange {
  start: bigint;
  end: bigint;
}

/** The lazy ranges of a task: its PE_LAZY entries within its lazily restorable areas, in address order. */
export function lazyRanges(entries: readonly ReaderEntry[], vmas: readonly Pick<PlanVma, 'start' | 'end' | 'flags' | 'status'>[]): LazyRange[] {
  const areas = vmas.filter((v) => vmaCanBeLazy(v as PlanVma)).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: LazyRange[] = [];
  for (const e of entries) {
    if (!(e.flags & PE_LAZY)) continue;
    const a = e.vaddr;
    const b = e.vaddr + BigInt(e.nrPages) * PAGE;
    for (const v of areas) {
      if (v.end <= a) continue;
      if (v.start >= b) break;
      const s = v.start > a ? v.start : a;
      const t = v.end < b ? v.end : b;
      out.push({ start: s, end: t }); // each within one area: UFFDIO_COPY fills one area at a time
    }
  }
  return out;
}
