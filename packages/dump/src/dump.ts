import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CLONE_NEWNET, CPU_CAP, CriuLog, criuOptions, CrtoolsError, ExitCode, isCrtoolsError, isRefusal, nowMs, PAGE_SIZE, PAGE_SIZE_BIGINT, Refusals, refuseUnsupported, treeHelpers, unsupportedOptions, type CriuOptionName, type CriuOptions, type Notify } from '@crtools/common';
import { hostCpuinfo, writeCpuinfoImage } from '@crtools/cpuinfo';
import { writeImageFile } from '@crtools/images';
import { decodeDev, FILE_LOCK_FLAG, FILE_LOCK_TYPE, TASK_STATE, type NsKind } from '@crtools/images/facts';
import { loadKerndat, type Kerndat } from '@crtools/kerndat';
import { connectPageServer, createPagesIdAllocator, dumpShmemFile, FrozenLazyPages, pagemapFileName, planDump, procMemPageSource, PE_LAZY, PE_PRESENT, writePagemap, writePages, type PageRange, type PageServerClient } from '@crtools/pagemap';
import type { Socket } from 'node:net';
import { collectInfected, readMemory, withInfection } from '@crtools/parasite';
import { openPagemap, readAheadEntries, readFds, readStat, readStatusValue, readTimers, readVmaList, type FdRecord } from '@crtools/procfs';
import { guardRegions, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_VM, KernelObjects, sameKernelObject, setSocketNamespace, type GuardLookup } from '@crtools/sys';
import { FileTable, irmapLookup, LinkRemaps, NetworkLock, networkLockImageValue, TcpRepairs, TtyQueueHold, type Entry, type InetDumpOptions, type IrmapLookup } from '@crtools/files/dump';

import { coreEntries, mmEntry, socketMappings } from './task.js';
import { AioRings } from './aio.js';
import { foreignNamespaces, Namespaces, nsInodes, PidView, refuseRootNamespaces } from './namespaces.js';
import { saveNetTables, type SavedNetTables } from './netns.js';
import { SeccompChains } from './seccomp.js';
import { PagesPrefill, writePagesSpliced } from './pages.js';
import { freezeTree, killTree, resumeTree, type FrozenTask } from './tree.js';
import { MemTracker, writtenFilter } from './mem-track.js';
import { codeAreasOf, hugetlbDevs, mapsOptions } from './maps-options.js';
import { SharedHugePages } from './hugetlb-cow.js';
import { autoDedup, closePageServer, linkParent, parentDirOf, parentPreDumpMode, uptimeMicros } from './pre-dump.js';
import { dumpExternals } from './external.js';
import { serveLazyPages } from './lazy.js';
import { Cgroups } from './cgroups.js';
import { controllerProps } from './cgroup-props.js';
import type { MountOptions } from './mounts.js';

/** The CriuOptions fields a dump carries out; any other set away from its default is refused by name. */
export const DUMP_OPTIONS: readonly CriuOptionName[] = [
  'images_dir', 'work_dir', 'pid', 'log_file', 'log_level', 'leave_running', 'leave_stopped', 'shell_job', 'file_locks',
  'timeout', 'notify_scripts', 'display_stats', 'ghost_limit', 'cpu_cap', 'ps', 'track_mem', 'parent_img', 'auto_dedup',
  'tcp_established', 'tcp_close', 'tcp_skip_in_flight', 'network_lock',
  'ext_unix_sk', 'external', 'lazy_pages', 'use_page_server', 'link_remap', 'force_irmap', 'irmap_scan_paths',
  // an RPC self-dump: the client's own connection to criu
  'service_sk_ino',
  // containers: cgroups, the mount namespace under another root with external mounts, an empty network namespace
  'manage_cgroups', 'manage_cgroups_mode', 'freeze_cgroup', 'cg_root', 'cgroup_yard', 'cgroup_props', 'cgroup_props_file', 'cgroup_dump_controller', 'root', 'ext_mnt', 'auto_ext_mnt', 'ext_masters', 'ext_sharing', 'empty_ns', 'orphan_pts_master', 'enable_fs',
  // (the restore's veth peers and its file mode check: as CRIU, a dump takes them and has no use for them)
  'veths', 'skip_file_rwx_check',
];

/** What a dump is run with besides its options: who hears about it and who can stop it. */
export interface DumpContext {
  /** called at CRIU's action points ('pre-dump', 'post-dump'); a throw fails the dump */
  notify?: Notify;
  /** Abort the dump (e.g. on SIGTERM): the tree is resumed as it was and nothing is left. */
  signal?: AbortSignal;
  /** Where log lines go when there is no log file and -v3 or more was asked (the bin's stderr). */
  stderr?: (line: string) => void;
  /** Ptrace wait timeout in ms (default: options.timeout seconds, else the freezer's own). */
  timeoutMs?: number;
  /**
   * How pages leave the tracee: 'read' = process_vm_readv into a double buffer,
   * 'splice' (default) = the parasite vmsplices them into a pipe we splice into the file (no copy through
   * our memory, but one ptrace round trip per pipe-full). Env CRTOOLS_DUMP_PAGES overrides.
   */
  pages?: 'read' | 'splice';
}

/** What stats-dump holds (CRIU's dump_stats_entry): times in microseconds, counts in pages. */
export interface DumpStats {
  freezing_time: number;
  frozen_time: number;
  memdump_time: number;
  memwrite_time: number;
  irmap_resolve: number;
  pages_scanned: bigint;
  pages_skipped_parent: bigint;
  pages_written: bigint;
  pages_lazy: bigint;
  shpages_scanned: bigint;
  shpages_skipped_parent: bigint;
  shpages_written: bigint;
}

/** What a preflight (`checkDump`, `criu dump --check-only`) found: every refusal, or none. */
export interface DumpCheck {
  /** the tasks of the tree (as far as the check got) */
  pids: number[];
  /** each object of the tree a dump would refuse, in the order met; empty: a dump would go through */
  refusals: CrtoolsError[];
}

export interface DumpResult {
  pids: number[];
  images: string[];
  pagesWritten: number;
  pagesScanned: number;
  frozenMs: number;
  /** also written to stats-dump in the work directory */
  stats: DumpStats;
}


/**
 * What makes a dump impossible, refused before anything is done: a tree whose root lives in
 * namespaces of its own that crtools does not carry (a container: it would otherwise write the
 * tree as if it lived in criu's, with the wrong pids, mounts and network), and the options the
 * engine does not carry out. The tree's namespaces are named first (no option could make such
 * a tree dumpable) and the options after it, in the same refusal, so that one answer says all
 * that is missing.
 */
function refuseUndumpable(o: CriuOptions, pid: number, refusals: Refusals): void {
  let nsRefusal: CrtoolsError | null = null;
  try {
    nsRefusal = refuseRootNamespaces(pid, foreignNamespaces(pid));
  } catch {
    // gone or unreadable: freezing the tree says so
  }
  const off = unsupportedOptions(o, DUMP_OPTIONS);
  // (the cgroup namespace is carried with the cgroups: without them its root would be lost)
  if (!nsRefusal && o.manage_cgroups_mode === 'ignore') {
    try {
      if (foreignNamespaces(pid).includes('cgroup')) {
        nsRefusal = new CrtoolsError('UNSUPPORTED_NS', `the tree's root ${pid} lives in a cgroup namespace of its own, which --manage-cgroups=ignore would not carry (the namespace's root is written with the cgroups)`, {
          context: { pid, namespaces: 'cgroup', option: 'manage_cgroups_mode' }, exitCode: ExitCode.UNSUPPORTED,
        });
      }
    } catch {
      // gone: freezing the tree says so
    }
  }
  if (nsRefusal) {
    const also = off.length ? `; not supported yet either: option${off.length > 1 ? 's' : ''} ${off.join(', ')}` : '';
    refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `${nsRefusal.message}${also}`, {
      context: { ...nsRefusal.context, ...(off.length ? { options: off.join(',') } : {}) },
      exitCode: ExitCode.UNSUPPORTED,
    }));
    return;
  }
  refuseUnsupported(o, 'dump', DUMP_OPTIONS, refusals);
}

/** --cgroup-props, --cgroup-props-file (taken from the work directory, as CRIU), --cgroup-dump-controller. */
function cgroupPropsOptions(o: CriuOptions, workDir: string): { props?: Record<string, readonly string[]>; dumpControllers?: string[] } {
  const texts: { text: string; source: string }[] = [];
  if (o.cgroup_props) texts.push({ text: o.cgroup_props, source: '--cgroup-props' });
  if (o.cgroup_props_file) {
    const f = path.resolve(workDir, o.cgroup_props_file);
    try {
      texts.push({ text: readFileSync(f, 'utf8'), source: `--cgroup-props-file ${o.cgroup_props_file}` });
    } catch (e) {
      throw new CrtoolsError('USAGE', `--cgroup-props-file ${o.cgroup_props_file}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { exitCode: ExitCode.USAGE, context: { option: 'cgroup_props_file', path: f } });
    }
  }
  return { ...(texts.length ? { props: controllerProps(...texts) } : {}), ...(o.cgroup_dump_controller?.length ? { dumpControllers: o.cgroup_dump_controller } : {}) };
}

/** kobj ids: a new id per task unless kcmp says the object is shared with an earlier task. */
class KobjIds {
  private next = 2;
  private readonly seen: KernelObjects<{ pid: number; id: number }>;
  constructor(kind: number) {
    this.seen = new KernelObjects(kind);
  }
  /** the id of task pid's object, and the earlier task it is shared with, if any */
  idOf(pid: number): { id: number; sharedWith?: number } {
    const { value, found } = this.seen.findOrAdd(pid, 0, () => ({ pid, id: this.next++ }));
    return found ? { id: value.id, sharedWith: value.pid } : { id: value.id };
  }
}

/**
 * What two processes (not threads of one) may share that the restore would give each its own
 * copy of: refused by name. CLONE_VM without CLONE_THREAD (a vfork child before its exec),
 * CLONE_SIGHAND (comes with CLONE_VM), CLONE_FS (one cwd, root and umask), CLONE_FILES (one
 * descriptor table) but between a parent and its child, which the restore shares again.
 */
const SHARED_WHAT: Record<string, string> = {
  vm_id: 'its memory (CLONE_VM: a vfork child that has not called exec yet, or a clone without CLONE_THREAD)',
  sighand_id: 'its signal handlers (CLONE_SIGHAND)',
  files_id: 'its descriptor table (CLONE_FILES)',
  fs_id: 'its cwd, root and umask (CLONE_FS)',
};

function refuseSharing(pid: number, ppid: number, fds: readonly FdRecord[], shared: Record<string, { sharedWith?: number }>, refusals: Refusals): void {
  for (const [k, v] of Object.entries(shared)) {
    if (v.sharedWith === undefined) continue;
    // a child sharing its parent's descriptor table is made with CLONE_FILES again (as CRIU),
    // but for pidfds in it: they are opened late, when the sharers could race for the numbers
    if (k === 'files_id' && sameKernelObject(ppid, pid, KCMP_FILES)) {
      for (const r of fds.filter((r) => r.target === 'anon_inode:[pidfd]')) {
        refusals.refuse(new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${r.fd}: a pidfd in a descriptor table shared with task ${ppid} (CLONE_FILES) is not supported`, {
          context: { pid, fd: r.fd }, exitCode: ExitCode.UNSUPPORTED,
        }));
      }
      continue;
    }
    refusals.refuse(new CrtoolsError('UNSUPPORTED_TASK_ATTRIBUTE', `task ${pid} shares ${SHARED_WHAT[k]} with task ${v.sharedWith}, which is not supported yet`, {
      context: { pid, attribute: k }, exitCode: ExitCode.UNSUPPORTED,
    }));
  }
}

/** CRIU's rule: without --shell-job the root must lead its own session. */
function checkSessionLeader(pid: number): void {
  let sid: number;
  try {
    sid = readStat(pid).session;
  } catch {
    return; // gone or unreadable: freezing the tree says so
  }
  if (sid !== pid) {
    throw new CrtoolsError('DUMP_SHELL_JOB', `the root process ${pid} is not a session leader (its session is ${sid}); consider using --shell-job`, {
      context: { pid, sid },
      exitCode: ExitCode.FAILED,
    });
  }
}

/**
 * Dump the process tree rooted at `options.pid` into `options.images_dir` in CRIU's image
 * format. Images are written into a private subdirectory and moved into place only when
 * everything succeeded (inventory.img last); on any failure the tree is resumed as it was,
 * nothing is left in the images directory, and the error is thrown.
 */
export async function dump(options: Partial<CriuOptions>, ctx: DumpContext = {}): Promise<DumpResult> {
  return runDump(options, ctx, new Refusals());
}

/**
 * A preflight (`criu dump --check-only`): the tree is frozen and everything a dump collects is
 * collected, but no image is written (no page is read) and the tree is resumed as it was, always.
 * Every object a dump would refuse is named, not only the first. Errors that are not refusals
 * (no such task, no permission) are thrown as the dump would throw them.
 */
export async function checkDump(options: Partial<CriuOptions>, ctx: Omit<DumpContext, 'notify' | 'pages'> = {}): Promise<DumpCheck> {
  const refusals = new Refusals(true);
  let pids: number[] = [];
  try {
    pids = (await runDump({ ...options, leave_running: true, leave_stopped: false, notify_scripts: false }, ctx, refusals)).pids;
  } catch (e) {
    // a refusal that stops the collection itself (a zombie root): the one found there
    if (!isRefusal(e)) throw e;
    refusals.refuse(e);
  }
  return { pids, refusals: refusals.found };
}

/** The dump, or (refusals gathered) its preflight: what it finds to refuse is then in `refusals`, no image is kept. */
async function runDump(options: Partial<CriuOptions>, ctx: DumpContext, refusals: Refusals): Promise<DumpResult> {
  const checkOnly = refusals.gather;
  const o = criuOptions(options);
  const pid = o.pid ?? 0;
  if (!Number.isInteger(pid) || pid <= 1) {
    throw new CrtoolsError('BAD_PID', `bad pid ${o.pid}: give the root of the tree with -t PID (> 1)`, { exitCode: ExitCode.USAGE });
  }
  if (o.leave_running && o.leave_stopped) {
    throw new CrtoolsError('BAD_OPTIONS', '--leave-running and --leave-stopped exclude each other', { exitCode: ExitCode.USAGE });
  }
  if (o.empty_ns & ~CLONE_NEWNET) {
    // (as CRIU: only the network namespace can be asked to be left empty)
    throw new CrtoolsError('BAD_OPTIONS', `--empty-ns: 0x${o.empty_ns.toString(16)}: only the network namespace (net) can be left empty`, { exitCode: ExitCode.USAGE, context: { option: 'empty_ns' } });
  }
  if (o.lazy_pages && !o.ps?.port) {
    throw new CrtoolsError('USAGE', '--lazy-pages needs the port (and address) to serve the lazy pages on', { exitCode: ExitCode.USAGE });
  }
  if (o.use_page_server && !o.lazy_pages) {
    throw new CrtoolsError('BAD_OPTIONS', 'use_page_server goes with lazy_pages (without it, ps alone names the page server)', { exitCode: ExitCode.USAGE });
  }
  const dir = o.images_dir;
  mkdirSync(dir, { recursive: true });
  const workDir = o.work_dir ?? dir;
  mkdirSync(workDir, { recursive: true });
  const logPath = o.log_file ? path.resolve(workDir, o.log_file) : undefined;
  const log = new CriuLog(o.log_level, logPath, ctx.stderr);
  const notify: Notify = o.notify_scripts && ctx.notify ? ctx.notify : () => undefined;
  const timeoutMs = ctx.timeoutMs ?? (o.timeout > 0 ? o.timeout * 1000 : undefined);
  const tmp = path.join(dir, `.crtools-dump.${process.pid}`);
  // the dump's hold on the tree's TCP connections (the network lock names its nftables table after this run)
  const runId = `${process.pid.toString(16)}-${Date.now().toString(16)}`;
  const netLock = new NetworkLock(o.network_lock, runId, log.logger('net'));
  const repairs = checkOnly ? undefined : new TcpRepairs(netLock, log.logger('tcp'));
  // the bytes queued in the tree's terminals, taken out to be written: put back if the tree goes on
  const ttyQueues = checkOnly ? undefined : new TtyQueueHold(log.logger('tty'));
  // --link-remap: the hard links made for files whose name was removed while they keep others
  // (kept for the restore; removed if the dump fails, is a check, or the tree goes on)
  const linkRemaps = o.link_remap ? new LinkRemaps() : undefined;
  let tasks: FrozenTask[] = [];
  let placed: string[] = [];
  // stats-dump, once written while the lazy pages are served (removed if that fails)
  let statsPlaced: string | undefined;
  // the network-lock action point was told (the tree has a network namespace of its own)
  let netLocked = false;
  // the tree's network namespace is locked whole (as CRIU 4.2)
  let nsLocked = false;
  // the tree's network namespace's tables, saved before it was locked
  let netTables: SavedNetTables | undefined;
  let ps: { client: PageServerClient; socket: Socket } | null = null;
  const t0 = nowMs();
  // incremental: the previous round's images (linked as `parent`) and its memory tracking
  const parentDir = parentDirOf(o);
  if (parentDir && !existsSync(path.join(parentDir, 'inventory.img'))) {
    log.close();
    throw new CrtoolsError('BAD_PARENT', `--prev-images-dir ${o.parent_img}: ${parentDir} holds no images (no inventory.img)`, { exitCode: ExitCode.BAD_INPUT });
  }
  // the tracking goes on after this dump when the tree does (--track-mem --leave-running)
  const keepTracking = o.track_mem && o.leave_running && !checkOnly;
  const tracker = o.track_mem && !checkOnly ? MemTracker.open(log, parentDir) : undefined;
  const incremental = parentDir && !checkOnly ? { dir: parentDir, preDumpMode: await parentPreDumpMode(parentDir) } : undefined;
  // --lazy-pages: the lazy pages stay in the frozen tree, for the lazy-pages daemon to fetch from our page server
  const lazy = o.lazy_pages && !checkOnly ? new FrozenLazyPages() : undefined;
  // the pages go to a page server: ps names it, but with --lazy-pages only when asked (ps is then where they are served)
  const usesPageServer = !!o.ps && (!o.lazy_pages || o.use_page_server);
  // (its hierarchies' mounts, if any were made, are let go on every path)
  let cgroups: Cgroups | undefined;
  try {
    log.info(`${checkOnly ? 'Checking whether a dump can be made of' : 'Dumping'} processes (pid: ${pid} comm: ${commOf(pid)})`);
    // what cannot be done is refused before the tree is touched, and logged
    refuseUndumpable(o, pid, refusals);
    if (!o.shell_job) refusals.check(() => checkSessionLeader(pid));
    // --external unix[INO]: the tree's sockets whose peer may be outside; net[INO]:KEY: the
    // caller's network namespace (another form refused here)
    const externals = dumpExternals(o.external, refusals);
    const external = externals.unix;
    // (node 20's rmSync loads its recursive remover even for a path that is not there)
    if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { mode: 0o700 });
    // this CPU described in cpuinfo.img when --cpu-cap asked for the image (CRIU's default
    // does not), before the tree is touched
    if (o.cpu_cap & CPU_CAP.IMAGE && !checkOnly) {
      const cpu = hostCpuinfo();
      await writeCpuinfoImage(tmp, cpu);
      log.info(`cpu: cpuinfo.img written (${cpu.vendor_id} family ${cpu.cpu_family} model ${cpu.model}, xfeatures 0x${cpu.xfeatures_mask.toString(16)})`);
    }
    const pageMethod = (process.env['CRTOOLS_DUMP_PAGES'] as 'read' | 'splice' | undefined) ?? ctx.pages ?? 'splice';
    // --page-server: connected before the tree is touched (a server that is not there stops
    // nothing but the dump); pages go there, every other image stays here
    // (with --lazy-pages only when asked: the pages that are not lazy go there, and ps is then
    // also where the lazy ones are served, once that page server has closed)
    if (usesPageServer && o.ps && !checkOnly) {
      log.info(`Connecting to the page server at ${o.ps.address}:${o.ps.port}`);
      ps = await connectPageServer(o.ps);
    }
    // the tasks' css sets (cgroup.img); --freeze-cgroup's state read before the tree is touched
    cgroups = new Cgroups({
      ...(o.manage_cgroups_mode ? { mode: o.manage_cgroups_mode } : {}), ...(o.freeze_cgroup ? { freezeCgroup: o.freeze_cgroup } : {}),
      // (as CRIU, which works in its work directory: a relative --cgroup-yard is taken from there)
      ...(o.cgroup_yard ? { yard: path.resolve(workDir, o.cgroup_yard) } : {}), roots: o.cg_root,
      ...cgroupPropsOptions(o, workDir),
    }, log);
    refusals.check(() => cgroups!.checkFreezer());
    await notify('pre-dump', { pid });
    // after tracked rounds: the pages images made before the freeze, as large as what the tasks
    // wrote so far, so that the frozen copy writes over pages already there
    const prefill = tracker && !lazy && !usesPageServer && pageMethod === 'splice'
      ? PagesPrefill.make(tmp, () => tracker.writtenSoFar(loadKerndat().kerndat.task_size ?? DEFAULT_TASK_SIZE), log)
      : undefined;
    const tFreeze = nowMs();
    tasks = freezeTree(pid, log, timeoutMs);
    const tFrozen = nowMs();
    const cpuFrozen = process.cpuUsage();
    // a tree in a cgroup namespace of its own: where its root is, in each hierarchy
    const rootNs = foreignNamespaces(pid);
    if (rootNs.includes('cgroup')) refusals.check(() => cgroups!.namespaceOf(pid));
    // a tree in a network namespace of its own: its connections are locked in there
    if (rootNs.includes('net')) {
      netLock.netns = `/proc/${pid}/ns/net`;
      // as CRIU: the caller locks what it set up for the namespace (runc: its network strategies)
      await notify('network-lock', { pid });
      netLocked = true;
      // and then the namespace is locked whole, as CRIU 4.2 locks it (its connections get no
      // rules of their own): a namespace that outlives the tree (ip netns, a container's bound
      // one) drops everything unmarked until the restore lifts it; -R or a failure lifts it here
      if (!checkOnly) {
        // (its packet filter tables saved first: the lock is not the namespace's own)
        netTables = saveNetTables(netLock.netns);
        netLock.lockNamespace();
        nsLocked = true;
      }
    }
    // as CRIU: an RPC client may name external objects once the tree is frozen
    const reply = await notify('query-ext-files', { pid });
    const asked = dumpExternals(reply?.external ?? [], refusals);
    for (const ino of asked.unix) external.add(ino);
    for (const [ino, key] of asked.net) externals.net.set(ino, key);
    for (const key of asked.tty) externals.tty.add(key);
    const unix = { extUnixSk: o.ext_unix_sk, external, ...(o.service_sk_ino !== undefined ? { serviceSkIno: o.service_sk_ino } : {}) };
    const result = await dumpFrozen(tasks, tmp, log, ctx.signal, pageMethod, { freezingUs: Math.round((tFrozen - tFreeze) * 1000), frozenAt: tFrozen }, {
      cgroups,
      netTables,
      mounts: { ...(o.root ? { root: o.root } : {}), extMnt: o.ext_mnt, emptyNet: !!(o.empty_ns & CLONE_NEWNET), extNet: externals.net, enableFs: o.enable_fs, ...(o.auto_ext_mnt ? { autoExt: { masters: o.ext_masters, sharing: o.ext_sharing } } : {}) },
      prefill, fileLocks: o.file_locks, ghostLimit: o.ghost_limit, ...(linkRemaps ? { linkRemaps } : {}), ...(o.force_irmap ? { irmap: irmapLookup(`/proc/${pid}/root`, o.irmap_scan_paths ?? []) } : {}), refusals, shellJob: o.shell_job, pageServer: ps?.client, tracker, keepTracking, incremental, unix, lazy,
      inet: { tcpEstablished: o.tcp_established, tcpClose: o.tcp_close, skipInFlight: o.tcp_skip_in_flight, repairs }, ttyQueues, extTty: externals.tty,
      inventory: { network_lock_method: networkLockImageValue(o.network_lock), dump_criu_run_id: runId, ...(o.tcp_close ? { tcp_close: true } : {}) },
    });
    prefill?.dispose();
    await atSafePoint(ctx.signal);
    if (ps) {
      await closePageServer(ps, log);
      ps = null;
    }
    if (checkOnly) {
      // a preflight: nothing is kept, the tree goes on as it was
      linkRemaps?.undo();
      resumeTree(tasks);
      tasks = [];
      rmSync(tmp, { recursive: true, force: true });
      for (const r of refusals.found) log.error('dump', r.message);
      log.info(refusals.found.length
        ? `Check FAILED: ${refusals.found.length} thing(s) of the tree would be refused`
        : `Check finished successfully: a dump of ${result.pids.length} task(s) would go through (${(nowMs() - t0).toFixed(1)} ms)`);
      return { ...result, images: [], frozenMs: nowMs() - tFrozen };
    }
    // move the images in place: every file, then inventory.img last
    const names = readdirSync(tmp).filter((n) => n !== 'inventory.img');
    for (const n of names) {
      renameSync(path.join(tmp, n), path.join(dir, n));
      placed.push(n);
    }
    if (o.parent_img) linkParent(dir, o.parent_img);
    renameSync(path.join(tmp, 'inventory.img'), path.join(dir, 'inventory.img'));
    placed.push('inventory.img');
    // CRIU's post-dump: the images are written, the tree is still frozen
    await notify('post-dump', { pid });
    removeEmptied(tmp);
    // as CRIU: the stats go to the work directory (the images directory unless -W)
    const writeStats = () => writeImageFile(path.join(workDir, 'stats-dump'), { magic: 'STATS', entries: [{ dump: result.stats }] });
    if (lazy) {
      await writeStats();
      // --lazy-pages: every image is in place; the lazy pages are served from the tree, still
      // frozen, until the lazy-pages daemon has them all (a transfer that fails resumes it, and
      // the images go, as for any failed dump)
      statsPlaced = path.join(workDir, 'stats-dump');
      await serveLazyPages(lazy, o.ps, log, ctx.signal);
      statsPlaced = undefined;
    }
    placed = [];
    if (o.leave_running) {
      log.info('Resuming the tree (--leave-running)');
      if (netLocked) await notify('network-unlock', { pid });
      if (nsLocked) netLock.quietly(() => netLock.unlockNamespace());
      // (as CRIU: the files' link_remap names go when the tree goes on)
      linkRemaps?.undo();
      // (as CRIU: the connections go on first, then the tasks)
      repairs?.resume();
      ttyQueues?.resume();
      resumeTree(tasks);
    } else if (o.leave_stopped) {
      // SIGSTOP queued while still seized: a signal given with the detach of a PTRACE_INTERRUPT
      // stop is dropped, and the task would run on for a while; a queued one is taken on the
      // way out of the stop, before any instruction of the task's
      for (const t of tasks) if (!t.zombie) process.kill(t.pid, 'SIGSTOP');
      repairs?.resume();
      ttyQueues?.resume();
      resumeTree(tasks);
    } else {
      log.info('Killing the dumped tree');
      // our copies of the terminals whose bytes were taken close first: the tasks' end is then
      // the last close of each, as without them (a pty's index is freed after the last close)
      ttyQueues?.release();
      const k = killTree(tasks, loadKerndat().kerndat.has_process_mrelease !== false);
      log.debug(`kill of the tree: ${k.killMs.toFixed(1)} ms (memory of ${k.released} process(es) freed here${k.notReleased ? `; not: ${k.notReleased}` : ''}), reap ${k.reapMs.toFixed(1)} ms`);
      // the connections close with the tree, silently (repair mode); the lock stays for the restore
      if (repairs?.count) log.info(`${repairs.count} TCP connection(s) left locked (${o.network_lock}) for the restore to take up`);
      repairs?.release();
    }
    tasks = [];
    // as CRIU, the frozen time ends once the tree is resumed or killed (with --lazy-pages, once
    // the images are written: the stats are written before the pages are served)
    if (!lazy) {
      result.stats.frozen_time = Math.round((nowMs() - tFrozen) * 1000);
      log.info(`Frozen ${(result.stats.frozen_time / 1000).toFixed(1)} ms (${cpuSince(cpuFrozen)})`);
    }
    const frozenMs = lazy ? nowMs() - tFrozen : result.stats.frozen_time / 1000;
    if (!lazy) await writeStats();
    // the tracking of the previous rounds is handed on (the tree goes on, tracked) or let go
    if (tracker) {
      if (keepTracking) tracker.handOver(dir);
      else await tracker.release();
    }
    // --auto-dedup: the parent's copies of the pages written again punched, the tree no longer frozen
    if (o.auto_dedup && !usesPageServer) await autoDedup(dir, log);
    log.info(`Dumping finished successfully (${(nowMs() - t0).toFixed(1)} ms)`);
    return { ...result, images: [...names, 'inventory.img'], frozenMs };
  } catch (err) {
    let e = err;
    // a task that died under us explains whatever failed next (ESRCH, a missing /proc entry...)
    const gone = tasks.find((t) => !t.zombie && !isAlive(t.pid));
    if (gone && !(isCrtoolsError(e) && e.code === 'DUMP_ABORTED')) {
      e = new CrtoolsError('TASK_GONE', `task ${gone.pid} exited during the dump`, { context: { pid: gone.pid }, cause: err });
    }
    // the page server sees the connection end without PS_IOV_CLOSE: it keeps nothing
    ps?.socket.destroy();
    if (netLocked) {
      try {
        await notify('network-unlock', { pid });
      } catch (u) {
        log.warn('net', `network-unlock: ${u instanceof Error ? u.message : String(u)}`);
      }
    }
    if (nsLocked) netLock.quietly(() => netLock.unlockNamespace());
    linkRemaps?.undo();
    repairs?.resume();
    ttyQueues?.resume();
    resumeTree(tasks);
    await tracker?.abort();
    rmSync(tmp, { recursive: true, force: true });
    for (const n of placed) rmSync(path.join(dir, n), { force: true }); // (a post-dump hook or the lazy pages transfer failed)
    if (statsPlaced) rmSync(statsPlaced, { force: true });
    const msg = isCrtoolsError(e) || e instanceof Error ? e.message : String(e);
    log.error('dump', msg);
    log.info('Dumping FAILED.');
    throw e;
  } finally {
    cgroups?.close();
    // (the tree's sockets were looked up inside its network namespace)
    setSocketNamespace(undefined);
    log.close();
  }
}

/** The work directory once its images are moved out: removed, with whatever a hook left in it. */
function removeEmptied(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** crtools' own CPU time since `from` (process.cpuUsage), for the log beside wall times. */
function cpuSince(from: NodeJS.CpuUsage): string {
  const d = process.cpuUsage(from);
  return `crtools CPU: user ${(d.user / 1000).toFixed(1)} ms, system ${(d.system / 1000).toFixed(1)} ms`;
}

function isAlive(pid: number): boolean {
  try {
    return !['Z', 'X'].includes(readStat(pid).state);
  } catch {
    return false;
  }
}

function commOf(pid: number): string {
  try {
    return readStat(pid).comm;
  } catch {
    return '?';
  }
}

/**
 * filelocks.img as CRIU writes it: flock, POSIX and OFD locks the tree holds, each by a task and
 * the descriptor it is taken again through (flock/OFD locks belong to an open file: once per
 * file; POSIX locks to a process: once per task and range). Without --file-locks a lock is
 * refused, as CRIU refuses it, rather than silently dropped.
 */
class FileLocks {
  readonly entries: Entry[] = [];
  private readonly seen = new Set<string>();
  /** `imagePid`: a task's pid as the images name it (in the tree's pid namespace) */
  constructor(private readonly allowed: boolean, private readonly refusals: Refusals, private readonly imagePid: (pid: number) => number = (p) => p) {}

  /** The locks held through descriptors `fds` of task pid (fileIds: their files.img ids; undefined: a refused descriptor). */
  add(pid: number, fds: FdRecord[], fileIds: (number | undefined)[]): void {
    fds.forEach((r, i) => {
      for (const l of r.locks ?? []) this.refusals.check(() => this.addOne(pid, r, l, fileIds[i]));
    });
  }

  private addOne(pid: number, r: FdRecord, l: NonNullable<FdRecord['locks']>[number], fileId: number | undefined): void {
    if (l.blocked) return; // waiting for it, not holding it
    // a lease (F_SETLEASE) is carried while no one breaks it: one being broken (a writer
    // waiting) is refused, its break could not be started again as it was
    const flag = l.type === 'POSIX' ? FILE_LOCK_FLAG.POSIX : l.type === 'FLOCK' ? FILE_LOCK_FLAG.FLOCK : l.type === 'OFDLCK' ? FILE_LOCK_FLAG.OFD
      : l.type === 'LEASE' && l.mode === 'ACTIVE' ? FILE_LOCK_FLAG.LEASE : 0;
    const what = `task ${pid} fd ${r.fd} (${r.target}): a ${l.type}${l.type === 'LEASE' && l.mode !== 'ACTIVE' ? ` ${l.mode}` : ''} ${l.access} lock`;
    if (!flag || (l.access !== 'READ' && l.access !== 'WRITE')) {
      throw new CrtoolsError('UNSUPPORTED_LOCK', `${what} is not supported`, { context: { pid, fd: r.fd }, exitCode: ExitCode.UNSUPPORTED });
    }
    if (!this.allowed) {
      throw new CrtoolsError('DUMP_FILE_LOCKS', `${what} is held; dump with --file-locks to keep it`, { context: { pid, fd: r.fd }, exitCode: ExitCode.FAILED });
    }
    const owner = flag === FILE_LOCK_FLAG.POSIX ? `task ${pid}` : `file ${fileId}`; // (a lease is its open file's)
    const key = `${flag}:${owner}:${l.devMajor}:${l.devMinor}:${l.ino}:${l.start}:${l.end}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.entries.push({ flag, type: l.access === 'WRITE' ? FILE_LOCK_TYPE.WRITE : FILE_LOCK_TYPE.READ, pid: this.imagePid(pid), fd: r.fd, start: l.start, len: l.end === null ? 0n : l.end - l.start + 1n });
  }
}

async function dumpFrozen(
  tasks: FrozenTask[], dir: string, log: CriuLog, signal: AbortSignal | undefined, pageMethod: 'read' | 'splice',
  times: { freezingUs: number; frozenAt: number },
  opts: {
    fileLocks?: boolean; ghostLimit?: number; linkRemaps?: LinkRemaps; irmap?: IrmapLookup; refusals?: Refusals; shellJob?: boolean; unix?: { extUnixSk: boolean; external: ReadonlySet<number>; serviceSkIno?: number }; pageServer?: PageServerClient; tracker?: MemTracker | undefined;
    keepTracking?: boolean; incremental?: { dir: string; preDumpMode: 'splice' | 'read' } | undefined;
    /** the pages images made before the freeze, by pid */
    prefill?: PagesPrefill | undefined; inet?: InetDumpOptions; ttyQueues?: TtyQueueHold; extTty?: ReadonlySet<string>; inventory?: Entry;
    /** --lazy-pages: the lazy pages are left out of the images and named here, to be served from the frozen tree */
    lazy?: FrozenLazyPages | undefined;
    /** the tasks' css sets (--manage-cgroups, --freeze-cgroup, --cgroup-root, --cgroup-yard) */
    cgroups: Cgroups;
    /** --root, --external mnt[]/ext_mnt, --empty-ns net */
    mounts?: MountOptions;
    /** the tree's network namespace's tables, saved before the dump locked it */
    netTables?: SavedNetTables | undefined;
  },
): Promise<Omit<DumpResult, 'images' | 'frozenMs'>> {
  const refusals = opts.refusals ?? new Refusals();
  // a preflight collects everything but reads no page
  const checkOnly = refusals.gather;
  // an I/O signal owner (F_SETOWN) must be one of these: the tree's pids, tids and process groups
  // and a terminal's session and foreground group (each process's stat: its controlling terminal)
  const sessions = new Map(tasks.map((t) => {
    const st = readStat(t.pid);
    return [t.pid, { sid: st.session, pgrp: st.pgrp, ttyNr: st.ttyNr, tpgid: st.tpgid }] as const;
  }));
  // the pids the images carry: those inside the tree's pid namespace when it has its own
  const view = new PidView(tasks[0]!.pid, tasks.flatMap((t) => [t.pid, ...t.threads.map((th) => th.tid)]));
  const tree = {
    tasks: new Set(tasks.flatMap((t) => [t.pid, ...t.threads.map((th) => th.tid)])),
    groups: new Set([...sessions.values()].map((s) => s.pgrp)),
    root: tasks[0]!.pid,
    sessions,
    shellJob: !!opts.shellJob,
    ...(view.own ? { innerId: (id: number, group: boolean) => view.inner(id, group) } : {}),
  };
  let treeMounts: Set<number> | undefined;
  let roMounts: Set<number> | undefined;
  let nestedMounts: Set<number> | undefined;
  // a namespace file is carried when some task of the tree lives in that namespace (the restore
  // opens it again through that task): the namespaces the tasks live in, read when one is met
  let lived: Set<string> | undefined;
  const nsId = (kind: NsKind, ino: bigint): number | undefined => {
    lived ??= new Set(tasks.filter((t) => !t.zombie).flatMap((t) => [...nsInodes(t.pid)].map(([k, i]) => `${k}:${i}`)));
    return lived.has(`${kind}:${ino}`) ? namespaces.idOf(kind, ino) : undefined;
  };
  const files = new FileTable({ ghostLimit: opts.ghostLimit, ...(opts.linkRemaps ? { linkRemaps: opts.linkRemaps } : {}), ...(opts.irmap ? { irmap: opts.irmap } : {}), tree, refusals, inet: opts.inet, tty: { queues: opts.ttyQueues, ...(opts.extTty ? { external: opts.extTty } : {}) }, unix: { ...opts.unix, nestedMnt: (pid: number) => namespaces.livesNested(pid) }, mounts: () => treeMounts, readOnlyMounts: () => roMounts, nestedMounts: () => nestedMounts, nestedMountsOf: (sdev) => namespaces.nestedMountsOf(sdev), nsId, nestedNets: { of: (ino) => namespaces.nestedNetOf(ino), all: () => [...namespaces.nestedNet.values()], root: nsInodes(tasks[0]!.pid).get('net') } });
  const fileLocks = new FileLocks(!!opts.fileLocks, refusals, (p) => view.pid(p));
  const vmIds = new KobjIds(KCMP_VM);
  const filesIds = new KobjIds(KCMP_FILES);
  const fsIds = new KobjIds(KCMP_FS);
  const sighandIds = new KobjIds(KCMP_SIGHAND);
  // every task in criu's namespaces or the root's (the root's were checked before the freeze; a
  // task may have moved since, or live in a namespace of its own below the root)
  const namespaces = new Namespaces(tasks[0]!.pid, refusals, opts.mounts, opts.netTables);
  // the files' owners as ids inside the tree's user namespace, when it has one (as CRIU writes them)
  if (namespaces.userMaps) Object.assign(tree, { uidInside: (id: number) => namespaces.uidInside(id), gidInside: (id: number) => namespaces.gidInside(id) });
  namespaces.collectNested(tasks);
  // the tasks' css sets (cgroup.img); --freeze-cgroup's cgroup holds the tree and nothing else
  const cgroups = opts.cgroups;
  refusals.check(() => cgroups.checkFreezerTasks(tree.tasks));
  const nextPagesId = createPagesIdAllocator();
  // what the kernel does (cached like CRIU's criu.kdat): zero page PFN, task size, guard gap, shmem device
  const kd = loadKerndat().kerndat;
  refusals.check(() => namespaces.check(typeof kd.shmem_dev === 'number' ? decodeDev(kd.shmem_dev) : undefined, hugetlbDevs(kd)));
  // the tree's sockets are looked up where they live (runDump puts criu's namespace back)
  namespaces.socketsInside();
  treeMounts = namespaces.treeMountIds();
  roMounts = namespaces.readOnlyOwnMountIds();
  nestedMounts = namespaces.nestedMountIds();
  log.debug(`kerndat: zero_page_pfn ${kd.zero_page_pfn?.toString(16) ?? '?'} task_size ${kd.task_size?.toString(16) ?? '?'}`);
  const mapsOpts = mapsOptions(kd);
  const guardHow = guardLookup(kd);
  if (guardHow === 'none' && kd.has_madv_guard) log.warn('mem', 'this kernel installs guard regions (MADV_GUARD_INSTALL) but shows them neither to PAGEMAP_SCAN nor in pagemap entries: any a task has are not dumped');
  const taskSize = kd.task_size ?? DEFAULT_TASK_SIZE;
  const pstree: Entry[] = [];
  /** the tasks that are subreapers (PR_SET_CHILD_SUBREAPER): where orphans go */
  const subreapers = new Set<number>();
  const seccompChains = new SeccompChains();
  const aioRings = new AioRings();
  const sharedHuge = new SharedHugePages();
  let pagesWritten = 0;
  let pagesScanned = 0;
  let pagesSkippedParent = 0;
  let pagesLazy = 0;
  let memUs = 0;
  const sh = { objects: 0, scanned: 0, written: 0 };

  for (const task of tasks) {
    await atSafePoint(signal);
    const pid = task.pid;
    log.info(`========================================`);
    log.info(`Dumping task (pid: ${pid})`);
    if (task.zombie) {
      // a zombie is its exit status: a core with TASK_DEAD and the pstree entry, nothing else
      const stat = readStat(pid);
      const tc = { task_state: TASK_STATE.DEAD, exit_code: stat.exitCode, personality: 0, flags: 0, blk_sigset: 0n, comm: stat.comm };
      await writeImageFile(path.join(dir, `core-${view.pid(pid)}.img`), { magic: 'CORE', entries: [{ mtype: 'X86_64', tc }] });
      pstree.push(view.entry(pid, task.ppid, stat.pgrp, stat.session, [pid]));
      continue;
    }
    const nsIds = namespaces.idsOf(pid);
    const tProc = nowMs();
    const stat = readStat(pid);
    // everything the parasite's own area or fds would disturb is read first
    const vmas = readVmaList(pid, mapsOpts);
    task.areas = vmas.length;
    // (private huge pages shared copy-on-write with a task dumped before: marked in mm.img)
    sharedHuge.check(pid, vmas);
    // guard regions (MADV_GUARD_INSTALL) are no mappings of their own: found in the page tables
    const guards = guardRegions(pid, { how: guardHow, end: taskSize, areas: vmas });
    const fds = readFds(pid);
    const timers = readTimers(pid);
    let threadIds: number[] = [];
    log.debug(`  ${vmas.length} VMAs, ${guards.length} guard regions, ${fds.length} fds, ${timers.length} POSIX timers`);
    // where the frozen time goes (level 4): /proc reads, the parasite's injection, the written
    // pages found (tracking scan + plan), the pages moved, the rest of the task's images
    const tTask = nowMs();
    const phase = { infected: 0, mem: 0, tracked: 0, planned: 0, moved: 0 };
    await withInfection(pid, task.threads, async (inf) => {
      phase.infected = nowMs();
      const state = collectInfected(inf, { posixTimerIds: timers.map((t) => t.id) });
      if (state.misc.childSubreaper) subreapers.add(pid);
      log.info(`  collected ${state.threads.length} thread(s), ${state.sigactions.length} sigactions`);

      const shared = { vm_id: vmIds.idOf(pid), files_id: filesIds.idOf(pid), fs_id: fsIds.idOf(pid), sighand_id: sighandIds.idOf(pid) };
      refuseSharing(pid, task.ppid, fds, shared, refusals);
      const ids: Entry = {
        vm_id: shared.vm_id.id, files_id: shared.files_id.id, fs_id: shared.fs_id.id, sighand_id: shared.sighand_id.id, ...nsIds,
      };
      const mm = mmEntry(pid, vmas, stat, state.misc, files, guards, refusals, namespaces.sysvAttachLengths(hugetlbDevs(kd)), aioRings);
      for (const e of mm['vmas'] as Entry[]) if (sharedHuge.isShared(pid, e['start'] as bigint)) e['cow_huge'] = true;
      // a descriptor table is dumped once, with the first task that has it
      const tableSeen = shared.files_id.sharedWith !== undefined;
      const entries = tableSeen ? [] : fds.map((r) => files.fd(pid, r));
      if (!tableSeen) fileLocks.add(pid, fds, entries.map((e) => (e ? Number(e.id) : undefined)));
      socketMappings(pid, mm, fds, files, refusals);
      const fdinfo = entries.filter((e) => e !== undefined);
      const fs = { cwd_id: files.dirEntry(pid, 'cwd'), root_id: files.dirEntry(pid, 'root'), umask: parseInt(readStatusValue(pid, 'Umask') ?? '22', 8) };

      // (/proc/PID/timers names a timer's thread as crtools sees it; the image as the tree does)
      const ownTimers = timers.map((t) => (t.notifyTarget === 'tid' ? { ...t, notifyId: view.pid(t.notifyId) } : t));
      for (const [tid, core] of coreEntries(pid, state, stat, ownTimers, refusals, seccompChains, (tid) => cgroups.setOf(pid, tid), namespaces)) await writeImageFile(path.join(dir, `core-${view.pid(tid)}.img`), { magic: 'CORE', entries: [core] });
      await writeImageFile(path.join(dir, `ids-${view.pid(pid)}.img`), { magic: 'IDS', entries: [ids] });
      await writeImageFile(path.join(dir, `mm-${view.pid(pid)}.img`), { magic: 'MM', entries: [mm] });
      await writeImageFile(path.join(dir, `fs-${view.pid(pid)}.img`), { magic: 'FS', entries: [fs] });
      if (!tableSeen) await writeImageFile(path.join(dir, `fdinfo-${shared.files_id.id}.img`), { magic: 'FDINFO', entries: fdinfo });

      threadIds = state.threads.map((t) => t.tid);
      if (checkOnly) {
        files.takePendingShmem();
        return;
      }
      // memory: plan from /proc/PID/pagemap; pages move by the parasite's vmsplice + splice
      const pm = openPagemap(pid);
      const tMem = nowMs();
      phase.mem = tMem;
      try {
        let readMs = 0;
        const ahead = readAheadEntries(pm);
        const raw = (start: bigint, n: number) => {
          const t = nowMs();
          const e = ahead(start, n);
          readMs += nowMs() - t;
          return e;
        };
        // incremental (--prev-images-dir): pages not written since the parent round stay there
        // (--track-mem: uffd-wp + PAGEMAP_SCAN); without tracking every page is written again
        const track = opts.tracker?.task(pid, inf, vmas, `/proc/${pid}/pagemap`, !!opts.keepTracking);
        phase.tracked = nowMs();
        // (through a page server the parent round's pagemaps are the server's: PS_IOV_PARENT asks it, as CRIU does)
        const inParent = !!opts.incremental && (opts.pageServer ? await opts.pageServer.checkParent('task', view.pid(pid)) : existsSync(path.join(opts.incremental.dir, pagemapFileName('task', view.pid(pid)))));
        const plan = await planDump({
          vmas,
          pagemap: track ? writtenFilter(raw, track) : raw,
          // the pages not written since are left to the parent without reading their entries
          ...(track ? { parentRuns: track.parentRuns } : {}),
          threadSps: state.threads.map((t) => t.regs.sp),
          mode: opts.lazy ? 'lazy-dump' : 'dump',
          ...(opts.incremental ? { hasParent: inParent, trackMem: !!track?.tracked, parentPreDumpMode: opts.incremental.preDumpMode } : {}),
          ...(kd.zero_page_pfn !== undefined ? { zeroPagePfn: kd.zero_page_pfn } : {}),
          ...(kd.task_size !== undefined ? { taskSize: kd.task_size } : {}),
        });
        phase.planned = nowMs();
        log.debug(`  plan: /proc/${pid}/pagemap read in ${readMs.toFixed(1)} ms`);
        const stats = opts.pageServer
          ? await sendPages(opts.pageServer, 'task', view.pid(pid), plan.entries, pid, () => checkAbort(signal))
          : pageMethod === 'splice'
          ? await writePagesSpliced(inf, dir, pid, nextPagesId(), plan.entries, () => checkAbort(signal), vmas.filter((v) => !(v.prot & 1 /* PROT_READ */)), view.pid(pid), opts.prefill?.take(pid))
          : await writePagemap({
            dir, id: view.pid(pid), pagesId: nextPagesId(), entries: plan.entries,
            source: { read: (ranges: readonly PageRange[], dest: Buffer) => { checkAbort(signal); readRanges(pid, ranges, dest); } },
          });
        if (opts.lazy) pagesLazy += keepLazy(opts.lazy, view.pid(pid), pid, plan.entries);
        phase.moved = nowMs();
        pagesWritten += stats.pagesWritten;
        pagesScanned += plan.stats.pagesScanned;
        pagesSkippedParent += plan.stats.pagesSkippedParent;
        log.info(`  memory: ${plan.stats.pagesScanned} pages scanned, ${stats.pagesWritten} written${opts.lazy ? `, ${plan.stats.pagesLazy} lazy (left in the frozen task for the lazy-pages daemon)` : ''}`);
        // shared memory objects this task maps first: once each, right after the task's pages
        // (CRIU dumps them with the task's file mappings), read through the map_files link
        for (const o of files.takePendingShmem()) {
          checkAbort(signal);
          log.info(`Dumping shared memory ${o.shmid} (${o.nrPages} pages)`);
          const sink = opts.pageServer ? await opts.pageServer.openSink('shmem', o.shmid) : undefined;
          const r = await dumpShmemFile({ path: o.path, nrPages: o.nrPages, dir, shmid: o.shmid, pagesId: sink ? 0 : nextPagesId(), sink });
          sh.objects++;
          sh.scanned += o.nrPages;
          sh.written += r.written.pagesWritten;
        }
      } finally {
        memUs += Math.round((nowMs() - tMem) * 1000);
        pm.close();
      }
    }, { codeAreas: codeAreasOf(vmas) });
    pstree.push(view.entry(pid, task.ppid, stat.pgrp, stat.session, threadIds));
    if (phase.moved) {
      const ms = (a: number, b: number) => (b - a).toFixed(1);
      log.debug(`  frozen time of task ${pid}: /proc ${ms(tProc, tTask)} ms, infection ${ms(tTask, phase.infected)} ms, state and images ${ms(phase.infected, phase.mem)} ms, written pages found ${ms(phase.mem, phase.planned)} ms (tracking scan ${ms(phase.mem, phase.tracked)} ms, plan ${ms(phase.tracked, phase.planned)} ms), pages moved ${ms(phase.planned, phase.moved)} ms, shmem and cure ${ms(phase.moved, nowMs())} ms`);
    }
  }
  const tFiles = nowMs();
  // sessions and process groups whose leader is gone, and orphans in another session than their
  // reaper's, come back through helper processes where the restore can make them (as CRIU
  // 4.2's restore does, from pstree.img alone): the others are refused now, before the tree is killed
  for (const r of treeHelpers(tasks.map((t) => ({ pid: t.pid, ppid: t.ppid, pgid: sessions.get(t.pid)!.pgrp, sid: sessions.get(t.pid)!.sid, zombie: !!t.zombie, childSubreaper: subreapers.has(t.pid) })), view.own).refused) {
    refusals.check(() => {
      throw new CrtoolsError('UNSUPPORTED_SESSION', r.why, { exitCode: ExitCode.UNSUPPORTED, context: { pid: r.pid } });
    });
  }

  if (!checkOnly) {
    // a SysV segment's contents are shared memory pages, as an anonymous shared mapping's are
    await namespaces.write(dir, async (shmid, contents) => {
      const sink = opts.pageServer ? await opts.pageServer.openSink('shmem', shmid) : undefined;
      const nrPages = Math.ceil(contents.length / PAGE_SIZE);
      const r = await dumpShmemFile({ path: `SysV shared memory ${shmid}`, contents, nrPages, dir, shmid, pagesId: sink ? 0 : nextPagesId(), sink });
      // (counted with the other shared memory, as CRIU counts a segment's pages)
      sh.objects++;
      sh.scanned += nrPages;
      sh.written += r.written.pagesWritten;
    }, files.tunLinks());
  }
  files.finish();
  for (const im of files.images()) await writeImageFile(path.join(dir, im.file), { magic: im.magic, entries: im.entries });
  if (fileLocks.entries.length) await writeImageFile(path.join(dir, 'filelocks.img'), { magic: 'FILE_LOCKS', entries: fileLocks.entries });
  await writeImageFile(path.join(dir, 'pstree.img'), { magic: 'PSTREE', entries: pstree });
  await writeImageFile(path.join(dir, 'seccomp.img'), { magic: 'SECCOMP', entries: [seccompChains.entry()] });
  if (!checkOnly) await cgroups.write(dir);
  log.debug(`frozen time of the tree's files and images: ${(nowMs() - tFiles).toFixed(1)} ms`);
  await namespaces.writeClocks(dir);
  await writeImageFile(path.join(dir, 'inventory.img'), {
    magic: 'INVENTORY',
    entries: [{
      img_version: 2, fdinfo_per_id: true,
      root_ids: { vm_id: 1, files_id: 1, fs_id: 1, sighand_id: 1, ...namespaces.ownIds },
      ns_per_id: true, root_cg_set: 1, lsmtype: 'NO_LSM', network_lock_method: 0, ...opts.inventory,
      // as CRIU: the uptime of a dump that tracks memory (a later round tells new tasks by it)
      ...(opts.tracker ? { dump_uptime: uptimeMicros() } : {}),
    }],
  });
  // stats-dump as CRIU writes it (every field it always sets; times in microseconds)
  const stats: DumpStats = {
    freezing_time: times.freezingUs, frozen_time: Math.round((nowMs() - times.frozenAt) * 1000), memdump_time: memUs, memwrite_time: memUs,
    pages_scanned: BigInt(pagesScanned), pages_skipped_parent: BigInt(pagesSkippedParent), pages_written: BigInt(pagesWritten), irmap_resolve: 0, pages_lazy: BigInt(pagesLazy),
    shpages_scanned: BigInt(sh.scanned), shpages_skipped_parent: 0n /* shared memory is written whole every round */, shpages_written: BigInt(sh.written),
  };
  return { pids: tasks.map((t) => t.pid), pagesWritten, pagesScanned, stats };
}

/** x86_64 with 4-level page tables, where kerndat could not say */
const DEFAULT_TASK_SIZE = 0x7ffffffff000n;

/**
 * How this kernel shows a task's guard regions: PAGEMAP_SCAN's guard category (6.14+) in one
 * walk of the address space; else bit 58 of each pagemap entry (6.15+; a kernel with the bit but
 * not the category is a backport) read over every mapping; else none can be seen — either the
 * kernel has no MADV_GUARD_INSTALL (there are none), or it is 6.13, which installs them but shows
 * them nowhere (the dump warns once).
 */
export function guardLookup(kd: Pick<Kerndat, 'has_madv_guard' | 'has_pagemap_scan_guard_pages' | 'has_pagemap_guard_bit'>): GuardLookup {
  if (!kd.has_madv_guard) return 'none';
  if (kd.has_pagemap_scan_guard_pages) return 'scan';
  if (kd.has_pagemap_guard_bit) return 'pagemap';
  return 'none';
}

/**
 * A task's pagemap to the page server: PS_IOV_OPEN2, then its entries and pages (read through
 * /proc/PID/mem, which the stopped tracee's unreadable mappings do not stop, as CRIU's parasite
 * adds PROT_READ for its copy). No pages image id is taken here: the server numbers its own.
 */
async function sendPages(client: PageServerClient, kind: 'task', id: number, entries: Parameters<typeof writePages>[0]['entries'], pid: number, check: () => void): Promise<{ pagesWritten: number }> {
  const sink = await client.openSink(kind, id);
  const mem = procMemPageSource(pid);
  try {
    const w = await writePages({ entries, sink, source: { read: (ranges, dest) => { check(); return mem.read(ranges, dest); } } });
    await sink.close();
    return { pagesWritten: w.pagesWritten };
  } finally {
    mem.close();
  }
}

/**
 * --lazy-pages: the entries left lazy (PE_LAZY without PE_PRESENT: not in the pages image) named
 * to the page server that serves them from the frozen task later; no page is read now.
 */
function keepLazy(lazy: FrozenLazyPages, id: number, pid: number, entries: readonly { vaddr: bigint; nrPages: number; flags: number }[]): number {
  let pages = 0;
  for (const e of entries) {
    if (!(e.flags & PE_LAZY) || e.flags & PE_PRESENT) continue;
    lazy.add(id, pid, e.vaddr, e.nrPages);
    pages += e.nrPages;
  }
  return pages;
}

/**
 * A safe point between two steps: the event loop turns once, then the abort is checked. A
 * SIGINT or SIGTERM reaches its handler (which aborts) only when the loop turns, and a dump's
 * work is synchronous from the freeze to the images (its image writes too): without this turn
 * a signal that came during the pages would be seen only once the dump is over.
 */
async function atSafePoint(signal?: AbortSignal): Promise<void> {
  if (signal) await new Promise<void>((resolve) => setImmediate(resolve));
  checkAbort(signal);
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) {
    throw new CrtoolsError('DUMP_ABORTED', `dump interrupted (${String(signal.reason ?? 'aborted')})`, { exitCode: ExitCode.FAILED });
  }
}

function readRanges(pid: number, ranges: readonly PageRange[], dest: Buffer): void {
  let off = 0;
  for (const r of ranges) {
    const len = r.nrPages * PAGE_SIZE;
    let done = 0;
    while (done < len) {
      const n = readMemory(pid, r.vaddr + BigInt(done), dest, off + done, len - done);
      if (n <= 0) throw new CrtoolsError('MEM_READ', `task ${pid}: could not read memory at 0x${(r.vaddr + BigInt(done)).toString(16)}`, { context: { pid } });
      done += n;
    }
    off += len;
  }
}

