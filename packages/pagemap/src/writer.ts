/**
 * Streaming a planned dump into a sink: page data is pulled from the page source in bounded
 * chunks (one reusable buffer), so memory stays flat whatever the task's size.
 */
import { CrtoolsError, ExitCode } from '@crtools/common';
import { PAGE_SIZE, PE_PRESENT } from './constants.js';
import type { PlannedEntry } from './plan.js';
import { openLocalSink, type LocalSinkOptions, type PagemapSink, type SinkItem } from './sink.js';

export interface PageRange {
  vaddr: bigint;
  nrPages: number;
}

/**
 * Where page contents come from. The dump backs it with the parasite or process_vm_readv;
 * tests and benches with memory. `read` fills `dest` with the given ranges back to back
 * (dest.length is the sum of their sizes) and throws if any page cannot be read.
 */
export interface PageSource {
  read(ranges: readonly PageRange[], dest: Buffer): void | Promise<void>;
}

export interface WritePagesOptions {
  entries: Iterable<PlannedEntry> | AsyncIterable<PlannedEntry>;
  source: PageSource;
  sink: PagemapSink;
  /** Size of the one transfer buffer. Default 8 MiB; rounded down to whole pages. */
  chunkBytes?: number;
  /**
   * CRIU's READ-mode pre-dump (the task runs while its memory is copied): pages the source
   * cannot read any more (unmapped since planning) are left out, and their entries are split
   * around them, instead of failing the dump. Needs entries no larger than the chunk.
   */
  skipUnreadable?: boolean;
}

export interface WriteStats {
  entries: number;
  pagesWritten: number;
  bytesWritten: number;
}

const PAGE = BigInt(PAGE_SIZE);

/**
 * Write entries and their pages to the sink. Does not close the sink.
 * Two transfer buffers alternate: the source fills one while the sink writes the other, so at
 * most 2 × chunkBytes of page data is held at any time.
 */
export async function writePages(o: WritePagesOptions): Promise<WriteStats> {
  const chunkPages = Math.max(1, Math.floor((o.chunkBytes ?? 8 << 20) / PAGE_SIZE));
  const bufs = [Buffer.allocUnsafe(chunkPages * PAGE_SIZE), Buffer.allocUnsafe(chunkPages * PAGE_SIZE)];
  let which = 0;
  const stats: WriteStats = { entries: 0, pagesWritten: 0, bytesWritten: 0 };
  let items: SinkItem[] = [];
  let ranges: PageRange[] = [];
  // Each pending item that carries data gets its slice once the chunk is read.
  let slices: { item: SinkItem; off: number; len: number }[] = [];
  let fill = 0; // pages in the current buffer
  let prevEnd = -1n;
  let writing: Promise<void> | null = null;
  let writeError: unknown = null;

  const waitWrite = async () => {
    if (writing) await writing;
    writing = null;
    if (writeError) throw writeError;
  };

  const flush = async () => {
    const buf = bufs[which];
    let written = fill;
    if (fill > 0) {
      let failed: unknown = null;
      try {
        await o.source.read(ranges, buf.subarray(0, fill * PAGE_SIZE));
      } catch (e) {
        if (!o.skipUnreadable) throw e;
        failed = e;
      }
      for (const s of slices) s.item.data = buf.subarray(s.off, s.off + s.len);
      if (failed) {
        ({ items, written } = await rereadPageByPage(o.source, items, ranges, slices, buf, failed));
      }
    }
    // the other buffer is free again once the previous write is done
    await waitWrite();
    if (items.length) {
      const batch = items;
      writing = o.sink.write(batch).catch((e) => {
        writeError = e;
      });
    }
    which ^= 1;
    stats.bytesWritten += written * PAGE_SIZE;
    stats.pagesWritten += written;
    items = [];
    ranges = [];
    slices = [];
    fill = 0;
  };

  try {
    for await (const e of o.entries as AsyncIterable<PlannedEntry>) {
      if (typeof e.vaddr !== 'bigint' || e.vaddr % PAGE !== 0n || !Number.isInteger(e.nrPages) || e.nrPages <= 0) {
        throw new CrtoolsError('PAGEMAP_BAD_ENTRY', `entry ${stats.entries}: bad vaddr/nrPages`, {
          exitCode: ExitCode.BAD_INPUT,
          context: { entry: stats.entries },
        });
      }
      if (e.vaddr < prevEnd) {
        throw new CrtoolsError('PAGEMAP_BAD_ENTRY', `entry ${stats.entries}: ${e.vaddr.toString(16)} overlaps or is out of order`, {
          exitCode: ExitCode.BAD_INPUT,
          context: { entry: stats.entries, vaddr: e.vaddr },
        });
      }
      prevEnd = e.vaddr + BigInt(e.nrPages) * PAGE;
      stats.entries++;
      if (!(e.flags & PE_PRESENT)) {
        items.push({ entry: e });
        continue;
      }
      // in tolerant mode an entry is read in one batch, so that it can be split if need be
      if (o.skipUnreadable && e.nrPages <= chunkPages && fill + e.nrPages > chunkPages) await flush();
      let done = 0;
      let first = true;
      while (done < e.nrPages) {
        if (fill === chunkPages) await flush();
        const n = Math.min(e.nrPages - done, chunkPages - fill);
        const item: SinkItem = first ? { entry: e } : {};
        first = false;
        items.push(item);
        ranges.push({ vaddr: e.vaddr + BigInt(done) * PAGE, nrPages: n });
        slices.push({ item, off: fill * PAGE_SIZE, len: n * PAGE_SIZE });
        fill += n;
        done += n;
      }
    }
    await flush();
  } finally {
    // never leave a write running behind the caller's back
    if (writing) await (writing as Promise<void>);
  }
  await waitWrite();
  return stats;
}

/**
 * After a failed batch read: read page by page, keep what can be read, and replace each entry
 * by one entry per readable run (CRIU's aux_iov in page_xfer_predump_pages).
 */
async function rereadPageByPage(
  source: PageSource,
  items: SinkItem[],
  ranges: PageRange[],
  slices: { item: SinkItem; off: number; len: number }[],
  buf: Buffer,
  cause: unknown,
): Promise<{ items: SinkItem[]; written: number }> {
  const okAt = new Map<SinkItem, boolean[]>();
  for (let k = 0; k < slices.length; k++) {
    const { item, off } = slices[k];
    if (!item.entry) {
      throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', 'unreadable pages inside an entry larger than the transfer chunk', { cause });
    }
    const r = ranges[k];
    const ok: boolean[] = [];
    for (let p = 0; p < r.nrPages; p++) {
      try {
        await source.read([{ vaddr: r.vaddr + BigInt(p) * PAGE, nrPages: 1 }], buf.subarray(off + p * PAGE_SIZE, off + (p + 1) * PAGE_SIZE));
        ok.push(true);
      } catch {
        ok.push(false);
      }
    }
    okAt.set(item, ok);
  }
  const out: SinkItem[] = [];
  let written = 0;
  for (const it of items) {
    const ok = okAt.get(it);
    if (!ok || !it.entry || !it.data) {
      out.push(it);
      continue;
    }
    const e = it.entry;
    for (let p = 0; p < ok.length; ) {
      if (!ok[p]) {
        p++;
        continue;
      }
      let q = p;
      while (q < ok.length && ok[q]) q++;
      out.push({
        entry: { vaddr: e.vaddr + BigInt(p) * PAGE, nrPages: q - p, flags: e.flags },
        data: it.data.subarray(p * PAGE_SIZE, q * PAGE_SIZE),
      });
      written += q - p;
      p = q;
    }
  }
  return { items: out, written };
}

/** A page source over one Buffer that holds `[base, base + mem.length)`. */
export function bufferPageSource(base: bigint, mem: Buffer): PageSource {
  return {
    read(ranges, dest) {
      let off = 0;
      for (const r of ranges) {
        const start = Number(r.vaddr - base);
        const len = r.nrPages * PAGE_SIZE;
        if (start < 0 || start + len > mem.length) {
          throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', `no memory at ${r.vaddr.toString(16)}+${r.nrPages} pages`, {
            context: { vaddr: r.vaddr },
          });
        }
        mem.copy(dest, off, start, start + len);
        off += len;
      }
    },
  };
}

export interface WritePagemapOptions extends Omit<WritePagesOptions, 'sink'>, LocalSinkOptions {}

/**
 * Write pagemap-<id>.img and pages-<pagesId>.img into `dir` in one go (opens a local sink,
 * streams, closes it on every path).
 */
export async function writePagemap(o: WritePagemapOptions): Promise<WriteStats & { pagemapPath: string; pagesPath: string }> {
  const sink = await openLocalSink(o);
  try {
    const stats = await writePages({ ...o, sink });
    return { ...stats, pagemapPath: sink.pagemapPath, pagesPath: sink.pagesPath };
  } finally {
    await sink.close();
  }
}
