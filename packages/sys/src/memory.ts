/**
 * A task's memory as the kernel describes it: the PAGEMAP_SCAN ioctl (6.7+) over a pagemap
 * descriptor, and guard regions (MADV_GUARD_INSTALL, 6.13+) — where a task has them, and
 * whether this kernel can install them.
 */
import { closeSync, openSync } from 'node:fs';
import { isNativeSysError, PAGE_SIZE_BIGINT } from '@crtools/common';
import { openPagemap, PM } from '@crtools/procfs';
import { addon, orThrow } from './native.js';

/** PAGEMAP_SCAN page categories (include/uapi/linux/fs.h). */
export const PAGE_IS = {
  WPALLOWED: 1n << 0n,
  WRITTEN: 1n << 1n,
  FILE: 1n << 2n,
  PRESENT: 1n << 3n,
  SWAPPED: 1n << 4n,
  PFNZERO: 1n << 5n,
  HUGE: 1n << 6n,
  SOFT_DIRTY: 1n << 7n,
  /** a page of a guard region (6.14+) */
  GUARD: 1n << 8n,
} as const;

/** PAGEMAP_SCAN flags: write-protect the matching pages; fail unless async write-protect is on. */
export const PM_SCAN_WP_MATCHING = 1n;
export const PM_SCAN_CHECK_WPASYNC = 2n;

/** madvise advice that turns a range into a guard region (any access faults). */
export const MADV_GUARD_INSTALL = 102;

/** A run of pages with the same categories (only those of `returnMask`). */
export interface PageRegion {
  start: bigint;
  end: bigint;
  categories: bigint;
}

/** The kernel's pm_scan_arg, by its field names; masks absent are 0. */
export interface PagemapScanArgs {
  start: bigint;
  end: bigint;
  flags?: bigint;
  categoryInverted?: bigint;
  categoryMask?: bigint;
  categoryAnyofMask?: bigint;
  returnMask: bigint;
  maxPages?: bigint;
  /** regions one call may return (default 512) */
  vecLen?: number;
}

/** One PAGEMAP_SCAN call: the regions found and where the walk stopped (below `end`: go on from there). */
export function pagemapScan(fd: number, a: PagemapScanArgs, context: { pid?: number } = {}): { regions: PageRegion[]; walkEnd: bigint } {
  const r = orThrow(
    addon.get().pagemapScan(fd, a.start, a.end, a.flags ?? 0n, a.categoryInverted ?? 0n, a.categoryMask ?? 0n, a.categoryAnyofMask ?? 0n, a.returnMask, a.maxPages ?? 0n, a.vecLen ?? 512),
    'ioctl',
    { ...context, message: 'PAGEMAP_SCAN' },
  );
  const regions: PageRegion[] = [];
  for (let off = 0; off + 24 <= r.regions.length; off += 24) {
    regions.push({ start: r.regions.readBigUInt64LE(off), end: r.regions.readBigUInt64LE(off + 8), categories: r.regions.readBigUInt64LE(off + 16) });
  }
  return { regions, walkEnd: r.walkEnd };
}

/** Every region of [start, end), over as many calls as it takes; adjacent regions of equal categories are joined. */
export function pagemapScanAll(fd: number, a: PagemapScanArgs, context: { pid?: number } = {}): PageRegion[] {
  const out: PageRegion[] = [];
  let at = a.start;
  while (at < a.end) {
    const { regions, walkEnd } = pagemapScan(fd, { ...a, start: at }, context);
    for (const g of regions) {
      const last = out.at(-1);
      if (last && last.end === g.start && last.categories === g.categories) last.end = g.end;
      else out.push({ ...g });
    }
    if (walkEnd <= at) break; // no progress: nothing more to see
    at = walkEnd;
  }
  return out;
}

/**
 * How guard regions can be seen on this kernel: `scan` (PAGEMAP_SCAN's PAGE_IS_GUARD, 6.14+),
 * `pagemap` (bit 58 of each /proc/PID/pagemap entry, 6.15+, read page by page over the areas),
 * `none` (the kernel installs none, or cannot show them).
 */
export type GuardLookup = 'scan' | 'pagemap' | 'none';

/**
 * The guard regions of task pid (page-aligned [start, end) ranges, ascending). `end` bounds
 * the PAGEMAP_SCAN walk (the task size); `areas` are the task's mappings, which the page by
 * page lookup reads (guard regions lie inside mappings).
 */
export function guardRegions(pid: number, o: { how: GuardLookup; end: bigint; areas: readonly { start: bigint; end: bigint }[] }): { start: bigint; end: bigint }[] {
  if (o.how === 'none') return [];
  if (o.how === 'scan') {
    const fd = openSync(`/proc/${pid}/pagemap`, 'r');
    try {
      return pagemapScanAll(fd, { start: 0n, end: o.end, categoryMask: PAGE_IS.GUARD, returnMask: PAGE_IS.GUARD }, { pid })
        .filter((g) => (g.categories & PAGE_IS.GUARD) !== 0n)
        .map(({ start, end }) => ({ start, end }));
    } finally {
      closeSync(fd);
    }
  }
  const out: { start: bigint; end: bigint }[] = [];
  const pm = openPagemap(pid);
  const CHUNK = 1n << 16n; // pages per read
  try {
    for (const a of o.areas) {
      for (let at = a.start; at < a.end; at += CHUNK * PAGE_SIZE_BIGINT) {
        const to = at + CHUNK * PAGE_SIZE_BIGINT < a.end ? at + CHUNK * PAGE_SIZE_BIGINT : a.end;
        const { entries } = pm.read(at, to);
        for (let i = 0; i < entries.length; i++) {
          if ((entries[i]! & PM.GUARD) === 0n) continue;
          const page = at + BigInt(i) * PAGE_SIZE_BIGINT;
          const last = out.at(-1);
          if (last && last.end === page) last.end = page + PAGE_SIZE_BIGINT;
          else out.push({ start: page, end: page + PAGE_SIZE_BIGINT });
        }
      }
    }
  } finally {
    pm.close();
  }
  return out;
}

/** Does this kernel install guard regions (MADV_GUARD_INSTALL on a fresh anonymous page of ours)? */
export function canInstallGuards(): boolean {
  return !isNativeSysError(addon.get().guardProbe());
}
