/**
 * Private huge pages (MAP_PRIVATE with MAP_HUGETLB, anonymous or of a hugetlbfs file) that a
 * parent and its child still share copy-on-write since a fork. A restore gives each task a copy
 * of its own (CRIU 4.2 restores them so too: it never lets a child inherit a MAP_HUGETLB area),
 * which the tasks would see (smaps Shared_Hugetlb turned Private_Hugetlb, the machine's free huge
 * pages fewer): refused by name. A huge page is known by its page frame (/proc/PID/pagemap, read
 * while the tree is frozen; pages of the file itself, PM_FILE, are the file's and come back
 * shared as they were).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import type { Vma } from '@crtools/procfs';

const MAP_HUGETLB = 0x40000;
/** mmap's MAP_HUGE_* size bits: log2 of the page size, from bit 26 (0: the default, 2 MiB here) */
const MAP_HUGE_SHIFT = 26;
const DEFAULT_HUGE_SHIFT = 21;
const PM_PRESENT = 1n << 63n;
const PM_FILE = 1n << 61n;
const PM_PFN = (1n << 55n) - 1n;

const hex = (v: bigint) => v.toString(16);

export class SharedHugePages {
  /** page frame → the task and area that hold it first */
  private readonly seen = new Map<bigint, { pid: number; start: bigint; end: bigint }>();

  /** Task pid's private huge pages: an error naming the first one another task of the tree holds too. */
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
            this.seen.set(pfn, { pid, start: v.start, end: v.end });
            continue;
          }
          if (had.pid === pid) continue;
          throw new CrtoolsError('UNSUPPORTED_TASK_ATTRIBUTE', `task ${pid}: mapping ${hex(v.start)}-${hex(v.end)} (private huge pages, MAP_HUGETLB): its huge page at ${hex(at)} is shared copy-on-write with task ${had.pid} (mapping ${hex(had.start)}-${hex(had.end)}) since a fork, which a restore would make two copies (as CRIU 4.2 restores them): not supported`, {
            context: { pid, attribute: 'hugetlb-cow' }, exitCode: ExitCode.UNSUPPORTED,
          });
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
