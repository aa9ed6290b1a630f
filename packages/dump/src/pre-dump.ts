/**
 * `criu pre-dump`: the tree's memory copied while it keeps running, frozen only for the moment
 * its written pages are found (and write-protected again) and, in 'splice' mode, copied into
 * our memory; the images are written after the tree runs again. The image set is CRIU's for a
 * pre-dump: pagemap-<pid>.img and pages-<id>.img per task, inventory.img (dump_uptime,
 * pre_dump_mode), stats-dump, and a `parent` link to the previous round. Dirty tracking is
 * userfaultfd WP_ASYNC + PAGEMAP_SCAN (mem-track.ts), since this kernel has no soft-dirty.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { CriuLog, criuOptions, CrtoolsError, ExitCode, isCrtoolsError, nowMs, PAGE_SIZE, PAGE_SIZE_BIGINT, refuseUnsupported, type CriuOptionName, type CriuOptions } from '@crtools/common';
import { readImageFile, writeImageFile } from '@crtools/images';
import { loadKerndat } from '@crtools/kerndat';
import { connectPageServer, createPagesIdAllocator, dedup, pagemapFileName, planDump, procMemPageSource, writePagemap, writePages, PE_PRESENT, type PageRange, type PageServerClient, type PageSource, type PlannedEntry } from '@crtools/pagemap';
import type { Socket } from 'node:net';
import { holdPages, pagesNotHeld, withInfection, type HeldPages } from '@crtools/parasite';
import { openPagemap, readAheadEntries, readVmaList } from '@crtools/procfs';
import { MemTracker, writtenFilter } from './mem-track.js';
import { codeAreasOf, mapsOptions } from './maps-options.js';
import { PidView } from './namespaces.js';
import { freezeTree, resumeTree, type FrozenTask } from './tree.js';
import type { DumpStats } from './dump.js';

/** The options a pre-dump carries out. */
export const PRE_DUMP_OPTIONS: readonly CriuOptionName[] = [
  'images_dir', 'work_dir', 'pid', 'log_file', 'log_level', 'timeout', 'display_stats', 'track_mem', 'parent_img', 'pre_dump_mode',
  // CRIU forces the tree to run on after a pre-dump: --leave-running is what it does anyway
  'leave_running', 'shell_job', 'file_locks', 'ghost_limit', 'cpu_cap', 'ps', 'auto_dedup',
  // as CRIU: a pre-dump reads no socket, so the TCP options (given alike to every round of a
  // migration) have nothing to do here; the final dump carries them out
  'tcp_established', 'tcp_close', 'tcp_skip_in_flight', 'network_lock',
  // (a pre-dump keeps no file: --link-remap and --force-irmap, given alike to every round, are the final dump's)
  'link_remap', 'force_irmap', 'irmap_scan_paths',
];

/** inventory's pre_dump_mode values (rpc.proto's criu_pre_dump_mode) */
export const PRE_DUMP_MODE = { splice: 1, read: 2 } as const;

export interface PreDumpResult {
  pids: number[];
  stats: DumpStats;
  frozenMs: number;
}

/** The previous round's pre_dump_mode ('splice' when it was a dump or said nothing). */
export async function parentPreDumpMode(parentDir: string): Promise<'splice' | 'read'> {
  try {
    const inv = await readImageFile(path.join(parentDir, 'inventory.img'));
    const m = (inv.entries[0] as { pre_dump_mode?: number } | undefined)?.pre_dump_mode;
    return m === PRE_DUMP_MODE.read ? 'read' : 'splice';
  } catch {
    return 'splice';
  }
}

/**
 * Below this a pre-dump round copies its pages while frozen rather than holding them in pipes.
 * Measured here (bench/README.md, issue 16): holding 1 GiB cut the round's frozen time from
 * 1.2-3.6 s to 0.5-0.6 s and crtools' peak RSS from 1.1 GB to 80 MB, but after two consecutive
 * held rounds the next dump moved the pages written since 3-4x slower (60 -> 200-290 ms for
 * ~15,000 pages; a held round next to a copied one did not slow it; cause not found). A
 * second round of a program writing 50 MiB/s (~200 MiB) is copied in ~0.2 s: held only when
 * large.
 */
const HOLD_MIN_BYTES = 256 << 20;

/** A page source over pages held in pipes in entry order (the splice mode's pages, taken by reference while the tree was frozen). */
function heldSource(held: HeldPages): PageSource {
  return {
    read(ranges: readonly PageRange[], dest: Buffer) {
      let want = 0;
      for (const r of ranges) want += r.nrPages * PAGE_SIZE;
      held.read(dest, 0, want);
    },
  };
}

/** A page source over pages copied into one buffer in entry order (the splice mode's copy). */
function copiedSource(buf: Buffer): PageSource {
  let at = 0;
  return {
    read(ranges: readonly PageRange[], dest: Buffer) {
      let off = 0;
      for (const r of ranges) {
        const len = r.nrPages * PAGE_SIZE;
        buf.copy(dest, off, at, at + len);
        at += len;
        off += len;
      }
    },
  };
}

/** The parent directory as given (relative to the images dir, as CRIU takes it) resolved. */
export function parentDirOf(o: CriuOptions): string | undefined {
  // (through the directory's real path: an RPC request's is /proc/PID/fd/N, where `..` means nothing)
  return o.parent_img ? path.resolve(realpathSync(o.images_dir), o.parent_img) : undefined;
}

/** `parent` → --prev-images-dir in the images dir (as CRIU makes it), replacing an old one. */
export function linkParent(dir: string, parentImg: string): void {
  const link = path.join(dir, 'parent');
  rmSync(link, { force: true });
  symlinkSync(parentImg, link);
}

/**
 * Pre-dump the tree rooted at options.pid into options.images_dir. The tree is left running
 * (as CRIU, whatever the options say); its memory stays tracked for the next round.
 */
export async function preDump(options: Partial<CriuOptions>, ctx: { stderr?: (line: string) => void; signal?: AbortSignal } = {}): Promise<PreDumpResult> {
  const o = criuOptions(options);
  const pid = o.pid ?? 0;
  if (!Number.isInteger(pid) || pid <= 1) {
    throw new CrtoolsError('BAD_PID', `bad pid ${o.pid}: give the root of the tree with -t PID (> 1)`, { exitCode: ExitCode.USAGE });
  }
  const mode = o.pre_dump_mode ?? 'splice';
  if (mode !== 'splice' && mode !== 'read') {
    throw new CrtoolsError('BAD_OPTIONS', `invalid argument for --pre-dump-mode: ${String(mode)} (splice or read)`, { exitCode: ExitCode.USAGE });
  }
  refuseUnsupported(o, 'pre-dump', PRE_DUMP_OPTIONS);
  const dir = o.images_dir;
  mkdirSync(dir, { recursive: true });
  const workDir = o.work_dir ?? dir;
  mkdirSync(workDir, { recursive: true });
  const log = new CriuLog(o.log_level, o.log_file ? path.resolve(workDir, o.log_file) : undefined, ctx.stderr);
  const parentDir = parentDirOf(o);
  if (parentDir && !existsSync(path.join(parentDir, 'inventory.img'))) {
    log.close();
    throw new CrtoolsError('BAD_PARENT', `--prev-images-dir ${o.parent_img}: ${parentDir} holds no images (no inventory.img)`, { exitCode: ExitCode.BAD_INPUT });
  }
  const tmp = path.join(dir, `.crtools-pre-dump.${process.pid}`);
  const tracker = MemTracker.open(log, parentDir);
  const kd = loadKerndat().kerndat;
  const parentMode = parentDir ? await parentPreDumpMode(parentDir) : 'splice';
  let tasks: FrozenTask[] = [];
  const t0 = nowMs();
  // pid: as crtools sees it; name: as the images name it (inside the tree's own pid namespace)
  const plans: { pid: number; name: number; entries: PlannedEntry[]; copied?: Buffer; held?: HeldPages; pagesId: number }[] = [];
  const nextPagesId = createPagesIdAllocator();
  const counts = { scanned: 0, written: 0, skipped: 0 };
  let ps: { client: PageServerClient; socket: Socket } | null = null;
  try {
    log.info(`Pre-dumping processes (pid: ${pid})`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { mode: 0o700 });
    // --page-server: connected before the tree is touched; the pages go there, the rest stays here
    if (o.ps) {
      log.info(`Connecting to the page server at ${o.ps.address}:${o.ps.port}`);
      ps = await connectPageServer(o.ps);
    }
    const tFreeze = nowMs();
    tasks = freezeTree(pid, log, o.timeout > 0 ? o.timeout * 1000 : undefined);
    const tFrozen = nowMs();
    const view = new PidView(pid, tasks.map((t) => t.pid));
    const mapsOpts = mapsOptions(kd);
    let memUs = 0;
    for (const task of tasks) {
      if (task.zombie) continue;
      if (ctx.signal?.aborted) throw new CrtoolsError('DUMP_ABORTED', 'pre-dump interrupted', { exitCode: ExitCode.FAILED });
      const tid = task.pid;
      const vmas = readVmaList(tid, mapsOpts);
      // the parent round's pagemap: where the pages are (the page server's images, PS_IOV_PARENT, as CRIU asks it)
      const hasParent = !!parentDir && (ps ? await ps.client.checkParent('task', view.pid(tid)) : existsSync(path.join(parentDir, pagemapFileName('task', view.pid(tid)))));
      await withInfection(tid, task.threads, async (inf) => {
        const track = tracker.task(tid, inf, vmas, `/proc/${tid}/pagemap`, true);
        const pm = openPagemap(tid);
        const tMem = nowMs();
        try {
          const raw = readAheadEntries(pm);
          const plan = await planDump({
            vmas,
            pagemap: writtenFilter(raw, track),
            parentRuns: track.parentRuns,
            mode: 'pre-dump',
            preDumpMode: mode,
            parentPreDumpMode: parentMode,
            hasParent: hasParent && track.tracked,
            trackMem: true,
            ...(kd.zero_page_pfn !== undefined ? { zeroPagePfn: kd.zero_page_pfn } : {}),
            ...(kd.task_size !== undefined ? { taskSize: kd.task_size } : {}),
          });
          counts.scanned += plan.stats.pagesScanned;
          counts.skipped += plan.stats.pagesSkippedParent;
          const entry: (typeof plans)[number] = { pid: tid, name: view.pid(tid), entries: plan.entries, pagesId: nextPagesId() };
          if (mode === 'splice') {
            // the pages are taken now, while the task is frozen, and written once it runs again:
            // by reference in pipes (the tracee vmsplices them, CRIU's way), or copied (a small
            // round, or pipes that would not fit under our descriptor limit)
            const ranges = plan.entries.filter((e) => e.flags & PE_PRESENT).map((e) => ({ vaddr: e.vaddr, nrPages: e.nrPages }));
            const total = ranges.reduce((s, r) => s + r.nrPages, 0);
            let why = total * PAGE_SIZE < HOLD_MIN_BYTES ? `${total} pages, under ${HOLD_MIN_BYTES >> 20} MiB` : undefined;
            if (why === undefined) {
              try {
                entry.held = holdPages(inf, ranges);
                log.debug(`pre-dump: pid ${tid}: ${entry.held.bytes / PAGE_SIZE} pages held in ${entry.held.pipes} pipe(s)`);
              } catch (e) {
                if (!pagesNotHeld(e)) throw e;
                why = (e as Error).message;
              }
            }
            if (!entry.held) {
              log.debug(`pre-dump: pid ${tid}: pages copied (${why})`);
              const buf = Buffer.allocUnsafe(total * PAGE_SIZE);
              const src = procMemPageSource(tid);
              try {
                src.read(ranges, buf);
              } finally {
                src.close();
              }
              entry.copied = buf;
            }
          }
          plans.push(entry);
        } finally {
          pm.close();
          memUs += Math.round((nowMs() - tMem) * 1000);
        }
      }, { codeAreas: codeAreasOf(vmas) });
    }
    // the tree runs again: the pages are written from the copies (splice) or read now (read)
    resumeTree(tasks);
    const frozenUs = Math.round((nowMs() - tFrozen) * 1000);
    tasks = [];
    const tWrite = nowMs();
    for (const p of plans) {
      const taken = p.copied !== undefined || p.held !== undefined;
      const source = p.held ? heldSource(p.held) : p.copied ? copiedSource(p.copied) : procMemPageSource(p.pid);
      try {
        const how = { entries: p.entries, source, ...(taken ? {} : { skipUnreadable: true }) };
        const w = ps ? await sendPagemap(ps.client, p.name, how) : await writePagemap({ dir: tmp, id: p.name, pagesId: p.pagesId, ...how });
        counts.written += w.pagesWritten;
      } finally {
        if (!taken) (source as ReturnType<typeof procMemPageSource>).close();
        p.held?.close();
      }
      p.copied = undefined;
      p.held = undefined;
    }
    if (ps) {
      await closePageServer(ps, log);
      ps = null;
    }
    const writeUs = Math.round((nowMs() - tWrite) * 1000);
    await writeImageFile(path.join(tmp, 'inventory.img'), {
      magic: 'INVENTORY',
      entries: [{ img_version: 2, fdinfo_per_id: true, ns_per_id: true, lsmtype: 'NO_LSM', dump_uptime: uptimeMicros(), pre_dump_mode: PRE_DUMP_MODE[mode] }],
    });
    for (const n of readdirSync(dir)) if (/^(pagemap-\d+|pages-\d+)\.img$/.test(n)) rmSync(path.join(dir, n));
    for (const n of readdirSync(tmp).filter((n) => n !== 'inventory.img')) renameSync(path.join(tmp, n), path.join(dir, n));
    if (o.parent_img) linkParent(dir, o.parent_img);
    renameSync(path.join(tmp, 'inventory.img'), path.join(dir, 'inventory.img'));
    rmSync(tmp, { recursive: true, force: true });
    tracker.handOver(dir);
    if (o.auto_dedup && !o.ps) await autoDedup(dir, log);
    const stats: DumpStats = {
      freezing_time: Math.round((tFrozen - tFreeze) * 1000), frozen_time: frozenUs, memdump_time: memUs, memwrite_time: writeUs,
      pages_scanned: BigInt(counts.scanned), pages_skipped_parent: BigInt(counts.skipped), pages_written: BigInt(counts.written), irmap_resolve: 0, pages_lazy: 0n,
      shpages_scanned: 0n, shpages_skipped_parent: 0n, shpages_written: 0n,
    };
    await writeImageFile(path.join(workDir, 'stats-dump'), { magic: 'STATS', entries: [{ dump: stats }] });
    log.info(`Pre-dumping finished successfully (${(nowMs() - t0).toFixed(1)} ms, frozen ${(frozenUs / 1000).toFixed(1)} ms, ${counts.written} pages written, ${counts.skipped} left to the parent)`);
    return { pids: plans.map((p) => p.pid), stats, frozenMs: frozenUs / 1000 };
  } catch (err) {
    for (const p of plans) p.held?.close();
    // the page server sees the connection end without PS_IOV_CLOSE: it keeps nothing
    ps?.socket.destroy();
    resumeTree(tasks);
    await tracker.abort();
    rmSync(tmp, { recursive: true, force: true });
    log.error('pre-dump', isCrtoolsError(err) || err instanceof Error ? err.message : String(err));
    log.info('Pre-dumping FAILED.');
    throw err;
  } finally {
    log.close();
  }
}

/**
 * PS_IOV_CLOSE: the server answers once every page it was sent is in its images; a status
 * other than 0 fails the (pre-)dump. (On a failure before this, the socket is destroyed: the
 * server sees no PS_IOV_CLOSE and keeps nothing.)
 */
export async function closePageServer(ps: { client: PageServerClient; socket: Socket }, log: CriuLog): Promise<void> {
  log.info('Disconnect from the page server');
  const status = await ps.client.close();
  ps.socket.end();
  if (status !== 0) throw new CrtoolsError('PS_FAILED', `the page server failed to store the pages (status ${status})`, { exitCode: ExitCode.FAILED });
}

/** A pre-dump's pagemap to the page server (PS_IOV_OPEN2, then its entries and pages). */
async function sendPagemap(client: PageServerClient, pid: number, how: Omit<Parameters<typeof writePages>[0], 'sink'>): Promise<{ pagesWritten: number }> {
  const sink = await client.openSink('task', pid);
  const w = await writePages({ ...how, sink });
  await sink.close();
  return { pagesWritten: w.pagesWritten };
}

/**
 * --auto-dedup (as criu.8: the pages this round wrote again are punched out of the parent
 * images): done once the images are in place and the tree runs, never while it is frozen.
 * With --page-server there are no pages here: the page server dedups its own (its --auto-dedup).
 */
export async function autoDedup(dir: string, log: CriuLog): Promise<void> {
  if (!existsSync(path.join(dir, 'parent'))) return;
  const r = await dedup({ dir, logger: log.logger('dedup') });
  log.info(`auto-dedup: ${r.bytesPunched} bytes punched out of the parent images (${r.pagemaps} pagemap(s))`);
}

/** /proc/uptime in microseconds, at centisecond precision (CRIU's dump_uptime). */
export function uptimeMicros(): bigint {
  const s = readFileSync('/proc/uptime', 'utf8').split(' ')[0] ?? '0';
  const [a, b = '0'] = s.split('.');
  return BigInt(a!) * 1000000n + BigInt((b + '00').slice(0, 2)) * 10000n;
}

