/**
 * Dirty memory tracking without soft-dirty: userfaultfd write-protect in async mode
 * (UFFD_FEATURE_WP_ASYNC, Linux 6.7+) read back and reset with PAGEMAP_SCAN (PAGE_IS_WRITTEN,
 * PM_SCAN_WP_MATCHING) on /proc/PID/pagemap.
 *
 * - Each task gets a userfaultfd made by itself (a userfaultfd acts on its creator's mm),
 *   taken by the dumper (pidfd_getfd) and closed in the task again. The dumper registers the
 *   task's private areas for WP on it; registering again an area already registered is a no-op.
 * - A page is "written" when PAGEMAP_SCAN says so. Areas the kernel does not let us register
 *   (another userfaultfd holds them: EBUSY; or any other refusal), areas registered only now
 *   and areas whose registration the kernel dropped (fork without EVENT_FORK, mremap without
 *   EVENT_REMAP) all report every page written: nothing written is ever left out.
 * - Between rounds the descriptors are held by a small detached process (the tracker), since
 *   closing the last reference unregisters the areas. Its pid, start time and which of its
 *   descriptors is which task's are in `crtools-mem-track.json` in the images directory of the
 *   round; the next round takes the descriptors from it (pidfd_getfd), hands them to a new
 *   tracker (pre-dump) or lets them go (the final dump), and stops the old one.
 * - The tracker exits by itself when all its tasks are gone.
 */
import { closeSync, existsSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CriuLog, firstEndingAfter, PAGE_SIZE_BIGINT } from '@crtools/common';
import { takeTaskUserfaultfd, type Infection } from '@crtools/parasite';
import { readStat } from '@crtools/procfs';
import { PAGE_IS, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING, pagemapScanAll, takeTaskFd, UFFD_FEATURE, UFFDIO_REGISTER_MODE, uffdApi, uffdRegister } from '@crtools/sys';

/** The file a tracked round leaves in its images directory. */
export const MEM_TRACK_FILE = 'crtools-mem-track.json';

interface TrackFile {
  version: 1;
  /** the images directory of the round that left it (real path) */
  dir: string;
  tracker: { pid: number; start: string };
  tasks: { pid: number; start: string; fd: number }[];
}

/** An area as the plan sees it (procfs VMA list). */
export interface TrackVma {
  start: bigint;
  end: bigint;
  status: number;
  flags: number;
}

/** What a task's tracking says: a pagemap filter for planDump (bit 55 = written) and what was not tracked. */
export interface TaskTrack {
  /** the task's pages were tracked since the parent round: a page may be left to the parent */
  tracked: boolean;
  /** [start, end) runs of pages that are written (or untracked), ascending */
  written: { start: bigint; end: bigint }[];
  /** areas that could not be registered, with why (logged) */
  untracked: { start: bigint; end: bigint; why: string }[];
  /**
   * [start, end) runs of ordinary present pages not written since the previous round (not the
   * zero page, not a file's, no swap entry or PTE marker), ascending: planDump's parentRuns,
   * which it leaves to the parent without reading their pagemap entries
   */
  parentRuns: { start: bigint; end: bigint }[];
}

function startOf(pid: number): string | undefined {
  try {
    return readStat(pid).starttime.toString();
  } catch {
    return undefined;
  }
}

// VMA status bits (CRIU's VMA_*), those areas the tracking leaves alone
const VMA_AREA_VSYSCALL = 1 << 2;
const VMA_AREA_VDSO = 1 << 3;
const VMA_AREA_VVAR = 1 << 12;
const VMA_AREA_AIORING = 1 << 13;
const VMA_AREA_GUARD = 1 << 14;
const VMA_FILE_SHARED = 1 << 7;
const VMA_ANON_SHARED = 1 << 8;
const VMA_AREA_SYSVIPC = 1 << 10;
const MAP_HUGETLB = 0x40000;

/** The areas worth registering: private memory a plan may leave to the parent. */
function trackable(v: TrackVma): boolean {
  const skip = VMA_AREA_VSYSCALL | VMA_AREA_VDSO | VMA_AREA_VVAR | VMA_AREA_AIORING | VMA_AREA_GUARD | VMA_FILE_SHARED | VMA_ANON_SHARED | VMA_AREA_SYSVIPC;
  return (v.status & skip) === 0 && (v.flags & MAP_HUGETLB) === 0;
}

/**
 * Is the process pid still the one that started at `start`, and not exited? A zombie (the
 * tracker is detached and reaped by whoever adopted it, which may take its time) holds no
 * descriptor any more.
 */
function same(pid: number, start: string): boolean {
  try {
    const s = readStat(pid);
    return s.starttime.toString() === start && s.state !== 'Z' && s.state !== 'X';
  } catch {
    return false;
  }
}

/**
 * One tracked round: the descriptors taken over from the previous round's tracker (if any) and
 * those made now, then handed on (pre-dump) or let go (dump).
 */
export class MemTracker {
  private readonly fds = new Map<number, number>(); // pid -> our descriptor
  private prev: TrackFile | undefined;
  private reset = false;

  private constructor(private readonly log: CriuLog, prev: TrackFile | undefined) {
    this.prev = prev;
  }

  /**
   * The tracking left by the round in `prevDir` (undefined: none). A tracker that is gone, or a
   * file that names another directory (copied images), gives no tracking: every page is written.
   */
  static open(log: CriuLog, prevDir: string | undefined): MemTracker {
    if (!prevDir) return new MemTracker(log, undefined);
    const file = path.join(prevDir, MEM_TRACK_FILE);
    if (!existsSync(file)) {
      log.warn('mem', `${prevDir}: no memory tracking left by that round: every page is written again`);
      return new MemTracker(log, undefined);
    }
    let t: TrackFile;
    try {
      t = JSON.parse(readFileSync(file, 'utf8')) as TrackFile;
    } catch {
      log.warn('mem', `${file}: unreadable: every page is written again`);
      return new MemTracker(log, undefined);
    }
    if (t.version !== 1 || t.dir !== realpathSync(prevDir) || !same(t.tracker.pid, t.tracker.start)) {
      log.warn('mem', `${prevDir}: its memory tracker is gone: every page is written again`);
      return new MemTracker(log, undefined);
    }
    return new MemTracker(log, t);
  }

  /**
   * Track task pid (frozen, infected) and say which of its pages were written since the previous
   * round. `resetAfter` write-protects them again as they are read (a pre-dump); the final dump
   * leaves them (a failed dump then loses nothing).
   */
  task(pid: number, inf: Infection, vmas: readonly TrackVma[], pagemapPath: string, resetAfter: boolean): TaskTrack {
    const start = startOf(pid);
    let fd: number | undefined;
    let tracked = false;
    const held = this.prev?.tasks.find((t) => t.pid === pid && t.start === start);
    if (held && this.prev) {
      try {
        fd = takeTaskFd(this.prev.tracker.pid, held.fd);
        tracked = true;
      } catch (e) {
        this.log.warn('mem', `task ${pid}: its userfaultfd could not be taken from the tracker (${(e as Error).message}): every page is written`);
      }
    }
    if (fd === undefined) {
      try {
        fd = takeTaskUserfaultfd(inf);
        const want = UFFD_FEATURE.WP_ASYNC | UFFD_FEATURE.WP_UNPOPULATED;
        const got = uffdApi(fd, want);
        if ((got & UFFD_FEATURE.WP_ASYNC) === 0n) throw new Error('the kernel lacks UFFD_FEATURE_WP_ASYNC');
      } catch (e) {
        if (fd !== undefined) closeSync(fd);
        this.log.warn('mem', `task ${pid}: no dirty tracking (${(e as Error).message}): its pages are all written at the next round`);
        return { tracked: false, written: [{ start: 0n, end: 1n << 63n }], untracked: [], parentRuns: [] };
      }
    }
    this.fds.set(pid, fd);
    const untracked: TaskTrack['untracked'] = [];
    const registered: TrackVma[] = [];
    for (const v of vmas) {
      if (!trackable(v)) continue;
      const err = uffdRegister(fd, v.start, v.end, UFFDIO_REGISTER_MODE.WP);
      if (err) {
        const why = err.errno === 16 ? 'the task registered it with a userfaultfd of its own' : `UFFDIO_REGISTER failed (errno ${err.errno})`;
        untracked.push({ start: v.start, end: v.end, why });
        this.log.warn('mem', `task ${pid}: area ${v.start.toString(16)}-${v.end.toString(16)} is not tracked (${why}): its pages are always written`);
        continue;
      }
      registered.push(v);
    }
    // read (and, for a pre-dump, reset) what was written, area by area; what is not registered
    // (or was just registered: no page protected yet) is written
    const pm = openSync(pagemapPath, 'r');
    const clean: { start: bigint; end: bigint }[] = [];
    const parentRuns: { start: bigint; end: bigint }[] = [];
    // the pages left to the parent: present, none of written, zero page, file page, swap entry
    // (or PTE marker)
    const notThese = PAGE_IS.WRITTEN | PAGE_IS.PFNZERO | PAGE_IS.FILE | PAGE_IS.SWAPPED;
    const toParent = (start: bigint, end: bigint) => {
      const last = parentRuns.at(-1);
      if (last && last.end === start) last.end = end;
      else parentRuns.push({ start, end });
    };
    try {
      if (tracked && !resetAfter) {
        // nothing is protected again (the final dump): one walk returns every page that is not
        // left to the parent (absent, or one of notThese), the written ones marked; the rest of
        // each area is the parent's (a scan for written pages alone takes a faster path in the
        // kernel, but the two scans together cost more than this one)
        for (const v of registered) {
          let at = v.start; // pages below are accounted for
          const regions = pagemapScanAll(pm, {
            start: v.start, end: v.end, flags: PM_SCAN_CHECK_WPASYNC,
            categoryInverted: PAGE_IS.PRESENT, categoryAnyofMask: PAGE_IS.PRESENT | notThese, returnMask: PAGE_IS.WRITTEN,
          }, { pid });
          let cleanFrom = v.start; // start of the run of pages not written that ends at `at`
          for (const g of regions) {
            if (g.start > at) toParent(at, g.start);
            if (g.categories & PAGE_IS.WRITTEN) {
              if (g.start > cleanFrom) clean.push({ start: cleanFrom, end: g.start });
              cleanFrom = g.end;
            }
            at = g.end;
          }
          if (at < v.end) toParent(at, v.end);
          if (cleanFrom < v.end) clean.push({ start: cleanFrom, end: v.end });
        }
      } else {
        // a pre-dump: the pages left to the parent found before the scan that protects the
        // written ones again
        for (const v of tracked ? registered : []) {
          for (const g of pagemapScanAll(pm, { start: v.start, end: v.end, categoryMask: PAGE_IS.PRESENT | notThese, categoryInverted: notThese, returnMask: PAGE_IS.PRESENT }, { pid })) toParent(g.start, g.end);
        }
        for (const v of registered) {
          const regions = pagemapScanAll(pm, {
            start: v.start, end: v.end,
            flags: PM_SCAN_CHECK_WPASYNC | (resetAfter ? PM_SCAN_WP_MATCHING : 0n),
            categoryMask: PAGE_IS.WRITTEN, returnMask: PAGE_IS.WRITTEN,
          }, { pid });
          // the complement within v: pages not written
          let at = v.start;
          for (const g of regions) {
            if (g.start > at) clean.push({ start: at, end: g.start });
            at = g.end > at ? g.end : at;
          }
          if (at < v.end) clean.push({ start: at, end: v.end });
        }
      }
    } finally {
      closeSync(pm);
    }
    if (resetAfter) this.reset = true;
    const written: { start: bigint; end: bigint }[] = [];
    let at = 0n;
    for (const c of clean) {
      if (c.start > at) written.push({ start: at, end: c.start });
      at = c.end;
    }
    written.push({ start: at, end: 1n << 63n });
    return { tracked, written, untracked, parentRuns };
  }

  /**
   * The pages of each tracked task written since the previous round, read while the tree runs:
   * an estimate for what the dump prepares before the freeze (the frozen scan is what counts).
   * Ordinary present pages below `end` that are written: an area the tracking does not hold
   * counts every page, as the dump writes them all.
   */
  writtenSoFar(end: bigint): Map<number, number> {
    const out = new Map<number, number>();
    const other = PAGE_IS.FILE | PAGE_IS.PFNZERO;
    for (const t of this.prev?.tasks ?? []) {
      if (startOf(t.pid) !== t.start) continue;
      let fd: number | undefined;
      try {
        fd = openSync(`/proc/${t.pid}/pagemap`, 'r');
        let pages = 0n;
        for (const g of pagemapScanAll(fd, { start: 0n, end, categoryMask: PAGE_IS.PRESENT | PAGE_IS.WRITTEN | other, categoryInverted: other, returnMask: PAGE_IS.PRESENT }, { pid: t.pid })) pages += (g.end - g.start) / PAGE_SIZE_BIGINT;
        out.set(t.pid, Number(pages));
      } catch {
        // gone, or not to be scanned now: no estimate for it
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    return out;
  }

  /**
   * Hand the descriptors to a new tracker and write the round's file in `dir` (a pre-dump that
   * went through); the previous tracker is stopped.
   */
  handOver(dir: string): void {
    const entries = [...this.fds.entries()];
    if (entries.length) {
      const child = process.getBuiltinModule('node:child_process').spawn(process.execPath, ['-e', TRACKER_SOURCE], {
        detached: true, cwd: '/',
        stdio: ['ignore', 'ignore', 'ignore', ...entries.map(([, fd]) => fd)],
        env: { CRTOOLS_TRACK_PIDS: entries.map(([pid]) => pid).join(',') },
      });
      child.unref();
      const tpid = child.pid;
      const tstart = tpid ? startOf(tpid) : undefined;
      if (tpid && tstart) {
        const file: TrackFile = {
          version: 1, dir: realpathSync(dir), tracker: { pid: tpid, start: tstart },
          tasks: entries.map(([pid], i) => ({ pid, start: startOf(pid) ?? '', fd: 3 + i })),
        };
        writeFileSync(path.join(dir, MEM_TRACK_FILE), JSON.stringify(file) + '\n', { mode: 0o600 });
        this.log.info(`mem: tracker ${tpid} holds the userfaultfds of ${entries.length} task(s)`);
      } else {
        this.log.warn('mem', 'the memory tracker did not start: the next round writes every page');
      }
    }
    this.closeOurs();
    this.stopPrevious();
  }

  /** The final dump went through (or tracking ends): let the descriptors go and stop the tracker, waiting for it (the areas are unregistered then). */
  async release(): Promise<void> {
    this.closeOurs();
    await this.stopPrevious(true);
  }

  /**
   * A round failed. If it had reset the written bits, the previous tracking no longer says what
   * changed since the parent: it is stopped (the next round writes every page).
   */
  async abort(): Promise<void> {
    this.closeOurs();
    if (this.reset) await this.stopPrevious(true);
  }

  private closeOurs(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private stopPrevious(wait: true): Promise<void>;
  private stopPrevious(): void;
  private stopPrevious(wait?: boolean): Promise<void> | void {
    const t = this.prev?.tracker;
    this.prev = undefined;
    if (!t || !same(t.pid, t.start)) return wait ? Promise.resolve() : undefined;
    try {
      process.kill(t.pid, 'SIGTERM');
    } catch {
      return wait ? Promise.resolve() : undefined;
    }
    if (!wait) return undefined;
    return (async () => {
      for (let i = 0; i < 200 && same(t.pid, t.start); i++) await new Promise((r) => setTimeout(r, 10));
    })();
  }
}

/** A pagemap function for planDump that sets bit 55 on written pages only. */
export function writtenFilter(pagemap: (start: bigint, n: number) => BigUint64Array, track: TaskTrack): (start: bigint, n: number) => BigUint64Array {
  return (start, n) => {
    const e = pagemap(start, n);
    // (this runs while the tree is frozen, over every page of every area: index arithmetic on
    // plain numbers and the soft-dirty bit set in the entries' high 32-bit halves, no bigint per page)
    const hi = new Uint32Array(e.buffer, e.byteOffset, n * 2);
    for (let i = 0; i < n; i++) hi[2 * i + 1] = hi[2 * i + 1]! & ~SOFT_DIRTY_HI;
    const end = start + BigInt(n) * PAGE_SIZE_BIGINT;
    for (let k = firstEndingAfter(track.written, start); k < track.written.length; k++) {
      const w = track.written[k]!;
      if (w.start >= end) break;
      const from = w.start > start ? Number((w.start - start) / PAGE_SIZE_BIGINT) : 0;
      const to = w.end < end ? Number((w.end - start) / PAGE_SIZE_BIGINT) : n;
      for (let i = from; i < to; i++) hi[2 * i + 1] = hi[2 * i + 1]! | SOFT_DIRTY_HI;
    }
    return e;
  };
}

/** bit 55 of a pagemap entry (what planDump's trackMem reads as "written since the parent"), within its high 32 bits (little-endian x86_64) */
const SOFT_DIRTY_HI = 1 << (55 - 32);

/**
 * The tracker: holds its inherited descriptors (3, 4, ...) and nothing else; exits on SIGTERM or
 * when none of its tasks is alive any more (gone, or a zombie).
 */
const TRACKER_SOURCE = `
process.title = 'crtools-mem-track';
const fs = require('node:fs');
const pids = (process.env.CRTOOLS_TRACK_PIDS || '').split(',').filter(Boolean).map(Number);
const alive = (p) => { try { const s = fs.readFileSync('/proc/' + p + '/stat', 'utf8'); const st = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3); return st !== 'Z' && st !== 'X'; } catch { return false; } };
process.on('SIGTERM', () => process.exit(0));
setInterval(() => { if (!pids.some(alive)) process.exit(0); }, 200);
`;

/** Remove a round's tracking file (its images are being replaced). */
export function removeTrackFile(dir: string): void {
  rmSync(path.join(dir, MEM_TRACK_FILE), { force: true });
}
