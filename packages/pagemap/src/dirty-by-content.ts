/**
 * Memory tracking without soft-dirty bits. CRIU's incremental dumps (--track-mem with a parent)
 * leave out pages whose pagemap entry lacks the soft-dirty bit. This kernel has no soft-dirty,
 * so this wraps a pagemap function and sets bit 55 itself: a page is "dirty" when its current
 * contents differ from the copy the parent snapshot holds (or the parent has none). The images
 * written are CRIU's usual ones (PE_PARENT holes); the price is reading each present page once
 * more to compare, the gain is not storing unchanged pages again.
 */
import { PAGE_SIZE, PME_FILE, PME_PRESENT, PME_SOFT_DIRTY, PME_SWAP } from './constants.js';
import type { PagemapEntriesFn } from './plan.js';
import type { PageReader } from './reader.js';
import type { PageSource } from './writer.js';

const PAGE = BigInt(PAGE_SIZE);

export interface DirtyByContentOptions {
  pagemap: PagemapEntriesFn;
  source: PageSource;
  parent: PageReader;
  /** Pages compared per read (default 256). */
  batchPages?: number;
}

export interface DirtyByContentStats {
  compared: number;
  unchanged: number;
}

/**
 * Returns a pagemap function for planDump({ hasParent: true, trackMem: true, pagemap }) and
 * the comparison counters. File pages (bit 61: untouched file pages, the vDSO) are reported
 * dirty, since the planner either skips them anyway or must write them.
 */
export function dirtyByContent(o: DirtyByContentOptions): { pagemap: PagemapEntriesFn; stats: DirtyByContentStats } {
  const batch = Math.max(1, o.batchPages ?? 256);
  const cur = Buffer.allocUnsafe(batch * PAGE_SIZE);
  const old = Buffer.allocUnsafe(batch * PAGE_SIZE);
  const stats: DirtyByContentStats = { compared: 0, unchanged: 0 };

  const pagemap: PagemapEntriesFn = async (start, n) => {
    const src = await o.pagemap(start, n);
    const out = new BigUint64Array(src);
    let i = 0;
    while (i < n) {
      const e = out[i];
      const candidate = (e & (PME_PRESENT | PME_SWAP)) !== 0n && (e & PME_FILE) === 0n;
      if (!candidate) {
        out[i] = e | PME_SOFT_DIRTY;
        i++;
        continue;
      }
      // a run of candidate pages, at most one batch
      let k = 1;
      while (i + k < n && k < batch && (out[i + k] & (PME_PRESENT | PME_SWAP)) !== 0n && (out[i + k] & PME_FILE) === 0n) k++;
      const vaddr = start + BigInt(i) * PAGE;
      await o.source.read([{ vaddr, nrPages: k }], cur.subarray(0, k * PAGE_SIZE));
      let parentOk = true;
      try {
        o.parent.read(vaddr, old.subarray(0, k * PAGE_SIZE));
      } catch {
        parentOk = false;
      }
      for (let j = 0; j < k; j++) {
        let same = false;
        if (parentOk) {
          same = cur.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE).equals(old.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE));
        } else {
          // the run is not wholly in the parent: look page by page
          try {
            o.parent.read(vaddr + BigInt(j) * PAGE, old.subarray(0, PAGE_SIZE));
            same = cur.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE).equals(old.subarray(0, PAGE_SIZE));
          } catch {
            same = false;
          }
        }
        stats.compared++;
        if (same) stats.unchanged++;
        out[i + j] = same ? out[i + j] & ~PME_SOFT_DIRTY : out[i + j] | PME_SOFT_DIRTY;
      }
      i += k;
    }
    return out;
  };
  return { pagemap, stats };
}
