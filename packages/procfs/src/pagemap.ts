import { closeSync, openSync, readSync } from 'node:fs';
import { PAGE_SHIFT as SHIFT } from '@crtools/common';
import { mapProcError, procPath, type ProcOptions, type Target } from './read.js';

/** Bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst). */
export const PM = {
  PRESENT: 1n << 63n,
  SWAPPED: 1n << 62n,
  /** File page or shared anonymous page. */
  FILE: 1n << 61n,
  /** A page in a guard region (MADV_GUARD_INSTALL, kernel 6.15+). */
  GUARD: 1n << 58n,
  UFFD_WP: 1n << 57n,
  EXCLUSIVE: 1n << 56n,
  SOFT_DIRTY: 1n << 55n,
  PFN_MASK: (1n << 55n) - 1n,
  SWAP_TYPE_MASK: 0x1fn,
} as const;

const PAGE_SHIFT = BigInt(SHIFT);
const PAGE = 1n << PAGE_SHIFT;

/** One page's pagemap entry, decoded. */
export interface PagemapEntry {
  vaddr: bigint;
  present: boolean;
  swapped: boolean;
  softDirty: boolean;
  exclusive: boolean;
  /** File-backed or shared anonymous page. */
  file: boolean;
  uffdWp: boolean;
  /** Page frame number of a present page (0 without CAP_SYS_ADMIN). */
  pfn?: bigint;
  swapType?: number;
  swapOffset?: bigint;
}

/** The entries of a range [start, end), one u64 per page. */
export interface PagemapRange {
  start: bigint;
  end: bigint;
  entries: BigUint64Array;
}

/** An open /proc/PID/pagemap; read ranges with one pread each. */
export interface PagemapReader {
  readonly path: string;
  read(start: bigint, end: bigint): PagemapRange;
  /** The entries of `nrPages` pages from `start` (the shape @crtools/pagemap's planner asks for). */
  entries(start: bigint, nrPages: number): BigUint64Array;
  close(): void;
}

function checkRange(start: bigint, end: bigint): void {
  if (start < 0n || end < start || (start & (PAGE - 1n)) !== 0n || (end & (PAGE - 1n)) !== 0n) throw new RangeError(`bad page range ${start.toString(16)}-${end.toString(16)}`);
}

/** Open /proc/PID/pagemap. Missing process → CrtoolsError NO_SUCH_PROCESS. */
export function openPagemap(target: Target, opts?: ProcOptions): PagemapReader {
  const path = procPath(target, 'pagemap', opts);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw mapProcError(e, target, path, opts);
  }
  const read = (start: bigint, end: bigint): PagemapRange => {
    checkRange(start, end);
    const pages = Number((end - start) >> PAGE_SHIFT);
    const entries = new BigUint64Array(pages);
    const buf = Buffer.from(entries.buffer);
    let off = 0;
    // One pread covers the whole range; loop only if the kernel returns less.
    while (off < buf.length) {
      let n: number;
      try {
        n = readSync(fd, buf, off, buf.length - off, (start >> PAGE_SHIFT) * 8n + BigInt(off));
      } catch (e) {
        throw mapProcError(e, target, path, opts);
      }
      if (n <= 0) break;
      off += n;
    }
    return { start, end, entries: off === buf.length ? entries : entries.subarray(0, off >> 3) };
  };
  return {
    path,
    read,
    entries: (start: bigint, nrPages: number): BigUint64Array => read(start, start + (BigInt(nrPages) << PAGE_SHIFT)).entries,
    close(): void {
      closeSync(fd);
    },
  };
}

/**
 * The entries of `nrPages` pages from `start`, as PagemapReader.entries gives them, read ahead:
 * a request under `windowPages` reads that many entries at once and later requests inside them
 * are answered from it. A task of 60,000 small areas otherwise costs 60,000 preads (each area
 * asked for on its own), where a few dozen cover them. Only for a task that does not run
 * meanwhile (a frozen one): the entries are those of the read.
 */
export function readAheadEntries(reader: PagemapReader, windowPages = 4096): (start: bigint, nrPages: number) => BigUint64Array {
  let from = 0n;
  let to = 0n;
  let cache: BigUint64Array | undefined;
  return (start, nrPages) => {
    const end = start + (BigInt(nrPages) << PAGE_SHIFT);
    if (cache && start >= from && end <= to) {
      const i = Number((start - from) >> PAGE_SHIFT);
      return cache.subarray(i, i + nrPages);
    }
    if (nrPages >= windowPages) return reader.read(start, end).entries;
    const r = reader.read(start, start + (BigInt(windowPages) << PAGE_SHIFT));
    if (r.entries.length < nrPages) return reader.read(start, end).entries;
    cache = r.entries;
    from = start;
    to = start + (BigInt(r.entries.length) << PAGE_SHIFT);
    return cache.subarray(0, nrPages);
  };
}

/** Read the pagemap entries of [start, end) of a process. */
export function readPagemap(target: Target, start: bigint, end: bigint, opts?: ProcOptions): PagemapRange {
  const r = openPagemap(target, opts);
  try {
    return r.read(start, end);
  } finally {
    r.close();
  }
}

/** Decode one raw entry. */
export function decodePagemapEntry(vaddr: bigint, e: bigint): PagemapEntry {
  const out: PagemapEntry = {
    vaddr,
    present: (e & PM.PRESENT) !== 0n,
    swapped: (e & PM.SWAPPED) !== 0n,
    softDirty: (e & PM.SOFT_DIRTY) !== 0n,
    exclusive: (e & PM.EXCLUSIVE) !== 0n,
    file: (e & PM.FILE) !== 0n,
    uffdWp: (e & PM.UFFD_WP) !== 0n,
  };
  if (out.present) out.pfn = e & PM.PFN_MASK;
  else if (out.swapped) {
    out.swapType = Number(e & PM.SWAP_TYPE_MASK);
    out.swapOffset = (e & PM.PFN_MASK) >> 5n;
  }
  return out;
}

/** The record view: one decoded entry per page, skipping pages with no bit set unless `all`. */
export function* pagemapRecords(range: PagemapRange, opts?: { all?: boolean }): Generator<PagemapEntry> {
  const { entries } = range;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e === 0n && !opts?.all) continue;
    yield decodePagemapEntry(range.start + (BigInt(i) << PAGE_SHIFT), e);
  }
}

/** Runs of consecutive pages that are present or swapped: what a dump must copy. */
export function* pagemapRuns(range: PagemapRange, mask: bigint = PM.PRESENT | PM.SWAPPED): Generator<{ start: bigint; pages: number }> {
  const { entries } = range;
  let runStart = -1;
  for (let i = 0; i <= entries.length; i++) {
    const hit = i < entries.length && (entries[i]! & mask) !== 0n;
    if (hit && runStart < 0) runStart = i;
    else if (!hit && runStart >= 0) {
      yield { start: range.start + (BigInt(runStart) << PAGE_SHIFT), pages: i - runStart };
      runStart = -1;
    }
  }
}
