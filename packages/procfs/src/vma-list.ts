import { PAGE_SIZE_BIGINT } from '@crtools/common';
import { readMapFileModesOf } from './links.js';
import { collectVmas, readMaps, type MapsOptions, type Vma } from './maps.js';
import type { ProcOptions, Target } from './read.js';
import { MAP, VMA } from './vma-flags.js';

/** A Vma of CRIU's list, with the open mode of its file when it has one. */
export interface CriuVma extends Vma {
  /** VmaEntry.fdflags for file mappings (from map_files), else undefined. */
  fdflags?: number;
}

/**
 * The VMA list a CRIU dump stores for a process, in one call: smaps (so
 * VmFlags give grows-down, madvise bits and unsupported areas), CRIU's
 * classification, the guard gap as `stackGuardGapHidden` says, vvar areas
 * merged, [uprobes] dropped, and `fdflags` of file mappings from their map_files links
 * (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE; skipped without it).
 */
export function readVmaList(target: Target, opts?: MapsOptions & ProcOptions): CriuVma[] {
  const list: CriuVma[] = collectVmas(readMaps(target, { ...opts, smaps: true, counters: false }));
  hugetlbBorrowed(list);
  // the areas with a file (private anonymous huge pages and SysV attaches have a map_files
  // link too, and CRIU records its mode), each looked up by the kernel's start (the guard gap
  // may have moved ours) and end
  const filed = list.filter((v) => (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED | VMA.AREA_SYSVIPC)) !== 0 || (v.flags & MAP.HUGETLB) !== 0);
  const kernelStart = (v: CriuVma) => (v.guardGap ? v.start + PAGE_SIZE_BIGINT : v.start);
  let modes: Map<bigint, number> | undefined;
  try {
    modes = readMapFileModesOf(target, filed.map((v) => ({ start: kernelStart(v), end: v.end })), opts);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'EPERM' && code !== 'EACCES') throw e;
    modes = undefined;
  }
  if (modes)
    for (const v of filed) {
      const f = modes.get(kernelStart(v));
      if (f !== undefined) v.fdflags = f;
    }
  return list;
}

/** mmap's huge page size bits (log2 of the size << 26) */
const MAP_HUGE_MASK = 0x3f << 26;

/**
 * CRIU 4.2 takes an area's file from the area before it when both map the same file (dev, ino)
 * and that one kept its file open: the later area then gets the earlier one's status, but not
 * the huge page size bits its own classification would add. So of two areas in a row on one
 * object on huge pages kept the memfd way (a hugetlb memfd, shared anonymous huge pages), the
 * second has MAP_HUGETLB without size bits, as CRIU writes it. (Private anonymous huge pages
 * are classified without keeping the file: each area keeps its bits.)
 */
function hugetlbBorrowed(list: Vma[]): void {
  for (let i = 1; i < list.length; i++) {
    const v = list[i]!, p = list[i - 1]!;
    if ((v.flags & MAP.HUGETLB) === 0 || (v.status & VMA.AREA_MEMFD) === 0 || (p.status & VMA.AREA_MEMFD) === 0) continue;
    if (v.ino === p.ino && v.devMajor === p.devMajor && v.devMinor === p.devMinor) v.flags &= ~MAP_HUGE_MASK;
  }
}
