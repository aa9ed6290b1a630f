import { closeSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { CriuLog, nowMs } from '@crtools/common';
import { createImageWriter } from '@crtools/images';
import { PAGE_SIZE, PE_PRESENT, pagemapFileName, pagesFileName, procMemPageSource, type PlannedEntry, type ProcMemPageSource } from '@crtools/pagemap';
import { openPageTransfer, type Infection, type PageRun } from '@crtools/parasite';


/** Pages handed to the page transfer at a time (its commands take up to 512 runs each). */
const BATCH_BYTES = 32 << 20;

/** Up to this many bytes of pages, a task's pages are copied rather than spliced (see below). */
const COPY_BYTES = 512 << 10;

/**
 * Write pagemap-<pid>.img and pages-<pagesId>.img for planned entries, moving the pages with the
 * parasite's vmsplice into a pipe and splice(2) into the file (no copy through our memory).
 * The same image format as @crtools/pagemap's writer (pages_id head, then
 * {vaddr, compat_nr_pages: 0, flags, nr_pages}). A task with few pages (COPY_BYTES) has them
 * copied through /proc/PID/mem instead, in one read: the same bytes, no stop of the tracee.
 *
 * `unreadable`: the task's mappings without PROT_READ (sorted, disjoint), whose pages vmsplice
 * cannot take (EFAULT): those are read through /proc/PID/mem, which a tracer reads whatever the
 * protection (CRIU's parasite adds PROT_READ for its copy instead), and written in their place.
 */
export async function writePagesSpliced(
  inf: Infection,
  dir: string,
  pid: number,
  pagesId: number,
  entries: readonly PlannedEntry[],
  checkAbort: () => void,
  unreadable: readonly { start: bigint; end: bigint }[] = [],
  /** the task's pid in the images (the one inside its pid namespace), when not `pid`; `pid` is the real one, its /proc/PID/mem read */
  imagePid = pid,
  /** a file made for this task's pages before the freeze (PagesPrefill): it becomes the pages image */
  prefilled?: string,
): Promise<{ pagesWritten: number }> {
  const pm = createImageWriter(path.join(dir, pagemapFileName('task', imagePid)), 'PAGEMAP');
  const pagesPath = path.join(dir, pagesFileName(pagesId));
  // (a prefilled file is written over from its start and cut to the pages' length at the end)
  if (prefilled) renameSync(prefilled, pagesPath);
  const fd = openSync(pagesPath, prefilled ? 'r+' : 'w', 0o600);
  // knobs for the benchmark (bench/dump.mjs): CRTOOLS_DUMP_PIPE_BYTES (default 1 MiB, what a
  // pipe holds without CAP_SYS_RESOURCE), CRTOOLS_DUMP_STREAM=0 (one pipe-full per parasite
  // command, moved after it, instead of the tracee's vmsplice and our splice at once)
  // (a task with few pages gets one pipe of their size; one without any, none)
  const present = entries.reduce((n, e) => (e.flags & PE_PRESENT ? n + e.nrPages : n), 0) * PAGE_SIZE;
  // a task with few pages (up to CRTOOLS_DUMP_COPY_BYTES, default 512 KiB) has them copied through
  // /proc/PID/mem: the same bytes, without the pipe's three stops of the tracee (making it,
  // vmsplice, closing it), which cost more than the copy of a few dozen pages
  const copyAll = present <= Number(process.env['CRTOOLS_DUMP_COPY_BYTES'] ?? COPY_BYTES);
  const xfer = present === 0 || copyAll ? undefined : openPageTransfer(inf, Number(process.env['CRTOOLS_DUMP_PIPE_BYTES'] ?? 1 << 20), process.env['CRTOOLS_DUMP_STREAM'] !== '0', present);
  let pages = 0;
  let mem: ProcMemPageSource | undefined;
  try {
    await pm.write({ pages_id: pagesId });
    let runs: PageRun[] = [];
    let runPages = 0;
    const flush = () => {
      checkAbort();
      if (runs.length) xfer!.transfer(runs, fd);
      runs = [];
      runPages = 0;
    };
    // (a batch is one parasite command or more: up to 32 MiB of runs between two looks at the abort)
    const batchPages = Math.max(1, Math.floor(Math.max(BATCH_BYTES, xfer?.capacity ?? 0) / PAGE_SIZE));
    const copy = (vaddr: bigint, nrPages: number) => {
      flush(); // what vmsplice queued goes first: the file is written in order
      mem ??= procMemPageSource(pid);
      const chunk = Buffer.allocUnsafe(Math.min(nrPages, 256) * PAGE_SIZE);
      for (let done = 0; done < nrPages; ) {
        const n = Math.min(nrPages - done, 256);
        const buf = chunk.subarray(0, n * PAGE_SIZE);
        mem.read([{ vaddr: vaddr + BigInt(done * PAGE_SIZE), nrPages: n }], buf);
        for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
        done += n;
      }
    };
    let u = 0;
    const copied: PageRun[] = [];
    for (const e of entries) {
      await pm.write({ vaddr: e.vaddr, compat_nr_pages: 0, flags: e.flags, nr_pages: BigInt(e.nrPages) });
      if (!(e.flags & PE_PRESENT)) continue;
      pages += e.nrPages;
      if (copyAll) {
        copied.push({ vaddr: e.vaddr, nrPages: e.nrPages });
        continue;
      }
      // the entry in pieces: readable ones to vmsplice, unreadable ones copied
      const end = e.vaddr + BigInt(e.nrPages * PAGE_SIZE);
      for (let at = e.vaddr; at < end; ) {
        while (u < unreadable.length && unreadable[u]!.end <= at) u++;
        const x = unreadable[u];
        if (x && x.start <= at) {
          const stop = x.end < end ? x.end : end;
          copy(at, Number((stop - at) / BigInt(PAGE_SIZE)));
          at = stop;
          continue;
        }
        const stop = x && x.start < end ? x.start : end;
        const n = Number((stop - at) / BigInt(PAGE_SIZE));
        runs.push({ vaddr: at, nrPages: n });
        runPages += n;
        if (runPages >= batchPages) flush();
        at = stop;
      }
    }
    flush();
    if (copied.length) {
      // (read in one go: at most COPY_BYTES)
      const buf = Buffer.allocUnsafe(present);
      (mem ??= procMemPageSource(pid)).read(copied, buf);
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    }
    if (prefilled) ftruncateSync(fd, pages * PAGE_SIZE);
    await pm.close();
  } catch (e) {
    await pm.abort().catch(() => {});
    throw e;
  } finally {
    mem?.close();
    xfer?.close();
    closeSync(fd);
  }
  return { pagesWritten: pages };
}

/** A prefilled file's name in the dump's work directory: `.prefill-<pid>` */
const PREFILL = '.prefill-';

/**
 * Pages images made before the freeze. Where a task's written pages can be counted while the
 * tree runs (a dump after tracked rounds), a file of that size is written full of zeros first:
 * the pages of the file (tmpfs, or the page cache) are then allocated and touched before the
 * tree stops, and the frozen copy writes over them. A new page's first touch can cost many
 * times the copy (on this kind of VM, memory the guest freed and the host took back), and it
 * was the frozen copy that paid it. The count is taken twice, the second time after the first
 * fill, and the file grown by what was written in between again (the tree keeps writing until
 * it is frozen); what is not used is cut off when the pages are written, a file no task takes
 * is removed.
 */
export class PagesPrefill {
  private readonly files = new Map<number, string>();

  private constructor(private readonly dir: string) {}

  /** Prefill for the tasks `count` names (pid → pages written so far), in `dir`. */
  static make(dir: string, count: () => Map<number, number>, log: CriuLog): PagesPrefill {
    const p = new PagesPrefill(dir);
    const t0 = nowMs();
    const sizes = new Map<number, number>();
    try {
      const first = count();
      for (const [pid, pages] of first) if (pages) sizes.set(pid, p.fill(pid, 0, pages + PREFILL_SLACK));
      if (!sizes.size) return p;
      let grew = 0;
      for (const [pid, pages] of count()) {
        if (!pages) continue;
        const want = pages + Math.max(0, pages - (first.get(pid) ?? 0)) + PREFILL_SLACK;
        const have = sizes.get(pid) ?? 0;
        if (want > have) {
          sizes.set(pid, p.fill(pid, have, want));
          grew += want - have;
        }
      }
      const total = [...sizes.values()].reduce((a, b) => a + b, 0);
      log.debug(`pages prefilled before the freeze: ${mib(total)} MiB for ${sizes.size} task(s) (${mib(grew)} MiB of it after the second count) in ${(nowMs() - t0).toFixed(1)} ms`);
    } catch (e) {
      // (no room for them, say: the pages are written into new files, as without)
      log.debug(`pages not prefilled: ${(e as Error).message}`);
      p.dispose();
    }
    return p;
  }

  /** Pages [from, to) of pid's file written as zeros; its size in pages now. */
  private fill(pid: number, from: number, to: number): number {
    const file = path.join(this.dir, `${PREFILL}${pid}`);
    const fd = openSync(file, from ? 'r+' : 'w', 0o600);
    this.files.set(pid, file); // (removed by dispose() also when the writes below fail)
    try {
      const zeros = Buffer.alloc(Math.min(to - from, 256) * PAGE_SIZE);
      for (let at = from; at < to; ) {
        const n = Math.min(to - at, 256);
        writeSync(fd, zeros, 0, n * PAGE_SIZE, at * PAGE_SIZE);
        at += n;
      }
    } finally {
      closeSync(fd);
    }
    return to;
  }

  /** The file made for pid, handed over once (writePagesSpliced renames it). */
  take(pid: number): string | undefined {
    const f = this.files.get(pid);
    this.files.delete(pid);
    return f;
  }

  /** The files no task took removed (a task gone, or its pages written otherwise). */
  dispose(): void {
    for (const f of this.files.values()) rmSync(f, { force: true });
    this.files.clear();
  }
}

/** Pages the prefill adds to a task's count (written after the last count, before the freeze). */
const PREFILL_SLACK = 32;

const mib = (pages: number) => (pages * PAGE_SIZE / 2 ** 20).toFixed(1);
