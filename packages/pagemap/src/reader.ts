/**
 * Reading dumped memory back: a pagemap image plus its pages image, following the `parent`
 * link of incremental dumps for entries flagged PE_PARENT (criu/pagemap.c semantics).
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { PAGE_SIZE, PE_LAZY, PE_PARENT, PE_PRESENT } from './constants.js';
import { readPagemapImage } from './_images.js';
import { pagemapFileName, pagesFileName, type PagemapKind } from './sink.js';

const PAGE = BigInt(PAGE_SIZE);
/** more pages than this in one entry (4 PiB) is a broken image */
const MAX_ENTRY_PAGES = 1n << 40n;

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

export class PageReader {
  private fd: number | null;
  private constructor(
    readonly pagemapPath: string,
    readonly pagesPath: string,
    readonly pagesId: number,
    readonly entries: readonly ReaderEntry[],
    readonly parent: PageReader | null,
    fd: number,
  ) {
    this.fd = fd;
  }

  static async open(o: OpenPageReaderOptions): Promise<PageReader> {
    const kind = o.kind ?? 'task';
    const pagemapPath = join(o.dir, pagemapFileName(kind, o.id));
    const img = await readPagemapImage(pagemapPath);
    const pagesPath = join(o.dir, pagesFileName(img.pagesId));
    const entries: ReaderEntry[] = [];
    let off = 0;
    let prevEnd = 0n;
    img.entries.forEach((e, i) => {
      const entry = i + 1; // image entry index (0 is the head)
      if (e.vaddr % PAGE !== 0n) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: vaddr ${e.vaddr.toString(16)} not page aligned`, { entry });
      if (e.nrPages <= 0n || e.nrPages > MAX_ENTRY_PAGES) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: bad nr_pages ${e.nrPages}`, { entry });
      if (e.vaddr < prevEnd) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: ${e.vaddr.toString(16)} overlaps the previous entry`, { entry });
      if (e.flags & ~(PE_PARENT | PE_LAZY | PE_PRESENT)) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: unknown flags 0x${e.flags.toString(16)}`, { entry });
      if (e.flags & PE_PARENT && e.flags & PE_PRESENT) throw bad('PAGEMAP_BAD_IMAGE', pagemapPath, `entry ${entry}: both in parent and present`, { entry });
      const nr = Number(e.nrPages);
      prevEnd = e.vaddr + e.nrPages * PAGE;
      const present = (e.flags & PE_PRESENT) !== 0;
      entries.push({ vaddr: e.vaddr, nrPages: nr, flags: e.flags, offset: present ? off : -1 });
      if (present) off += nr * PAGE_SIZE;
    });
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
    return new PageReader(pagemapPath, pagesPath, img.pagesId, entries, parent, fd);
  }

  /** Index of the entry containing vaddr, or -1. */
  private find(vaddr: bigint): number {
    let lo = 0;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.entries[mid];
      if (vaddr < e.vaddr) hi = mid - 1;
      else if (vaddr >= e.vaddr + BigInt(e.nrPages) * PAGE) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Whether every page of the range has an entry here (own data, lazy, or in parent). */
  covers(vaddr: bigint, nrPages: number): boolean {
    let a = vaddr;
    const end = vaddr + BigInt(nrPages) * PAGE;
    while (a < end) {
      const i = this.find(a);
      if (i < 0) return false;
      const e = this.entries[i];
      a = e.vaddr + BigInt(e.nrPages) * PAGE;
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
    const out: PageSegment[] = [];
    let a = vaddr;
    let left = nrPages;
    while (left > 0) {
      const i = this.find(a);
      if (i < 0) throw bad('PAGEMAP_NOT_FOUND', this.pagemapPath, `no entry for page ${a.toString(16)}`, { vaddr: a });
      const e = this.entries[i];
      const skip = Number((a - e.vaddr) / PAGE);
      const n = Math.min(left, e.nrPages - skip);
      if (e.flags & PE_PARENT) {
        if (!this.parent) throw bad('PAGEMAP_NO_PARENT', this.pagemapPath, `entry ${i + 1} (${e.vaddr.toString(16)}) is in the parent, but there is no parent image`, { entry: i + 1 });
        for (const s of this.parent.locate(a, n)) pushSegment(out, s);
      } else if (e.flags & PE_PRESENT) {
        pushSegment(out, { vaddr: a, nrPages: n, path: this.pagesPath, offset: e.offset + skip * PAGE_SIZE });
      } else {
        throw bad('PAGEMAP_NOT_PRESENT', this.pagemapPath, `entry ${i + 1} (${e.vaddr.toString(16)}) is lazy: its pages are not in the images`, { entry: i + 1 });
      }
      a += BigInt(n) * PAGE;
      left -= n;
    }
    return out;
  }

  /** Segments for every page with data in the images (parents resolved), in address order. */
  segments(): PageSegment[] {
    const out: PageSegment[] = [];
    for (const e of this.entries) {
      // (an entry with its data here is one segment as it stands: no search for it; a 4 GiB
      // area is ~4,600 entries, and looking each up again by address cost a lazy restore's plan
      // 14-43 ms of the 55-90 it took, on a loaded machine)
      if (e.flags & PE_PRESENT) pushSegment(out, { vaddr: e.vaddr, nrPages: e.nrPages, path: this.pagesPath, offset: e.offset });
      else if (e.flags & PE_PARENT) for (const s of this.locate(e.vaddr, e.nrPages)) pushSegment(out, s);
    }
    return out;
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

function pushSegment(out: PageSegment[], s: PageSegment): void {
  const last = out[out.length - 1];
  if (last && last.path === s.path && last.vaddr + BigInt(last.nrPages) * PAGE === s.vaddr && last.offset + last.nrPages * PAGE_SIZE === s.offset) {
    last.nrPages += s.nrPages;
  } else out.push({ ...s });
}

export function openPageReader(o: OpenPageReaderOptions): Promise<PageReader> {
  return PageReader.open(o);
}
