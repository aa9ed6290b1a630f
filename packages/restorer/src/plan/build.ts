/**
 * images → restore plan (one file a concern beside this one: threads, task, memory; files by kind
 * in @crtools/files/plan): reads a CRIU image directory (ours or CRIU 4.2's) through
 * @crtools/images and @crtools/pagemap and produces the plain-data plan @crtools/restorer runs.
 * Everything that can be checked before forking is checked here (missing files, sizes,
 * truncated pages images, unsupported kinds).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PAGE_SIZE_BIGINT, nowMs, treeHelpers, silentLogger, type Logger } from '@crtools/common';
import { COREDUMP_FILTER_DEFAULT, FILE_LOCK_FLAG, FILE_LOCK_TYPE, NS_CLONE_FLAG, NS_KINDS, STOP_SIGNALS, stopSignal, TASK_STATE } from '@crtools/images/facts';
import { openPageReader, vmaCanBeLazy } from '@crtools/pagemap';
import { badImage as badInput, big, FilePlanTable, firstEntry as first, missingFile as missing, readImage as img, refuse as unsupported, type Obj } from '@crtools/files/plan';
import { type FilePlan, type HelperPlan, type NamespacePlan, type NetPlan, type PageRun, type ShmemPlan, type RestorePlan, type TaskPlan, type ThreadPlan, type VmaPlan } from '../plan.js';
import { sigQueue, threadFrom } from './threads.js';
import { fileIdent, sameFile, type LazySplit } from '../lazy-socket.js';
import { checkTaskNamespaces, mountsOf, nestedMountNamespaces, nestedNetNamespaces, readTreeIds, rootNamespaces, treeNetPeers, type TreeNets } from './namespaces.js';
import type { NetExternals } from '../net-externals.js';
import { cgroupsOf, cgSetOf } from './cgroups.js';
import { madeMountpoints } from '../mounts.js';
import { capsFrom, oomFrom, posixTimer, zombieTask } from './task.js';
import { byAddress, coveredUpTo, endingAfterCursor, spanAt } from '../areas.js';
import { checkHugePages } from './hugetlb.js';
import { aioRingsFrom, checkPagesImages, checkSysvAttaches, guardsFrom, isGuardEntry, ShmemTable, socketAreas, splitAtAreas, vmaFrom } from './memory.js';

const FD_CLOEXEC = 1;
const SIGCONT = 18;

export interface BuildPlanOptions {
  logger?: Logger;
  /**
   * CRIU's --inherit-fd: files handed over by the caller instead of made again, by the name CRIU
   * gives them (`pipe:[ino]`, `socket:[ino]`, a path without its leading slash) → descriptor
   */
  inherit?: Map<string, number>;
  /** --shell-job: a terminal outside the tree (a pty slave without its master) is criu's standard input */
  shellJob?: boolean;
  /** --lazy-pages: the lazy pages as ranges for the daemon (TaskPlan.lazyRanges), the lazy areas marked, instead of planning to fill them */
  lazy?: boolean;
  /**
   * --lazy-pages, our daemon's: a task's split as the daemon found it (LazySplit), if it sent
   * one, taken instead of walking the task's pagemap when its pagemap and mm images are the files
   * the daemon read (none, or other files: walked here)
   */
  lazySplit?: (pid: number) => LazySplit | undefined;
  /** --ext-unix-sk: unix sockets connected to a named one outside the tree connect to it again */
  extUnixSk?: boolean;
  /** --empty-ns: CLONE_NEW* bits of the namespaces made empty (their images not read) */
  emptyNs?: number;
  /** --veth-pair, --external veth[]/macvlan[] (RPC veths, external): where the tree's network devices meet the outside */
  netExternals?: NetExternals;
  /** --skip-file-rwx-check: files' rwx bits may differ from the recorded modes */
  skipFileRwxCheck?: boolean;
  /** --root: the tree's mounts are made under this directory, which becomes its root (no path of the images is there yet) */
  root?: string;
}

export async function buildRestorePlan(dirIn: string, opts: BuildPlanOptions = {}): Promise<RestorePlan> {
  const log = opts.logger ?? silentLogger;
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw badInput(`images directory ${dir} does not exist`, { path: dir });
  const inventory = first(await img(dir, 'inventory.img', 'INVENTORY'), 'inventory.img');
  const pstree = (await img(dir, 'pstree.img', 'PSTREE'))!;
  if (!pstree.length) throw badInput('pstree.img: no tasks', { image: 'pstree.img' });
  // files below the mounts a restore makes anew (a mount namespace of the tree's) are not there yet
  const madeAt: string[] = opts.root ? ['/'] : [];
  for (const f of opts.root ? [] : readdirSync(dir)) {
    const m = /^mountpoints-(\d+)\.img$/.exec(f);
    if (m) madeAt.push(...madeMountpoints(await mountsOf(dir, Number(m[1]))));
  }
  // the mount namespaces tasks made below the root's: a file reached through one of their
  // mounts is opened through a task living there (its root), once every task exists
  const treeIds = await readTreeIds(dir, pstree);
  const below = await nestedMountNamespaces(dir, pstree, treeIds, (inventory.root_ids ?? {}) as Obj);
  // the network namespaces below the root's: made with the root's, each task put in its own
  const nets = await nestedNetNamespaces(dir, pstree, treeIds, (inventory.root_ids ?? {}) as Obj);
  const files = await FilePlanTable.load(dir, { inherit: opts.inherit, shellJob: opts.shellJob, extUnixSk: opts.extUnixSk, madeAt, skipFileRwxCheck: opts.skipFileRwxCheck, nestedMounts: below.owner });
  const shmem = new ShmemTable(files.memfd);
  // seccomp.img: every filter of the tree (one entry; none or no image: no filters)
  const seccompFilters = ((await img(dir, 'seccomp.img', 'SECCOMP', true))?.[0]?.seccomp_filters ?? undefined) as Obj[] | undefined;

  // root first, then parents before children
  const pids = new Set(pstree.map((e) => Number(e.pid)));
  const roots = pstree.filter((e) => !pids.has(Number(e.ppid)));
  if (roots.length !== 1) throw unsupported(`pstree.img: ${roots.length} root tasks (one expected)`);
  const order: Obj[] = [];
  const queue = [roots[0]!];
  while (queue.length) {
    const e = queue.shift()!;
    order.push(e);
    for (const c of pstree) if (Number(c.ppid) === Number(e.pid)) queue.push(c);
  }
  if (order.length !== pstree.length) throw badInput('pstree.img: tasks not reachable from the root');
  const indexOf = new Map(order.map((e, i) => [Number(e.pid), i]));

  const tasks: TaskPlan[] = [];
  /** "kind:id" of every kobj id met (vm_id, files_id...) → the pid that has it */
  const sharedIds = new Map<string, number>();
  /** pid → files_id, to find a child that shares its parent's descriptor table */
  const filesIdOf = new Map<number, number>();
  /** pid → its ids (a task's namespaces are its parent's) */
  const idsOf = new Map<number, Obj>();
  let namespaces: NamespacePlan | undefined;
  for (const e of order) {
    const pid = Number(e.pid);
    const corePath = `core-${pid}.img`;
    const core = first(await img(dir, corePath, 'CORE'), corePath);
    const tc = core.tc as Obj | undefined;
    if (!tc) throw badInput(`${corePath}: no task state`, { image: corePath });
    if (tc.task_state === TASK_STATE.DEAD) {
      if (tasks.length === 0) throw badInput(`pid ${pid}: the root task is a zombie`, { pid });
      tasks.push(zombieTask(pid, indexOf.get(Number(e.ppid))!, Number(e.pgid), Number(e.sid), Number(tc.exit_code ?? 0), tc.comm));
      log.debug(`restore plan: pid ${pid}: a zombie (status 0x${Number(tc.exit_code ?? 0).toString(16)})`);
      continue;
    }
    if (tc.task_state !== undefined && tc.task_state !== TASK_STATE.ALIVE && tc.task_state !== TASK_STATE.STOPPED) {
      throw unsupported(`pid ${pid}: task state ${tc.task_state} is not restored yet`, { pid });
    }
    const ids = core.ids ?? first(await img(dir, `ids-${pid}.img`, 'IDS'), `ids-${pid}.img`);
    // the root's namespaces that are not the dump's criu's are made again; every other task
    // lives in its parent's
    if (tasks.length === 0) namespaces = await rootNamespaces(dir, pid, (inventory.root_ids ?? {}) as Obj, ids, opts.emptyNs, opts.inherit, opts.netExternals);
    else checkTaskNamespaces(pid, ids, idsOf.get(Number(e.ppid)) ?? {}, below.byId, nets);
    const unshareMnt = tasks.length > 0 && below.byId.get(Number(ids.mnt_ns_id))?.first === pid ? Number(ids.mnt_ns_id) : undefined;
    // a task in another network namespace of the tree than its parent's enters it first thing
    const parentNet = idsOf.get(Number(e.ppid))?.net_ns_id;
    const enterNet = tasks.length > 0 && nets.byId.size && ids.net_ns_id !== undefined && parentNet !== undefined && Number(ids.net_ns_id) !== Number(parentNet) ? Number(ids.net_ns_id) : undefined;
    idsOf.set(pid, ids);
    // each process gets its own memory, handlers and fs: two processes that shared one (CLONE_VM
    // without CLONE_THREAD, CLONE_SIGHAND, CLONE_FS) would not. A descriptor table a child
    // shares with its parent (CLONE_FILES) is shared again; with another task it is refused.
    const parentIdx = tasks.length === 0 ? -1 : indexOf.get(Number(e.ppid))!;
    const parentFiles = parentIdx >= 0 ? filesIdOf.get(tasks[parentIdx]!.pid) : undefined;
    const shareFiles = ids.files_id !== undefined && parentFiles !== undefined && Number(ids.files_id) === parentFiles;
    if (ids.files_id !== undefined) filesIdOf.set(pid, Number(ids.files_id));
    for (const k of ['vm_id', 'sighand_id', 'files_id', 'fs_id']) {
      if (ids[k] === undefined || (k === 'files_id' && shareFiles)) continue;
      const other = sharedIds.get(`${k}:${ids[k]}`);
      if (other !== undefined) {
        const also = k === 'files_id' ? ' (only a table a child shares with its parent is)' : '';
        throw unsupported(`pid ${pid} shares its ${k.replace(/_id$/, '')} (${k} ${ids[k]}) with pid ${other}, which restore does not recreate${also}`, { pid });
      }
      sharedIds.set(`${k}:${ids[k]}`, pid);
    }
    const mm = first(await img(dir, `mm-${pid}.img`, 'MM'), `mm-${pid}.img`);
    const fs = first(await img(dir, `fs-${pid}.img`, 'FS'), `fs-${pid}.img`);
    const fdinfoFile = inventory.fdinfo_per_id ? `fdinfo-${ids.files_id}.img` : `fdinfo-${pid}.img`;
    if (shareFiles) {
      // the table's first holder makes its pidfds and files opened late (once every task
      // exists) late, when the sharers could race it for the numbers
      let o = parentIdx;
      while (tasks[o]!.shareFiles) o = tasks[o]!.parent;
      const late = (f: FilePlan) => f.kind === 'pidfd' || (f.kind === 'reg' && !!f.late);
      const pfd = tasks[o]!.fds.find((x) => late(files.files[x.file]!));
      if (pfd) throw unsupported(`pid ${pid} shares the descriptor table of pid ${tasks[o]!.pid}, which holds a ${files.files[pfd.file]!.kind === 'pidfd' ? 'pidfd' : `file opened once every task exists (${(files.files[pfd.file] as { path: string }).path})`} (fd ${pfd.fd}): not restored`, { pid });
    }
    // a table shared with the parent is made by the parent: this task holds the same descriptors
    const fdinfo = shareFiles ? [] : ((await img(dir, fdinfoFile, 'FDINFO')) ?? []);

    const threadIds: number[] = (e.threads ?? [pid]).map(Number);
    if (threadIds[0] !== pid) threadIds.sort((a, b) => (a === pid ? -1 : b === pid ? 1 : 0));
    const threads: ThreadPlan[] = [];
    for (const tid of threadIds) {
      const c = tid === pid ? core : first(await img(dir, `core-${tid}.img`, 'CORE'), `core-${tid}.img`);
      const old = tid === pid ? { mode: tc.old_seccomp_mode, filter: tc.old_seccomp_filter } : undefined;
      // (a thread in cgroups of its own: moved there once its process is in its own)
      const set = cgSetOf(c);
      const th = threadFrom(tid, c, tc, `core-${tid}.img`, seccompFilters, old);
      threads.push(tid !== pid && set !== undefined && set !== cgSetOf(core) ? { ...th, cgSet: set } : th);
    }

    // stopped: stopped again with its own stop signal (images without one, or with another signal:
    // SIGSTOP). A SIGCONT still queued came after the stop (a stop signal discards queued ones):
    // the task was continued while the dump held it, so it runs on and handles that SIGCONT.
    const processSignals = sigQueue(tc.signals_s, corePath);
    const continued = [processSignals, ...threads.map((t) => t.pendingSignals)].some((q) => q?.some((si) => si.readInt32LE(0) === SIGCONT));
    const stopSigno = tc.task_state === TASK_STATE.STOPPED && !continued ? stopSignal(Number(tc.stop_signo ?? 0)) || STOP_SIGNALS.SIGSTOP : undefined;

    // guard regions (VMA_AREA_GUARD entries) are ranges to put back, not areas to map
    const vmas = ((mm.vmas ?? []) as Obj[]).filter((v) => !isGuardEntry(v)).map((v: Obj) => vmaFrom(v, files, shmem, pid));
    const tp = nowMs();
    // a lazy restore: the lazy pages are ranges for the daemon (one per stretch of an area, not
    // per pagemap entry: ~4,600 for 4 GiB), and only the other pages are runs to fill; our
    // daemon walked the pagemap before it listened and sent the split: taken as it is when the
    // files are the ones it read (nothing here then grows with the checkpoint)
    let lazyRanges: { start: bigint; end: bigint }[] | undefined;
    let segments: { vaddr: bigint; nrPages: number; path: string; offset: number }[];
    let pagesPath: string;
    const raw = opts.lazy ? ((mm.vmas ?? []) as Obj[]).filter((v) => !isGuardEntry(v)).map((v) => ({ start: big(v.start), end: big(v.end), flags: Number(v.flags), status: Number(v.status) >>> 0 })) : [];
    const given = opts.lazy ? opts.lazySplit?.(pid) : undefined;
    if (given && sameFile(given.pagemap, fileIdent(join(dir, `pagemap-${pid}.img`))) && sameFile(given.mm, fileIdent(join(dir, `mm-${pid}.img`)))) {
      ({ ranges: lazyRanges, segments, pagesPath } = given);
      log.debug(`restore plan: pid ${pid}: pagemap of ${given.entries} entries split by the lazy-pages daemon: ${segments.length} runs and ${lazyRanges.length} lazy range(s), taken in ${(nowMs() - tp).toFixed(1)} ms`);
    } else {
      const reader = await openPageReader({ dir, id: pid });
      const tr = nowMs();
      if (opts.lazy) ({ ranges: lazyRanges, segments } = reader.lazySplit(raw));
      else segments = reader.segments();
      pagesPath = reader.pagesPath;
      reader.close();
      log.debug(`restore plan: pid ${pid}: pagemap of ${reader.columns.count} entries read in ${(tr - tp).toFixed(1)} ms, ${segments.length} runs${lazyRanges ? ` and ${lazyRanges.length} lazy range(s)` : ''} in ${(nowMs() - tr).toFixed(1)} ms`);
    }
    if (opts.lazy) vmas.forEach((v, k) => { if (vmaCanBeLazy({ ...raw[k]!, prot: v.prot })) v.lazy = true; });
    const pages: PageRun[] = segments.map((s) => ({ vaddr: s.vaddr, npages: BigInt(s.nrPages), offset: BigInt(s.offset), path: s.path }));
    checkPagesImages(pages);
    // (sorted only if the image's order is not the address order, as the kernel lists them)
    const sorted = byAddress(vmas).sorted;
    // (the kernel never gives a task two areas over one address; every lookup below counts on it)
    for (let k = 1; k < sorted.length; k++) {
      if (sorted[k - 1]!.end > sorted[k]!.start) throw badInput(`mm-${pid}.img: areas at 0x${sorted[k - 1]!.start.toString(16)} and 0x${sorted[k]!.start.toString(16)} overlap`, { pid });
    }
    const guards = guardsFrom(((mm.vmas ?? []) as Obj[]).filter(isGuardEntry), sorted, pid);
    const aios = aioRingsFrom((mm.aios ?? []) as Obj[], vmas, pid);
    // (the runs come in address order: the areas each meets found by a cursor)
    const meeting = endingAfterCursor(sorted);
    for (const p of pages) {
      // a run may span adjacent areas; every page of it must be inside one, and none shared
      const end = p.vaddr + p.npages * PAGE_SIZE_BIGINT;
      const first = meeting(p.vaddr);
      let shared = false;
      for (let k = first; k < sorted.length && sorted[k]!.start < end; k++) shared ||= sorted[k]!.kind === 'file-shared' || sorted[k]!.kind === 'socket';
      if (shared || coveredUpTo(sorted, p.vaddr, end, first) < end) {
        throw badInput(`pagemap-${pid}.img: pages at 0x${p.vaddr.toString(16)} lie outside the task's private mappings`, { pid });
      }
    }
    // vDSO pages are the kernel's; never write them (each split run lies in one area)
    const areaAt = endingAfterCursor(sorted);
    const kernels = (p: PageRun): boolean => {
      const v = sorted[spanAt(sorted, p.vaddr, areaAt(p.vaddr))];
      return v !== undefined && (v.kind === 'vdso' || v.kind === 'vvar');
    };
    const split = splitAtAreas(pages, sorted);
    const restorable: PageRun[] = [];
    const kernelPages: PageRun[] = [];
    for (const p of split) (kernels(p) ? kernelPages : restorable).push(p);

    const fds = fdinfo.map((f: Obj) => ({ fd: Number(f.fd), file: files.index(Number(f.id), `pid ${pid} fd ${f.fd}`, pid), cloexec: (Number(f.flags) & FD_CLOEXEC) !== 0 }));
    socketAreas(vmas, fds, files, pid);
    // an epoll this task owns must find every target among its descriptors
    for (const fd of fds) {
      const fp = files.files[fd.file]!;
      if (fp.kind !== 'epoll' || fp.owner !== pid) continue;
      for (const t of fp.targets) {
        if (!fds.some((x) => x.fd === t.fd)) throw badInput(`pid ${pid} fd ${fd.fd}: epoll watches fd ${t.fd}, which the task does not have`, { pid });
      }
    }
    const creds = (core.thread_core?.creds ?? {}) as Obj;
    const sigs = (tc.sigactions ?? []) as Obj[];
    const sigactions = [];
    let k = 0;
    for (let sig = 1; sig <= 64; sig++) {
      if (sig === 9 || sig === 19) {
        sigactions.push({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n });
        continue;
      }
      const s = sigs[k++];
      sigactions.push({ handler: big(s?.sigaction), flags: big(s?.flags), restorer: big(s?.restorer), mask: big(s?.mask) });
    }
    const tm = (tc.timers ?? {}) as Obj;
    const itimer = (x: Obj | undefined) => ({ isec: big(x?.isec), iusec: big(x?.iusec), vsec: big(x?.vsec), vusec: big(x?.vusec) });
    const exe = mm.exe_file_id !== undefined ? files.regPath(Number(mm.exe_file_id), `pid ${pid} exe`) : undefined;
    const exeGhost = mm.exe_file_id !== undefined ? files.ghostOf(Number(mm.exe_file_id)) : undefined;
    if (exe && exeGhost === undefined && files.gone(exe)) throw missing(`pid ${pid}: executable ${exe} no longer exists`, exe);
    const cwd = fs.cwd_id !== undefined ? files.regPath(Number(fs.cwd_id), `pid ${pid} cwd`) : undefined;
    // a removed working directory or root is a ghost directory, made again by the restore
    const cwdGhost = fs.cwd_id !== undefined ? files.ghostOf(Number(fs.cwd_id)) : undefined;
    const rootGhost = fs.root_id !== undefined ? files.ghostOf(Number(fs.root_id)) : undefined;
    // a /proc directory of a process gone (remap-fpath.img PROCFS): entered while that process lives again (planDeadPids)
    const underDead = (p: string | undefined) => {
      const m = p === undefined ? null : /^\/proc\/(\d+)(\/|$)/.exec(p);
      return !!m && files.deadPids.includes(Number(m[1]));
    };
    const deadCwd = underDead(cwd);
    const root = fs.root_id !== undefined ? files.regPath(Number(fs.root_id), `pid ${pid} root`) : undefined;
    if (underDead(root)) throw unsupported(`pid ${pid}: root ${root}, a /proc directory of a process gone, is not restored (a working directory there is)`, { pid });
    if (cwd && cwdGhost === undefined && !deadCwd && files.gone(cwd)) throw missing(`pid ${pid}: working directory ${cwd} no longer exists`, cwd);

    tasks.push({
      pid,
      ...(cgSetOf(core) !== undefined ? { cgSet: cgSetOf(core) } : {}),
      parent: parentIdx,
      ...(shareFiles ? { shareFiles: true } : {}),
      pgid: Number(e.pgid),
      sid: Number(e.sid),
      threads,
      vmas,
      pagesPath,
      pages: restorable,
      ...(lazyRanges ? { lazyRanges } : {}),
      ...(kernelPages.length ? { kernelPages } : {}),
      fds,
      cwd,
      ...(deadCwd ? { deadCwd: true } : {}),
      ...(unshareMnt !== undefined ? { unshareMnt } : {}),
      ...(enterNet !== undefined ? { netns: enterNet } : {}),
      root,
      umask: Number(fs.umask ?? 0o22),
      personality: Number(tc.personality ?? 0),
      mm: {
        startCode: big(mm.mm_start_code), endCode: big(mm.mm_end_code), startData: big(mm.mm_start_data), endData: big(mm.mm_end_data),
        startStack: big(mm.mm_start_stack), startBrk: big(mm.mm_start_brk), brk: big(mm.mm_brk), argStart: big(mm.mm_arg_start),
        argEnd: big(mm.mm_arg_end), envStart: big(mm.mm_env_start), envEnd: big(mm.mm_env_end),
      },
      auxv: (mm.mm_saved_auxv ?? []).map(big),
      exe,
      exeGhost,
      ...(cwdGhost !== undefined ? { cwdGhost } : {}),
      ...(rootGhost !== undefined ? { rootGhost } : {}),
      dumpable: Number(mm.dumpable ?? 1),
      sigactions,
      rlimits: ((tc.rlimits?.rlimits ?? []) as Obj[]).map((r) => ({ cur: big(r.cur), max: big(r.max) })),
      creds: {
        uid: creds.uid ?? 0, gid: creds.gid ?? 0, euid: creds.euid ?? 0, egid: creds.egid ?? 0,
        suid: creds.suid ?? 0, sgid: creds.sgid ?? 0, fsuid: creds.fsuid ?? 0, fsgid: creds.fsgid ?? 0,
        groups: (creds.groups ?? []).map(Number),
        caps: capsFrom(creds),
      },
      itimers: [itimer(tm.real), itimer(tm.virt), itimer(tm.prof)],
      childSubreaper: !!tc.child_subreaper,
      ...(tc.loginuid !== undefined ? { loginuid: Number(tc.loginuid) } : {}),
      ...(mm.thp_disabled ? { thpDisabled: true } : {}),
      coredumpFilter: Number(mm.coredump_filter ?? COREDUMP_FILTER_DEFAULT),
      ...(tc.membarrier_registration_mask ? { membarrier: Number(tc.membarrier_registration_mask) } : {}),
      pendingSignals: processSignals,
      posixTimers: ((tm.posix ?? []) as Obj[]).map((p) => posixTimer(p, pid, threadIds)),
      oomScoreAdj: oomFrom(tc.oom_score_adj, corePath),
      ...(guards.length ? { guards } : {}),
      ...(aios.length ? { aios } : {}),
      ...(stopSigno ? { stopSigno } : {}),
    });
    log.debug(`restore plan: pid ${pid}: ${threads.length} thread(s), ${vmas.length} areas${guards.length ? ` (${guards.length} guard regions)` : ''}, ${restorable.length} page runs, ${fds.length} fds${stopSigno ? `, stopped (signal ${stopSigno})` : ''}`);
  }
  files.finish();
  checkSocketNamespaces(files.files, nets);
  if (nets.byId.size) {
    namespaces ??= { cloneFlags: 0 };
    namespaces.nestedNets = nets.byId;
    if (nets.root !== undefined) namespaces.rootNetId = nets.root;
  }
  // veth pairs across two of them, and the ids they know each other by
  treeNetPeers(new Map<number, NetPlan>([...(namespaces?.net ? [[namespaces.net.id, namespaces.net] as const] : []), ...nets.byId]));
  if (namespaces && below.byId.size) namespaces.nestedMounts = new Map([...below.byId].map(([id, n]) => [id, { mounts: n.mounts, parent: n.parent }]));
  checkSysvAttaches(tasks, namespaces?.sysv);
  checkFownOwners(tasks, files.files);
  checkPidfds(tasks, files.files);
  checkProcPaths(tasks, files.files, namespaces);
  const helpers = planHelpers(tasks, ((namespaces?.cloneFlags ?? 0) & NS_CLONE_FLAG.pid) !== 0);
  planDeadPids(tasks, files.deadPids);
  checkTerminals(tasks, files.files);
  // a descriptor on a memfd opens the very object its mappings (in any task) map
  files.files.forEach((f, i) => {
    if (f.kind === 'memfd') f.shmem = shmem.memfdObject(f.inodeId, `file ${i} (memfd)`);
  });
  for (const k of files.unusedInherit()) if (k !== namespaces?.extNet?.key) log.warn(`--inherit-fd: no file of the checkpoint is ${k}`);
  // shared memory objects: their pages, offsets within the object
  const shmemPlans: ShmemPlan[] = [];
  for (const o of shmem.objects) {
    const extra = { ...(o.memfd ? { memfd: o.memfd } : {}), ...(o.hugetlb !== undefined ? { hugetlb: o.hugetlb } : {}), ...(o.owner ? { owner: o.owner } : {}) };
    // an empty object has no pages image
    if (o.size === 0n) {
      shmemPlans.push({ size: 0n, pages: [], ...extra });
      continue;
    }
    const name = `pagemap-shmem-${o.shmid}.img`;
    if (!existsSync(join(dir, name))) throw badInput(`${join(dir, name)}: image missing (the shared memory's pages)`, { image: name });
    const reader = await openPageReader({ dir, id: o.shmid, kind: 'shmem' });
    const pages: PageRun[] = reader.segments().map((s) => ({ vaddr: s.vaddr, npages: BigInt(s.nrPages), offset: BigInt(s.offset), path: s.path }));
    reader.close();
    checkPagesImages(pages);
    for (const p of pages) {
      if (p.vaddr + p.npages * PAGE_SIZE_BIGINT > ((o.size + PAGE_SIZE_BIGINT - 1n) & ~(PAGE_SIZE_BIGINT - 1n))) throw badInput(`pagemap-shmem-${o.shmid}.img: pages at offset 0x${p.vaddr.toString(16)} lie past the ${o.size} bytes of the shared memory`, { image: `pagemap-shmem-${o.shmid}.img` });
    }
    shmemPlans.push({ size: o.size, pages, ...extra });
  }
  // huge pages: the machine must have free ones of each size the checkpoint needs (refused by name)
  checkHugePages(tasks, shmemPlans, namespaces?.sysv);
  // file locks: each taken again by its task through its descriptor
  for (const l of (await img(dir, 'filelocks.img', 'FILE_LOCKS', true)) ?? []) {
    const t = tasks.find((x) => x.pid === Number(l.pid) && !x.zombie);
    const where = `filelocks.img: a lock of pid ${l.pid} on fd ${l.fd}`;
    if (!t) throw badInput(`${where}: no such task in pstree.img`, { image: 'filelocks.img' });
    if (!t.fds.some((f) => f.fd === Number(l.fd))) throw badInput(`${where}: the task has no such descriptor`, { image: 'filelocks.img' });
    const flag = Number(l.flag);
    const type = Number(l.type);
    if (!(Object.values(FILE_LOCK_FLAG) as number[]).includes(flag) || !(Object.values(FILE_LOCK_TYPE) as number[]).includes(type)) throw unsupported(`${where}: lock kind ${flag} type ${type} is not restored`);
    (t.locks ??= []).push({ fd: Number(l.fd), flag, type, start: big(l.start), len: big(l.len) });
  }
  const cgroups = await cgroupsOf(dir, inventory.root_cg_set === undefined ? undefined : Number(inventory.root_cg_set));
  return { tasks, ...(helpers.length ? { helpers } : {}), files: files.files, ...(cgroups ? { cgroups } : {}), ...(opts.lazy ? { lazy: true } : {}), ...(namespaces?.cloneFlags || namespaces?.nestedMounts || namespaces?.nestedNets || namespaces?.net || namespaces?.emptyNet || namespaces?.extNet || namespaces?.clocks ? { namespaces } : {}), ...(shmemPlans.length ? { shmem: shmemPlans } : {}), ...(files.ghosts.length ? { ghosts: files.ghosts } : {}) };
}

/**
 * An open file's I/O signal owner (F_SETOWN_EX) is set again once every task and thread exists:
 * it must be a thread or process (F_OWNER_TID, F_OWNER_PID) or a process group (F_OWNER_PGRP) of
 * the tree, and some task must hold the file at a descriptor (the owner is set through it).
 */
/**
 * The sockets' network namespaces (ns_id, as CRIU writes it for every socket): one made in the
 * root's (or criu's) is made there as any other; one made in a namespace below the root's is
 * made in it (the blob enters it around the socket's making; a TCP connection, made in repair
 * mode by the restorer, is made in it once it exists: TcpConnections.prepareNested).
 */
function checkSocketNamespaces(files: FilePlan[], nets: TreeNets): void {
  files.forEach((f, i) => {
    if (f.netns === undefined) return;
    if (!nets.byId.has(f.netns)) {
      delete f.netns;
      return;
    }
    if (f.kind !== 'tcp' && f.kind !== 'inet' && f.kind !== 'unix' && f.kind !== 'unix-bound' && f.kind !== 'socket') throw unsupported(`file ${i}: a ${f.kind} file of network namespace ${f.netns} below the root's is not restored there`, {});
  });
}

function checkFownOwners(tasks: TaskPlan[], files: FilePlan[]): void {
  const live = tasks.filter((t) => !t.zombie);
  const ids = new Set(tasks.flatMap((t) => [t.pid, ...t.threads.map((th) => th.tid)]));
  const groups = new Set(tasks.map((t) => t.pgid));
  files.forEach((f, i) => {
    if (!f.fown?.pid) return;
    const { holder, what } = fileHolder(live, i);
    const owner = `${f.fown.pidType === 2 ? 'process group' : f.fown.pidType === 0 ? 'thread' : 'process'} ${f.fown.pid}`;
    if (!(f.fown.pidType === 2 ? groups : ids).has(f.fown.pid)) throw unsupported(`${what}: the owner of its I/O signals (${owner}) is not in the checkpoint`);
    if (!holder) throw unsupported(`file ${i}: an I/O signal owner (${owner}) on a file no task holds at a descriptor`);
  });
}

/**
 * Sessions and process groups whose leader is gone, and orphans in another session than their
 * reaper's, come back through helper processes (@crtools/common treeHelpers, the rules the dump
 * refuses by too): each task a helper forks gets its host as `parent` (it starts from the host's
 * address space) and the helper's index. A helper forked by a live session leader takes any pid
 * (outside a pid namespace of the tree's own: the kernel's pick; inside: one no task needs).
 */
function planHelpers(tasks: TaskPlan[], pidnsInit: boolean): HelperPlan[] {
  const ppid = (t: TaskPlan) => (t.parent >= 0 ? tasks[t.parent]!.pid : 0);
  const { helpers, refused, bornSid } = treeHelpers(tasks.map((t) => ({ pid: t.pid, ppid: ppid(t), pgid: t.pgid, sid: t.sid, zombie: !!t.zombie, childSubreaper: t.childSubreaper })), pidnsInit);
  const r = refused[0];
  if (r) throw unsupported(`${r.why}${refused.length > 1 ? ` (and ${refused.length - 1} more)` : ''}`, { pid: r.pid });
  const indexOf = new Map(tasks.map((t, i) => [t.pid, i]));
  for (const [pid, sid] of bornSid) tasks[indexOf.get(pid)!]!.bornSid = sid;
  const used = new Set(tasks.flatMap((t) => [t.pid, t.pgid, t.sid, ...t.threads.map((th) => th.tid)]));
  let free = Math.max(...used) + 1;
  return helpers.map((h, k) => {
    const host = indexOf.get(h.host)!;
    for (const c of h.children) {
      const t = tasks[indexOf.get(c)!]!;
      if (t.shareFiles) throw unsupported(`pid ${c} shares the descriptor table of its parent, which is not the task that forks it (a helper process of session ${t.sid} does)`, { pid: c });
      t.parent = host;
      t.viaHelper = k;
    }
    return { pid: h.pid || (pidnsInit ? free++ : 0), host, setsid: h.setsid, reaper: h.reaper ? indexOf.get(h.reaper)! : -1 };
  });
}

/**
 * The processes gone whose /proc files the tree holds are made again by the root, each with its
 * pid, while the tree's files are opened: a pid a task of the checkpoint has (it would be taken
 * for that task's) is refused by name, as CRIU 4.2 refuses it.
 */
function planDeadPids(tasks: TaskPlan[], dead: readonly number[]): void {
  if (!dead.length) return;
  const taken = new Set(tasks.flatMap((t) => [t.pid, ...t.threads.map((th) => th.tid)]));
  for (const p of dead) if (taken.has(p)) throw unsupported(`remap-fpath.img: /proc files of process ${p}, which was gone, but a task or thread of the checkpoint has that pid`, { pid: p });
  // (a helper may take one of these pids later: the root reaps them before it forks anything)
  const root = tasks.find((t) => t.parent < 0)!;
  root.deadPids = [...dead];
  // the working directory of tasks in one of those processes' /proc directories: the root enters
  // it meanwhile, and every task is forked after (one such directory a tree: the dump carries no more)
  const dirs = [...new Set(tasks.filter((t) => t.deadCwd && !t.zombie).map((t) => t.cwd!))];
  if (dirs.length > 1) throw unsupported(`working directories in the /proc directories of several processes gone (${dirs.join(', ')}) are not restored: only one a tree`);
  if (dirs.length) root.deadDir = dirs[0];
}

/**
 * A file under /proc/PID/ (a namespace's file too: /proc/PID/ns/X) is opened by the pid the images
 * carry, in a tree of a pid namespace of its own the pid inside it: only a proc of that namespace
 * at /proc (one the tree's own mount namespace mounts again) names the task; the restorer's own
 * /proc would name another process, or none.
 */
function checkProcPaths(tasks: TaskPlan[], files: FilePlan[], ns: NamespacePlan | undefined): void {
  if (!ns || !(ns.cloneFlags & NS_CLONE_FLAG.pid)) return;
  if (ns.mounts?.some((m) => m.fsname === 'proc' && m.mountpoint.replace(/^\./, '') === '/proc')) return;
  files.forEach((f, i) => {
    if (f.kind !== 'reg' || !/^\/proc\/\d+(\/|$)/.test(f.path)) return;
    throw unsupported(`${fileHolder(tasks, i).what}: ${f.path} names a task by its pid in the tree's own pid namespace, which has no proc mounted at /proc in the tree's mount namespace: not restored`);
  });
}

/** A pidfd names a process of the checkpoint (or one gone, -1): any other would name another process, or none. */
function checkPidfds(tasks: TaskPlan[], files: FilePlan[]): void {
  const pids = new Set(tasks.map((t) => t.pid));
  files.forEach((f, i) => {
    if (f.kind !== 'pidfd' || f.pid === -1 || pids.has(f.pid)) return;
    throw unsupported(`${fileHolder(tasks, i).what}: a pidfd of process ${f.pid}, which is not in the checkpoint`);
  });
}

/**
 * A pty pair that was a session's controlling terminal: that session's leader is a live task of
 * the checkpoint (it takes the terminal back), and the foreground group one of its groups.
 */
function checkTerminals(tasks: TaskPlan[], files: FilePlan[]): void {
  files.forEach((f, i) => {
    if (f.kind === 'tty' && f.devTty) {
      // /dev/tty is opened again by its one holder, in a session whose terminal comes back
      const holders = tasks.filter((t) => t.fds.some((d) => d.file === i));
      const h = holders[0];
      if (holders.length !== 1 || !h) throw unsupported(`${fileHolder(tasks, i).what}: /dev/tty held by ${holders.length} tasks (one is restored)`);
      if (!files.some((x) => x.kind === 'tty' && x.ctty?.sid === h.sid)) throw unsupported(`${fileHolder(tasks, i).what}: /dev/tty, but session ${h.sid} gets no terminal back from the checkpoint`);
      return;
    }
    if (f.kind !== 'tty' || !f.ctty) return;
    const { sid, pgrp } = f.ctty;
    const leader = tasks.find((t) => t.pid === sid);
    if (!leader || leader.sid !== sid || leader.zombie) {
      throw unsupported(`${fileHolder(tasks, i).what}: /dev/pts/${f.index} is the controlling terminal of session ${sid}, whose leader is not a live task of the checkpoint (a terminal of a session led from outside: not carried out yet)`);
    }
    if (pgrp && !tasks.some((t) => t.pgid === pgrp && t.sid === sid && !t.zombie)) {
      throw unsupported(`${fileHolder(tasks, i).what}: the foreground group ${pgrp} of /dev/pts/${f.index} has no live task in session ${sid}`);
    }
  });
}

/** The first of `tasks` that holds file i at a descriptor, and how messages name the file: by that descriptor, else by index. */
function fileHolder(tasks: TaskPlan[], i: number): { holder?: TaskPlan; what: string } {
  for (const t of tasks) {
    const d = t.fds.find((x) => x.file === i);
    if (d) return { holder: t, what: `pid ${t.pid} fd ${d.fd}` };
  }
  return { what: `file ${i}` };
}
