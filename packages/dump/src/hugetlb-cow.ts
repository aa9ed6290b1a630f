/**
 * Private huge pages (MAP_PRIVATE with MAP_HUGETLB, anonymous or of a hugetlbfs file) that a
 * parent and its child still share copy-on-write since a fork. The images hold each task's pages
 * in full, as any private page; the areas where such a page was found are marked (vma_entry
 * cow_huge, crtools' own field), so that the restore shares the pages whose content is the
 * parent's there again, and only there: elsewhere a child's huge page of the same content was
 * its own copy, and stays one (sharing it would leave the child a huge page to copy, perhaps
 * with none free, at its next write). CRIU 4.2 gives each task a copy. A huge page is known by
 * its page frame (/proc/PID/pagemap, read while the tree is frozen; pages of the file itself,
 * PM_FILE, are the file's and come back shared as they were).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { Vma } from '@crtools/procfs';

const MAP_HUGETLB = 0x40000;
/** mmap's MAP_HUGE_* size bits: log2 of the page size, from bit 26 (0: the default, 2 MiB here) */
const MAP_HUGE_SHIFT = 26;
const DEFAULT_HUGE_SHIFT = 21;
const PM_PRESENT = 1n << 63n;
const PM_FILE = 1n << 61n;
const PM_PFN = (1n << 55n) - 1n;

export class SharedHugePages {
  /** page frame → the task and area that hold it first */
  private readonly seen = new Map<bigint, { pid: number; start: bigint }>();
  /** "pid:start" of every area holding a huge page another task holds too */
  private readonly shared = new Set<string>();

  /** Task pid's private huge pages, read once its areas are known (tasks in tree order). */
  check(pid: number, vmas: readonly Vma[]): void {
    const areas = vmas.filter((v) => !v.shared && v.flags & MAP_HUGETLB);
    if (!areas.length) return;
    const fd = openSync(`/proc/${pid}/pagemap`, 'r');
    try {
      const e = Buffer.alloc(8);
      for (const v of areas) {
        const size = 1n << BigInt(((v.flags >>> MAP_HUGE_SHIFT) & 0x3f) || DEFAULT_HUGE_SHIFT);
        for (let at = v.start; at < v.end; at += size) {
          if (readSync(fd, e, 0, 8, Number((at >> 12n) * 8n)) !== 8) break;
          const entry = e.readBigUInt64LE(0);
          // (a page frame number of 0: not shown, which only root is)
          const pfn = entry & PM_PFN;
          if (!(entry & PM_PRESENT) || entry & PM_FILE || pfn === 0n) continue;
          const had = this.seen.get(pfn);
          if (!had) {
            this.seen.set(pfn, { pid, start: v.start });
            continue;
          }
          if (had.pid === pid) continue;
          this.shared.add(`${had.pid}:${had.start}`);
          this.shared.add(`${pid}:${v.start}`);
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Whether task pid's area at `start` holds a huge page another task holds too (known once that task's areas were checked). */
  isShared(pid: number, start: bigint): boolean {
    return this.shared.has(`${pid}:${start}`);
  }
}
