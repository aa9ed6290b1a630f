/**
 * `criu lazy-pages`: the daemon a lazy restore hands its tasks' userfaultfds to (lazy-socket.ts).
 * It answers each missing-page fault with UFFDIO_COPY of the page from the images (parents of a
 * pre-dump chain followed by the PageReader) or UFFDIO_ZEROPAGE where the images have no page
 * (a page never touched before the dump), copies everything else in the background, and follows
 * what the tasks do meanwhile (UFFD_EVENT_FORK: the child gets the missing set of its parent as
 * of the fork; REMAP: the missing pages move with the area, still read from where the images
 * have them; REMOVE/UNMAP: the pages are dropped, a later fault there is a zero page). It ends
 * once every task's memory is complete (or the task is gone) and the restore said it finished.
 *
 * A watchdog (a small process of its own) holds a copy of every userfaultfd while the daemon
 * works: should the daemon die first, the kernel does not release the registrations (which would
 * let the missing pages read as zeros) and the watchdog kills the restored tasks, with one line.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CrtoolsError, ExitCode, PAGE_SIZE, PAGE_SIZE_BIGINT, isNativeSysError, silentLogger, type Logger } from '@crtools/common';
import { judge, loadKerndat } from '@crtools/kerndat';
import { innermostIds, readChildren } from '@crtools/procfs';
import { lazyRanges, openPageReader, type PageReader } from '@crtools/pagemap';
import { big, readImage, type Obj } from '@crtools/files/plan';
import { acceptConnection, closeFd, openPipe, peerCredentials, pollInput, recvExact, streamListen, UFFD_EVENT, uffdCopy, uffdReadMessages, uffdZeroPage, type UffdMessage } from '@crtools/sys';
import { fileIdent, LAZY_PAGES_RESTORE_FINISHED, LAZY_PAGES_SOCKET, receiveTask, removeLazySplits, writeLazySplits, type LazySplit } from './lazy-socket.js';
import { isGuardEntry } from './plan/memory.js';
import { RemotePages } from './lazy-remote.js';

const PAGE = PAGE_SIZE_BIGINT;
/** background copies: from 64 KiB, growing while no fault comes, up to 4 MiB (CRIU: the same idea) */
const XFER_MIN = 16;
const XFER_MAX = 1024;

export interface LazyPagesOptions {
  /** images directory */
  dir: string;
  /** where lazy-pages.socket is (default: dir) */
  workDir?: string;
  logger?: Logger;
  /** called once the socket listens (criu's --status-fd) */
  onListening?: () => void;
  /** no watchdog (unit use) */
  noWatchdog?: boolean;
  /** --page-server --address --port: the lazy pages come from this page server, not the local pages images */
  pageServer?: { address: string; port: number };
}

export interface LazyPagesResult {
  tasks: number;
  /** pages copied in (on fault and in the background), pages answered with a zero page, faults served */
  copied: number;
  zeroed: number;
  faults: number;
}

/** A missing range: the pages at [start, end) come from image address img. */
interface Iov {
  start: bigint;
  end: bigint;
  img: bigint;
}

interface Lpi {
  /** the task's pid in the images (inside its pid namespace), as the restore names it */
  pid: number;
  /** its pid here, found among the restore's descendants (undefined: not found, never killed) */
  realPid: number | undefined;
  uffd: number;
  /** fills the buffer with the pages from image address img (the local images or the page server) */
  fetch: (img: bigint, dest: Buffer) => void;
  iovs: Iov[];
  exited: boolean;
  xfer: number;
  /** faults answered EAGAIN (an event was pending): served again on the next round */
  retry: bigint[];
}

/** The daemon: listen, take the tasks, serve them; resolves when every task's memory is complete. */
export async function lazyPages(o: LazyPagesOptions): Promise<LazyPagesResult> {
  requireLazyPages();
  const log = o.logger ?? silentLogger;
  const dir = resolve(o.dir);
  const work = resolve(o.workDir ?? dir);
  log.debug(`lazy-pages: this process started ${(process.uptime() * 1000).toFixed(1)} ms ago; wall clock ${new Date().toISOString()}`);
  const pstree = (await readImage(dir, 'pstree.img', 'PSTREE'))!;
  // each task's lazy ranges, found before the restore connects: a task runs (and faults) once it
  // is handed over, and its pagemap (~4,600 entries for 4 GiB) was read and cut into ranges
  // after the hand-over, in the restored workload's time
  const readers: PageReader[] = [];
  const prepared = new Map<number, { reader: PageReader; iovs: { start: bigint; end: bigint; img: bigint }[] }>();
  const splits: LazySplit[] = [];
  try {
    for (const e of pstree as Obj[]) {
      const id = Number(e.pid);
      if (!existsSync(join(dir, `mm-${id}.img`))) continue; // a zombie: no memory
      const mmPath = join(dir, `mm-${id}.img`);
      const mmIdent = fileIdent(mmPath);
      const mm = (await readImage(dir, `mm-${id}.img`, 'MM'))!;
      // (the areas as the restore's plan takes them: guard regions are no areas)
      const vmas = (((mm[0] as Obj | undefined)?.vmas ?? []) as Obj[]).filter((v) => !isGuardEntry(v)).map((v) => ({ start: big(v.start), end: big(v.end), flags: Number(v.flags), status: Number(v.status) >>> 0 }));
      const pagemapIdent = fileIdent(join(dir, `pagemap-${id}.img`));
      const reader = await openPageReader({ dir, id });
      readers.push(reader);
      // the restore's split too (what it fills, what it leaves to us), sent to it once it
      // connects: one walk of the pagemap for both sides. Not for a pre-dump chain's task (the
      // parents' images would have to be the same files as well): the restore walks those.
      let split: ReturnType<PageReader['lazySplit']> | undefined;
      try {
        split = reader.parent ? undefined : reader.lazySplit(vmas);
      } catch {
        split = undefined; // (the restore's own walk says what is wrong)
      }
      const ranges = split?.ranges ?? lazyRanges(reader.columns, vmas);
      if (split && mmIdent && pagemapIdent) splits.push({ pid: id, pagemap: pagemapIdent, mm: mmIdent, pagesPath: reader.pagesPath, entries: reader.columns.count, ranges: split.ranges, segments: split.segments });
      prepared.set(id, { reader, iovs: ranges.map((r) => ({ start: r.start, end: r.end, img: r.start })) });
    }
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
  // (before the socket exists: a restore that finds the socket finds them too)
  if (writeLazySplits(work, splits)) log.debug(`lazy-pages: the lazy splits of ${splits.length} task(s) written for the restore`);
  const sockPath = join(work, LAZY_PAGES_SOCKET);
  let conn = -1;
  let lfd = -1;
  try {
    if (existsSync(sockPath)) unlinkSync(sockPath);
    lfd = streamListen(sockPath);
    log.info(`Waiting for incoming connections on ${sockPath}`);
    o.onListening?.();
    for (;;) {
      pollInput([lfd], -1);
      const c = acceptConnection(lfd);
      if (c !== null) {
        conn = c;
        log.debug(`lazy-pages: the restore connected; wall clock ${new Date().toISOString()}`);
        break;
      }
    }
  } catch (e) {
    for (const r of readers) r.close();
    removeLazySplits(work);
    throw e;
  } finally {
    if (lfd >= 0) closeFd(lfd);
    try {
      unlinkSync(sockPath);
    } catch {
      /* gone */
    }
  }

  const lpis: Lpi[] = [];
  const stats: LazyPagesResult = { tasks: 0, copied: 0, zeroed: 0, faults: 0 };
  let watchdog: Watchdog | undefined;
  let remote: RemotePages | undefined;
  try {
    // the restore's process: the tasks it hands over are its descendants (their pids in the
    // images are those inside their pid namespace, which may be one of their own)
    let restorer: number | undefined;
    try {
      restorer = peerCredentials(conn).pid;
    } catch {
      restorer = undefined;
    }
    for (let i = 0; i < pstree.length; i++) {
      const t = receiveTask(conn);
      if (!t) throw new CrtoolsError('LAZY_PAGES_PROTOCOL', `lazy-pages: the restore closed the connection after ${i} of ${pstree.length} tasks`, { exitCode: ExitCode.FAILED });
      if (t.uffd === undefined) continue; // a zombie
      const ready = prepared.get(t.pid);
      if (!ready) throw new CrtoolsError('LAZY_PAGES_PROTOCOL', `lazy-pages: the restore handed over pid ${t.pid}, which has no mm-${t.pid}.img in ${dir}`, { exitCode: ExitCode.FAILED });
      const { reader, iovs } = ready;
      const pages = iovs.reduce((n, v) => n + Number((v.end - v.start) / PAGE), 0);
      log.debug(`pid ${t.pid}: ${pages} lazy page(s) in ${iovs.length} range(s)`);
      const pid = t.pid;
      const fetch = o.pageServer ? (img: bigint, dest: Buffer) => remote!.get(pid, img, dest) : (img: bigint, dest: Buffer) => reader.read(img, dest);
      const realPid = restorer ? realPidOf(restorer, pid) : undefined;
      if (realPid === undefined) log.warn(`pid ${pid}: not found among the restore's descendants: the watchdog cannot kill it should this daemon die`);
      lpis.push({ pid, realPid, uffd: t.uffd, fetch, iovs, exited: false, xfer: XFER_MIN, retry: [] });
      stats.tasks++;
    }
    log.debug(`lazy-pages: ${stats.tasks} task(s) taken over`);
    if (!o.noWatchdog) watchdog = startWatchdog(lpis.map((l) => l.uffd), lpis.flatMap((l) => (l.realPid === undefined ? [] : [l.realPid])));
    // (as CRIU's: connected once the tasks are ours; a page server not there ends the restore)
    if (o.pageServer) {
      log.info(`Connecting to the page server at ${o.pageServer.address}:${o.pageServer.port}`);
      remote = await RemotePages.connect(o.pageServer.address, o.pageServer.port);
    }
    log.info(`Serving ${stats.tasks} task(s)`);
    serve(lpis, conn, stats, log);
    if (remote) {
      log.info('Disconnect from the page server');
      remote.close();
    }
    watchdog?.done();
    log.info(`lazy-pages: ${stats.tasks} task(s) complete: ${stats.copied} page(s) copied, ${stats.zeroed} zero page(s), ${stats.faults} fault(s)`);
    return stats;
  } finally {
    remote?.abort();
    watchdog?.close();
    // (the restore read them, if it did, before it handed its tasks over)
    removeLazySplits(work);
    if (conn >= 0) closeFd(conn);
    for (const l of lpis) if (l.uffd >= 0) closeFd(l.uffd);
    for (const r of readers) r.close();
  }
}

/** The loop: faults and events first, then one background piece; until every task is complete. */
function serve(lpis: Lpi[], conn: number, stats: LazyPagesResult, log: Logger): void {
  let finished = false;
  let connOpen = true;
  for (;;) {
    const live = lpis.filter((l) => !l.exited);
    const pending = live.some((l) => l.iovs.length > 0 || l.retry.length > 0);
    if (finished && !pending) return;
    if (!live.length && finished) return;
    const fds = [...live.map((l) => l.uffd), ...(connOpen ? [conn] : [])];
    if (!fds.length) return;
    // (until the restore has resumed every task, faults only: no background copy competes with
    // the restore's last steps and the tasks' first ones for a CPU; as CRIU's daemon)
    const rev = pollInput(fds, pending && finished ? 0 : 200);
    let busy = false;
    live.forEach((l, k) => {
      const r = rev[k]!;
      if (r & 8 /* POLLERR: the mm is gone */ && !(r & 1)) {
        exit(l);
        return;
      }
      if (!(r & 1)) return;
      const msgs = uffdReadMessages(l.uffd);
      if (msgs === null) {
        exit(l);
        return;
      }
      for (const m of msgs) {
        busy = true;
        handle(l, m, lpis, stats, log);
      }
    });
    if (connOpen && rev[fds.length - 1]! & (1 | 16)) {
      const w = recvExact(conn, 4);
      for (const fd of w.fds) closeFd(fd);
      if (w.data.length < 4) {
        connOpen = false;
        if (!finished) throw new CrtoolsError('LAZY_PAGES_RESTORE_FAILED', 'lazy-pages: the restore closed the connection before it finished (did it fail?)', { exitCode: ExitCode.FAILED });
      } else if (w.data.readUInt32LE(0) !== LAZY_PAGES_RESTORE_FINISHED) {
        throw new CrtoolsError('LAZY_PAGES_PROTOCOL', `lazy-pages: unexpected word 0x${w.data.readUInt32LE(0).toString(16)} from the restore`, { exitCode: ExitCode.FAILED });
      } else {
        finished = true;
        connOpen = false;
        log.debug(`lazy-pages: the restore finished (${stats.faults} fault(s) served, ${stats.copied} page(s) copied so far)`);
      }
    }
    // faults that met a pending event: again, now that the events are read
    for (const l of live) {
      const waiting = l.retry.splice(0);
      for (const a of waiting) if (!serveFault(l, a, stats)) l.retry.push(a);
      if (l.retry.length) busy = true;
    }
    if (busy || !finished) continue;
    // nothing asked: one background piece for the first task with pages missing
    const l = live.find((x) => x.iovs.length > 0);
    if (l) {
      const v = l.iovs[0]!;
      const n = Math.min(l.xfer, Number((v.end - v.start) / PAGE));
      l.xfer = Math.min(XFER_MAX, l.xfer * 2);
      copyIn(l, v.start, n, stats);
    }
  }
}

function exit(l: Lpi): void {
  l.exited = true;
  l.iovs = [];
  closeFd(l.uffd);
  l.uffd = -1;
}

function handle(l: Lpi, m: UffdMessage, lpis: Lpi[], stats: LazyPagesResult, log: Logger): void {
  switch (m.event) {
    case UFFD_EVENT.PAGEFAULT: {
      const a = (m as { address: bigint }).address & ~(PAGE - 1n);
      if (!stats.faults++) log.debug(`lazy-pages: pid ${l.pid}: first fault, at ${a.toString(16)}`);
      l.xfer = XFER_MIN;
      if (!serveFault(l, a, stats)) l.retry.push(a);
      return;
    }
    case UFFD_EVENT.FORK: {
      const ufd = (m as { ufd: number }).ufd;
      log.debug(`pid ${l.pid}: fork, the child's userfaultfd is ${ufd}`);
      lpis.push({ pid: l.pid, realPid: undefined, uffd: ufd, fetch: l.fetch, iovs: l.iovs.map((v) => ({ ...v })), exited: false, xfer: XFER_MIN, retry: [] });
      return;
    }
    case UFFD_EVENT.REMAP: {
      const r = m as { from: bigint; to: bigint; len: bigint };
      log.debug(`pid ${l.pid}: userfaultfd events: remap ${r.from.toString(16)} -> ${r.to.toString(16)} (${r.len} bytes)`);
      const moved: Iov[] = [];
      cut(l, r.from, r.from + r.len, (v) => moved.push({ start: v.start - r.from + r.to, end: v.end - r.from + r.to, img: v.img }));
      // (an area moved over another drops what was there: the kernel sends that as UNMAP first)
      l.iovs = [...l.iovs, ...moved].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
      return;
    }
    case UFFD_EVENT.REMOVE:
    case UFFD_EVENT.UNMAP: {
      const r = m as { start: bigint; end: bigint };
      log.debug(`pid ${l.pid}: userfaultfd events: ${m.event === UFFD_EVENT.UNMAP ? 'unmap' : 'remove'} ${r.start.toString(16)}-${r.end.toString(16)}`);
      cut(l, r.start, r.end, () => undefined);
      return;
    }
    default:
      log.warn(`pid ${l.pid}: userfaultfd event 0x${m.event.toString(16)} ignored`);
  }
}

function find(l: Lpi, a: bigint): Iov | undefined {
  return l.iovs.find((v) => v.start <= a && a < v.end);
}

/** Takes [a, b) out of the missing set; each piece taken is given to `taken`. */
function cut(l: Lpi, a: bigint, b: bigint, taken: (v: Iov) => void): void {
  const out: Iov[] = [];
  for (const v of l.iovs) {
    if (v.end <= a || v.start >= b) {
      out.push(v);
      continue;
    }
    if (v.start < a) out.push({ start: v.start, end: a, img: v.img });
    const s = v.start > a ? v.start : a;
    const e = v.end < b ? v.end : b;
    taken({ start: s, end: e, img: v.img + (s - v.start) });
    if (v.end > b) out.push({ start: b, end: v.end, img: v.img + (b - v.start) });
  }
  l.iovs = out;
}

/**
 * UFFDIO_COPY of n pages from a (all within one missing range) out of the images. False when the
 * kernel said EAGAIN (the task's layout is changing: an event waits to be read first); what was
 * copied is taken out of the missing set either way.
 */
function copyIn(l: Lpi, a: bigint, n: number, stats: LazyPagesResult): boolean {
  const v = find(l, a);
  if (!v) return true; // gone meanwhile (unmapped, or copied)
  const buf = Buffer.allocUnsafe(n * PAGE_SIZE);
  l.fetch(v.img + (a - v.start), buf);
  let done = 0;
  let again = false;
  while (done < buf.length) {
    const r = uffdCopy(l.uffd, a + BigInt(done), done ? buf.subarray(done) : buf);
    if (!isNativeSysError(r)) {
      done += r;
      continue;
    }
    if (r.errno === 3 /* ESRCH */ || r.errno === 28 /* ENOSPC */) {
      exit(l);
      return true;
    }
    if (r.errno === 11 /* EAGAIN */) {
      again = true;
      break;
    }
    if (r.errno === 17 /* EEXIST: there already */) {
      done += PAGE_SIZE;
      continue;
    }
    throw new CrtoolsError('LAZY_PAGES_COPY', `lazy-pages: pid ${l.pid}: UFFDIO_COPY at ${(a + BigInt(done)).toString(16)} failed: errno ${r.errno}`, { exitCode: ExitCode.FAILED, context: { pid: l.pid } });
  }
  stats.copied += done / PAGE_SIZE;
  if (done) cut(l, a, a + BigInt(done), () => undefined);
  return !again;
}

/** UFFDIO_ZEROPAGE at a; false on EAGAIN (as copyIn). */
function zeroIn(l: Lpi, a: bigint, stats: LazyPagesResult): boolean {
  const r = uffdZeroPage(l.uffd, a, a + PAGE);
  if (!isNativeSysError(r)) {
    stats.zeroed++;
    return true;
  }
  if (r.errno === 3 || r.errno === 28) {
    exit(l);
    return true;
  }
  if (r.errno === 11) return false;
  if (r.errno === 17) return true;
  throw new CrtoolsError('LAZY_PAGES_COPY', `lazy-pages: pid ${l.pid}: UFFDIO_ZEROPAGE at ${a.toString(16)} failed: errno ${r.errno}`, { exitCode: ExitCode.FAILED, context: { pid: l.pid } });
}

/** Serve a fault at a (page aligned); false: to be tried again once the pending events are read. */
function serveFault(l: Lpi, a: bigint, stats: LazyPagesResult): boolean {
  if (l.exited) return true;
  return find(l, a) ? copyIn(l, a, 1, stats) : zeroIn(l, a, stats);
}

/**
 * The pid here of the task the restore (pid `restorer`) names `vpid`: the descendant of the
 * restore whose innermost pid (the last of NSpid) is vpid; undefined when there is none.
 */
function realPidOf(restorer: number, vpid: number): number | undefined {
  const seen = new Set<number>([restorer]);
  const queue = childrenOf(restorer);
  while (queue.length) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      if (innermostIds(p).pid === vpid) return p;
    } catch {
      continue; // gone
    }
    queue.push(...childrenOf(p));
  }
  return undefined;
}

function childrenOf(pid: number): number[] {
  try {
    return readChildren(pid);
  } catch {
    return []; // gone
  }
}

interface Watchdog {
  done(): void;
  close(): void;
}

/**
 * A process holding a copy of every userfaultfd (its descriptors 4…) and a pipe from us (3): the
 * pipe ending without "done" means we died with pages still missing; it then kills the restored
 * tasks and their descendants, by their pids here (`pids`: never those of the images, which in a
 * pid namespace of the tree's own name other processes), and says so in one line.
 * It is a shell (the pids its arguments), not a second Node: it starts while the restored tasks
 * take their first steps, and a Node's start-up (tens of ms of CPU) competed with them for it.
 */
function startWatchdog(uffds: number[], pids: number[]): Watchdog {
  const script = `said=$(cat <&3)
case $said in *done*) exit 0 ;; esac
all=' '
walk() {
  case "$all" in *" $1 "*) return ;; esac
  [ "$1" -gt 1 ] && [ "$1" != "$$" ] || return
  all="$all$1 "
  local t c
  for t in /proc/"$1"/task/*; do
    for c in $(cat "$t/children" 2>/dev/null); do walk "$c"; done
  done
}
for p in "$@"; do walk "$p"; done
n=0
for p in $all; do kill -9 "$p" 2>/dev/null && n=$((n + 1)); done
set -- $all
echo "lazy-pages: the lazy-pages daemon ended with pages still missing: $n restored task(s) killed ($*)" >&2
exit 1`;
  const p = openPipe(4096);
  const child: ChildProcess = process.getBuiltinModule('node:child_process').spawn('/bin/sh', ['-c', script, 'lazy-pages-watchdog', ...pids.map(String)], { stdio: ['ignore', 'ignore', 'inherit', p.rd, ...uffds], detached: true });
  child.unref();
  closeFd(p.rd);
  let wr = p.wr;
  return {
    done() {
      if (wr >= 0) writeSync(wr, 'done\n');
    },
    close() {
      if (wr >= 0) closeFd(wr);
      wr = -1;
    },
  };
}

/**
 * A lazy restore needs userfaultfd with the fork, remap, remove and unmap events (`criu check
 * --feature uffd-noncoop`): on a kernel without them `restore --lazy-pages` and `lazy-pages` are
 * refused before anything is made (exit 4), whoever asks (the command line or RPC).
 */
export function requireLazyPages(): void {
  const r = judge(loadKerndat().kerndat, { feature: 'uffd-noncoop' });
  if (r.exitCode !== 0) {
    throw new CrtoolsError('UNSUPPORTED_OPTION', `--lazy-pages is not supported by this kernel: ${r.stderr.join('; ')}`, {
      exitCode: ExitCode.UNSUPPORTED, context: { option: 'lazy-pages' },
    });
  }
}
