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

/**
 * `dump --lazy-pages`: the lazy pages the dump keeps in its own memory (copied while the tree
 * was frozen, as CRIU keeps them in its page pipes), served to the lazy-pages daemon by the
 * page server (servePageServer's `lazySource`) once the tree is gone.
 */
export class LazyPageStore {
  /** per task id (the pid in the images): its pieces, in address order */
  private readonly pieces = new Map<bigint, { vaddr: bigint; data: Buffer }[]>();
  /** pages kept */
  pages = 0;

  /** Keep `data` (whole pages) as task id's memory from vaddr. */
  add(id: number | bigint, vaddr: bigint, data: Buffer): void {
    const k = BigInt(id);
    let l = this.pieces.get(k);
    if (!l) this.pieces.set(k, (l = []));
    l.push({ vaddr, data });
    l.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
    this.pages += data.length / PAGE_SIZE;
  }

  private find(id: bigint, vaddr: bigint): { vaddr: bigint; data: Buffer } | undefined {
    if (vaddr % PAGE !== 0n) return undefined;
    return this.pieces.get(id)?.find((p) => p.vaddr <= vaddr && vaddr < p.vaddr + BigInt(p.data.length));
  }

  /** How many pages from vaddr (at most want) are kept in one piece; 0: none there. */
  run(id: bigint, vaddr: bigint, want: bigint): number {
    const p = this.find(id, vaddr);
    if (!p) return 0;
    const left = BigInt(p.data.length) / PAGE - (vaddr - p.vaddr) / PAGE;
    return Number(want < left ? want : left);
  }

  /** Copy the pages at vaddr into dest (run() said they are there). */
  read(id: bigint, vaddr: bigint, dest: Buffer): void {
    const p = this.find(id, vaddr)!;
    const off = Number(vaddr - p.vaddr);
    p.data.copy(dest, 0, off, off + dest.length);
  }
}
