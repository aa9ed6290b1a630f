/**
 * Dumping a shared memory object (anonymous shared mapping, memfd) from a file that exposes
 * its contents: /proc/PID/map_files/<start>-<end> for a shared anonymous VMA (root), or the
 * memfd itself. Writes pagemap-shmem-<shmid>.img + pages-<pages_id>.img with offsets within
 * the object as addresses (criu/shmem.c do_dump_one_shmem).
 *
 * CRIU skips the object's holes using lseek(SEEK_DATA), which Node does not offer; we skip
 * pages whose contents are all zero instead. That is a superset of the holes (a written page
 * of zeros is skipped too) and restores the same bytes, since a restored object starts zeroed.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { PAGE_SIZE } from './constants.js';
import { planShmem, type DumpPlan } from './plan.js';
import { writePagemap, writePages, type PageSource, type WriteStats } from './writer.js';
import type { PagemapSink } from './sink.js';
import type { PageReader } from './reader.js';

export interface DumpShmemFileOptions {
  /** File holding the object's contents from offset 0 (named in errors when `contents` is given). */
  path: string;
  /** The object's contents themselves, read rather than the file (a SysV segment copied out). */
  contents?: Buffer;
  /** Object size in pages (CRIU: the largest pgoff + length over the mappings). */
  nrPages: number;
  dir: string;
  shmid: number | bigint;
  pagesId: number;
  hasParent?: boolean;
  trackMem?: boolean;
  parent?: PageReader | null | 'auto';
  chunkBytes?: number;
  /** Send the pagemap there (a page server's) instead of writing `dir`'s files (pagesId is then unused). */
  sink?: PagemapSink;
}

function readFull(fd: number, path: string, buf: Buffer, pos: number): number {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = readSync(fd, buf, done, buf.length - done, pos + done);
    } catch (e) {
      throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', `${path}: cannot read at ${pos + done} (${(e as NodeJS.ErrnoException).code ?? e})`, {
        exitCode: ExitCode.FAILED,
        context: { path, offset: pos + done },
        cause: e,
      });
    }
    if (n === 0) break; // end of file: the rest reads as zeros
    done += n;
  }
  buf.fill(0, done);
  return done;
}

export async function dumpShmemFile(o: DumpShmemFileOptions): Promise<{ plan: DumpPlan; written: WriteStats & { pagemapPath: string; pagesPath: string } }> {
  let fd = -1;
  try {
    if (!o.contents) fd = openSync(o.path, 'r');
  } catch (e) {
    throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', `${o.path}: cannot open (${(e as NodeJS.ErrnoException).code ?? e})`, { context: { path: o.path }, cause: e });
  }
  const readAt = (b: Buffer, pos: number): void => {
    if (!o.contents) {
      readFull(fd, o.path, b, pos);
      return;
    }
    const n = Math.max(0, Math.min(b.length, o.contents.length - pos));
    if (n) o.contents.copy(b, 0, pos, pos + n);
    b.fill(0, n);
  };
  try {
    // pass 1: which pages hold anything but zeros
    const nonzero = new Uint8Array(o.nrPages);
    const step = 256;
    const buf = Buffer.allocUnsafe(step * PAGE_SIZE);
    for (let p = 0; p < o.nrPages; p += step) {
      const k = Math.min(step, o.nrPages - p);
      const b = buf.subarray(0, k * PAGE_SIZE);
      readAt(b, p * PAGE_SIZE);
      for (let j = 0; j < k; j++) {
        const page = b.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE);
        // compare 8 bytes at a time
        const w = new BigUint64Array(page.buffer, page.byteOffset, PAGE_SIZE / 8);
        let any = false;
        for (let x = 0; x < w.length; x++) if (w[x] !== 0n) { any = true; break; }
        nonzero[p + j] = any ? 1 : 0;
      }
    }
    const plan = await planShmem({ nrPages: o.nrPages, pageState: (pfn) => (nonzero[pfn] ? 'dirty' : 'zero'), hasParent: o.hasParent, trackMem: o.trackMem });
    // pass 2: the pages themselves, addresses being offsets in the object
    const source: PageSource = {
      read(ranges, dest) {
        let off = 0;
        for (const r of ranges) {
          const len = r.nrPages * PAGE_SIZE;
          readAt(dest.subarray(off, off + len), Number(r.vaddr));
          off += len;
        }
      },
    };
    const written = o.sink
      ? { ...(await writePages({ entries: plan.entries, source, sink: o.sink, chunkBytes: o.chunkBytes })), pagemapPath: '', pagesPath: '' }
      : await writePagemap({ dir: o.dir, id: o.shmid, kind: 'shmem', pagesId: o.pagesId, entries: plan.entries, source, parent: o.parent, chunkBytes: o.chunkBytes });
    return { plan, written };
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
