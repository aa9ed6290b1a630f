/**
 * Reading dumped memory back: a pagemap image plus its pages image, following the `parent`
 * link of incremental dumps for entries flagged PE_PARENT (criu/pagemap.c semantics).
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { PAGE_SIZE, PE_LAZY, PE_PARENT, PE_PRESENT } from './constants.js';
import { pagemapEntryFlags, pagemapEntryPages, readPagemapImage } from './_images.js';
import { lazyRanges, type LazyRange } from './lazy.js';
import type { PlanVma } from './plan.js';
import { pagemapFileName, pagesFileName, type PagemapKind } from './sink.js';

const PAGE = BigInt(PAGE_SIZE);
/** more pages than this in one entry (4 PiB) is a broken image */
const MAX_ENTRY_PAGES = 2 ** 40;

export interface ReaderEntry {
  vaddr: bigint;
  nrPages: number;
  flags: number;
  /** Byte offset of the entry's data in the pages image; -1 when the entry has no data there. */
  offset: number;
}

/** A run of pages whose data sits contiguously in one pages image file. */
export interface PageSegment {
  vaddr: bigint;
  nrPages: number;
  path: string;
  offset: number;
}

export interface OpenPageReaderOptions {
  /** Images directory. */
  dir: string;
  /** pid ('task') or shmid ('shmem'). */
  id: number | bigint;
  kind?: PagemapKind;
  /** Follow `<dir>/parent` (default true). */
  followParent?: boolean;
}

function bad(code: string, path: string, msg: string, ctx: Record<string, unknown> = {}): CrtoolsError {
  return new CrtoolsError(code, `${path}: ${msg}`, { exitCode: ExitCode.BAD_INPUT, context: { path, image: path, ...ctx } });
}

/**
 * A pagemap's entries as columns of numbers (index i: entry i + 1 of the image), in address
 * order: page-aligned addresses and page counts are exact as numbers, and nothing is made per
 * entry (a 4 GiB area is ~4,600 entries, which a lazy restore walks before its tasks run).
 */
export interface EntryColumns {
  count: number;
  vaddr: Float64Array;
  nrPages: Float64Array;
  flags: Uint32Array;
  /** byte offset of the entry's data in the pages image; -1: none there */
  offset: Float64Array;
}

export class PageReader {
  private fd: number | null;
  private list: ReaderEntry[] | undefined;
  private constructor(
    readonly pagemapPath: string,
    readonly pagesPath: string,
    readonly pagesId: number,
    readonly columns: EntryColumns,
    readonly parent: PageReader | null,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** The entries as objects (bigint addresses), made when first asked for: columns is the cheap view. */
  get entries(): readonly ReaderEntry[] {
    if (!this.list) {
      const c = this.columns;
      this.list = [];
      for (let i = 0; i < c.count; i++) this.list.push({ vaddr: BigInt(c.vaddr[i]!), nrPages: c.nrPages[i]!, flags: c.flags[i]!, offset: c.offset[i]! });
    }
    return this.list;
  }

  static async open(o: OpenPageReaderOptions): Promise<PageReader> {
    const kind = o.kind ?? 'task';
    const pagemapPath = join(o.dir, pagemapFileName(kind, o.id));
    const img = readPagemapImage(pagemapPath);
    const pagesPath = join(o.dir, pagesFileName(img.pagesId));
    const { count, vaddr } = img;
    const nrPages = new Float64Array(count);
    const flags = new Uint32Array(count);
    const offset = new Float64Array(count);
    let off = 0;
    let prevEnd = 0;
    for (let i = 0; i < count; i++) {
      const entry = i + 1; // image entry index (0 is the head)
      const a = vaddr[i]!;
      const nr = (nrPages[i] = pagemapEntryPages(img, i));
      const f = (flags[i] = pagemapEntryFlags(img, i));
      if (a !== a) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: no vaddr`, { entry });
      if (nr !== nr) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: no nr_pages`, { entry });
      if (a % PAGE_SIZE !== 0) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: vaddr ${a.toString(16)} not page aligned`, { entry });
      if (!(nr > 0) || nr > MAX_ENTRY_PAGES) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: bad nr_pages ${nr}`, { entry });
      if (a < prevEnd) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: ${a.toString(16)} overlaps the previous entry`, { entry });
      if (f & ~(PE_PARENT | PE_LAZY | PE_PRESENT)) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: unknown flags 0x${f.toString(16)}`, { entry });
      if (f & PE_PARENT && f & PE_PRESENT) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: both in parent and present`, { entry });
      prevEnd = a + nr * PAGE_SIZE;
      const present = (f & PE_PRESENT) !== 0;
      offset[i] = present ? off : -1;
      if (present) off += nr * PAGE_SIZE;
    }
    let fd: number;
    try {
      fd = openSync(pagesPath, 'r');
    } catch (err) {
      if (off === 0 && (err as NodeJS.ErrnoException).code === 'ENOENT') fd = -1;
      else throw bad('PAGEMAP_NO_PAGES', pagesPath, `cannot open pages image (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (fd >= 0) {
      const size = fstatSync(fd).size;
      if (size < off) {
        closeSync(fd);
        throw bad('PAGEMAP_PAGES_TRUNCATED', pagesPath, `holds ${size} bytes, ${pagemapPath} needs ${off}`, { offset: size });
      }
    }
    let parent: PageReader | null = null;
    const pdir = join(o.dir, 'parent');
    if ((o.followParent ?? true) && existsSync(join(pdir, pagemapFileName(kind, o.id)))) {
      try {
        parent = await PageReader.open({ ...o, dir: pdir });
      } catch (err) {
        if (fd >= 0) closeSync(fd);
        throw err;
      }
    }
    return new PageReader(pagemapPath, pagesPath, img.pagesId, { count, vaddr, nrPages, flags, offset }, parent, fd);
  }

  /** Index (in columns) of the entry holding page address vaddr, or -1. */
  entryAt(vaddr: bigint): number {
    return vaddr % PAGE === 0n ? this.find(Number(vaddr)) : -1;
  }

  /** Index of the entry containing page address a (a number), or -1. */
  private find(a: number): number {
    const c = this.columns;
    let lo = 0;
    let hi = c.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = c.vaddr[mid]!;
      if (a < s) hi = mid - 1;
      else if (a >= s + c.nrPages[mid]! * PAGE_SIZE) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Whether every page of the range has an entry here (own data, lazy, or in parent). */
  covers(vaddr: bigint, nrPages: number): boolean {
    const c = this.columns;
    let a = Number(vaddr - (vaddr % PAGE));
    const end = Number(vaddr) + nrPages * PAGE_SIZE;
    while (a < end) {
      const i = this.find(a);
      if (i < 0) return false;
      a = c.vaddr[i]! + c.nrPages[i]! * PAGE_SIZE;
    }
    return true;
  }

  /**
   * Where the data of `nrPages` pages from `vaddr` lives: one or more segments in this image
   * or its ancestors. Throws PAGEMAP_NOT_FOUND for pages that are in no entry, and
   * PAGEMAP_NOT_PRESENT for lazy pages whose data is not in the images.
   */
  locate(vaddr: bigint, nrPages: number): PageSegment[] {
    if (vaddr % PAGE !== 0n) throw bad('PAGEMAP_BAD_REQUEST', this.pagemapPath, `address ${vaddr.toString(16)} not page aligned`);
    const out: Seg[] = [];
    this.locateInto(out, Number(vaddr), nrPages);
    return out.map(toSegment);
  }

  private locateInto(out: Seg[], from: number, nrPages: number): void {
    const c = this.columns;
    let a = from;
    let left = nrPages;
    while (left > 0) {
      const i = this.find(a);
      if (i < 0) throw bad('PAGEMAP_NOT_FOUND', this.pagemapPath, `no entry for page ${a.toString(16)}`, { vaddr: BigInt(a) });
      const s = c.vaddr[i]!;
      const f = c.flags[i]!;
      const skip = (a - s) / PAGE_SIZE;
      const n = Math.min(left, c.nrPages[i]! - skip);
      if (f & PE_PARENT) {
        if (!this.parent) throw bad('PAGEMAP_NO_PARENT', this.pagemapPath, `entry ${i + 1} (${s.toString(16)}) is in the parent, but there is no parent image`, { entry: i + 1 });
        this.parent.locateInto(out, a, n);
      } else if (f & PE_PRESENT) {
        pushSeg(out, a, n, this.pagesPath, c.offset[i]! + skip * PAGE_SIZE);
      } else {
        throw bad('PAGEMAP_NOT_PRESENT', this.pagemapPath, `entry ${i + 1} (${s.toString(16)}) is lazy: its pages are not in the images`, { entry: i + 1 });
      }
      a += n * PAGE_SIZE;
      left -= n;
    }
  }

  /** Segments for every page with data in the images (parents resolved), in address order. */
  segments(): PageSegment[] {
    const c = this.columns;
    const out: Seg[] = [];
    for (let i = 0; i < c.count; i++) {
      // (an entry with its data here is one segment as it stands: no search for it; in numbers,
      // and joined before any object is made: ~4,600 entries of a 4 GiB area are a few segments)
      const f = c.flags[i]!;
      if (f & PE_PRESENT) pushSeg(out, c.vaddr[i]!, c.nrPages[i]!, this.pagesPath, c.offset[i]!);
      else if (f & PE_PARENT) this.locateInto(out, c.vaddr[i]!, c.nrPages[i]!);
    }
    return out.map(toSegment);
  }

  /**
   * A lazy restore's view of the entries, in one walk: the lazy ranges (lazyRanges: PE_LAZY pages
   * inside the areas that may be restored lazily) and the segments of every other page with data
   * in the images (as segments() has them). Nothing is made for a lazy entry but a longer range.
   */
  lazySplit(vmas: readonly Pick<PlanVma, 'start' | 'end' | 'flags' | 'status'>[]): { ranges: LazyRange[]; segments: PageSegment[] } {
    const c = this.columns;
    const out: Seg[] = [];
    const ranges = lazyRanges(c, vmas, (i, a, b) => {
      const f = c.flags[i]!;
      if (f & PE_PRESENT) pushSeg(out, a, (b - a) / PAGE_SIZE, this.pagesPath, c.offset[i]! + (a - c.vaddr[i]!));
      else if (f & PE_PARENT) this.locateInto(out, a, (b - a) / PAGE_SIZE);
    });
    return { ranges, segments: out.map(toSegment) };
  }

  /** Read pages from `vaddr` into `dest` (dest.length a multiple of the page size). */
  read(vaddr: bigint, dest: Buffer): void {
    if (dest.length % PAGE_SIZE !== 0) throw bad('PAGEMAP_BAD_REQUEST', this.pagemapPath, `buffer of ${dest.length} bytes is not whole pages`);
    let pos = 0;
    for (const s of this.locate(vaddr, dest.length / PAGE_SIZE)) {
      const r = s.path === this.pagesPath ? this : this.ancestorFor(s.path);
      r.readAt(s.offset, dest.subarray(pos, pos + s.nrPages * PAGE_SIZE));
      pos += s.nrPages * PAGE_SIZE;
    }
  }

  private ancestorFor(path: string): PageReader {
    for (let p = this.parent; p; p = p.parent) if (p.pagesPath === path) return p;
    throw new Error(`no reader for ${path}`);
  }

  private readAt(offset: number, dest: Buffer): void {
    if (this.fd === null || this.fd < 0) throw bad('PAGEMAP_CLOSED', this.pagesPath, 'reader is closed or has no pages image');
    let done = 0;
    while (done < dest.length) {
      const n = readSync(this.fd, dest, done, dest.length - done, offset + done);
      if (n <= 0) throw bad('PAGEMAP_PAGES_TRUNCATED', this.pagesPath, `short read at offset ${offset + done}`, { offset: offset + done });
      done += n;
    }
  }

  close(): void {
    if (this.fd !== null && this.fd >= 0) closeSync(this.fd);
    this.fd = null;
    this.parent?.close();
  }
}

/** A segment while it is being joined: its address a number */
interface Seg {
  vaddr: number;
  nrPages: number;
  path: string;
  offset: number;
}

function pushSeg(out: Seg[], vaddr: number, nrPages: number, path: string, offset: number): void {
  const last = out[out.length - 1];
  if (last && last.path === path && last.vaddr + last.nrPages * PAGE_SIZE === vaddr && last.offset + last.nrPages * PAGE_SIZE === offset) {
    last.nrPages += nrPages;
  } else out.push({ vaddr, nrPages, path, offset });
}

function toSegment(s: Seg): PageSegment {
  return { vaddr: BigInt(s.vaddr), nrPages: s.nrPages, path: s.path, offset: s.offset };
}

export function openPageReader(o: OpenPageReaderOptions): Promise<PageReader> {
  return PageReader.open(o);
}
