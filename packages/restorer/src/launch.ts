/**
 * restoreTree: plan → running processes. Validates, picks a hole, launches the root task into
 * the blob, watches the shared status area, and either resumes every task at once or kills
 * every process this restore started.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { formatIdMap, formatIpcSysctl, idOutside, UNMAPPED_ID, formatTimensOffsets, IPC_VAR_SYSCTLS, readLoginuid, readTimensOffsets, timespecAdd, readStat, treeInnermostTids, UTS_FILES } from '@crtools/procfs';
import { canInstallGuards, clockNow, type MountOp, CLOCK_BOOTTIME, CLOCK_MONOTONIC, closeFd, makeSysvObjects, namespaceFiles, NS_TYPE, SHM_HUGETLB, takeTaskFd, xgetbv } from '@crtools/sys';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CrtoolsError, ExitCode, errnoName, nowMs, PAGE_SIZE_BIGINT, silentLogger, syscallError, type Logger } from '@crtools/common';
import { STOP_SIGNALS } from '@crtools/images/facts';
import { CONST, MAX_SAFE, STEPS, fieldOffset, recordSize } from './layout.js';
import type { MemfdFilePlan, NamespacePlan, RestorePlan, ShmemPlan } from './plan.js';
import { encodeBody, finishPlan, heldFdBase, regionLayout, uffdRunFlags, type RegionLayout } from './encode.js';
import { currentSpecials, findHoles, selfMappings } from './hole.js';
import { isSysError, loadBlob, loadNative } from './native.js';
import type { PageHelperArgs, PageHelperHandle, RestorerNative } from './native-api.js';
import { createShmem, shmemContents } from './shmem.js';
import { dispatchPatches, selfObjects } from './dispatch.js';
import { createGhosts, ghostPlaces, type GhostFiles } from './ghosts.js';
import { dropRestoreEvents } from './inotify-drain.js';
import { liveIdsOf, mountTreeUnder, pivotInto, shapeMounts, shapeNestedMounts, type LiveIds } from './mounts.js';
import type { MadeCgroups } from './cgroups.js';
import { RestoreErrorCode, restoreError } from './errors.js';
import { nestedNetNamespaces, type MadeNetNamespace, type TreeNetFds } from './netns.js';
import { TunFiles } from './tun.js';
import { namespacesFirst, spareTid, type MadeFirst } from './userns.js';

export interface RestoreTreeOptions {
  /** leave every task stopped (SIGSTOP) instead of resuming it (tasks dumped stopped are stopped again anyway) */
  leaveStopped?: boolean;
  /** make the root a sibling of the caller (CLONE_PARENT) instead of its child */
  restoreSibling?: boolean;
  /** skip the check that this CPU has every xsave component the checkpoint used (cpu_cap without FPU: --cpu-cap=none, ^fpu) */
  skipCpuCheck?: boolean;
  /** how long the tasks may take to get ready, and how long the blob waits for "go" */
  timeoutMs?: number;
  /**
   * Aborted (SIGINT, SIGTERM to the CLI): the restore stops at its next look at the tasks (or
   * before they are resumed), kills what it started and fails; once resuming, it goes on.
   */
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * Called once every task is restored and waits to be resumed (CRIU's post-restore and
   * pre-resume points); a throw kills the restored tree and fails the restore.
   */
  beforeResume?: (rootPid: number) => void | Promise<void>;
  /**
   * Once the network namespaces below the root's are made (before any task): the plan with the
   * files made here in them (TCP connections in repair mode); `netPath`: /proc/PID/fd/N of each, by id.
   */
  nestedSockets?: (plan: RestorePlan, netPath: (id: number) => string | undefined) => RestorePlan;
  /**
   * --lazy-pages (plan.lazy): once every task is ready, before anything else, each task's
   * userfaultfd (a copy of ours; undefined for a zombie), in the plan's order, to hand to the
   * lazy-pages daemon. The copies are closed after the call; a throw kills the restored tree.
   */
  lazyHandOver?: (tasks: { pid: number; uffd: number | undefined }[]) => void | Promise<void>;
  /**
   * The root's network namespace (plan.namespaces.net), already made (netns.ts: the caller made
   * its TCP connections inside it); without it, restoreTree makes it and lets it go after.
   */
  netns?: MadeNetNamespace;
  /**
   * --join-ns: namespaces other than the network one the root is born in (the launching thread
   * joins UTS and IPC ones across the clone, a helper mount, time and user ones; in a user one,
   * the helper takes uid and gid where given)
   */
  joinNs?: readonly { fd: number; type: number; name: string; uid?: number; gid?: number }[];
  /** --join-ns: what the checkpoint holds of the joined namespaces, checked once the root is born in them; a throw kills the tree */
  joinedCheck?: (rootPid: number) => void;
  /**
   * --root: the tree's mounts are made under `root` (external ones from what `ext` maps their
   * keys to), which becomes the root of its mount namespace once every task is restored
   * (the plan's paths prefixed with it: rooted.ts)
   */
  mountRoot?: { root: string; ext: ReadonlyMap<string, string> };
  /** the dumped cgroups, made: the root moves into its css set on launch, a task whose set is not its parent's once it is restored */
  cgroups?: MadeCgroups;
  /**
   * With namespaces of the tree's own: called once they exist ('made': CRIU's setup-namespaces
   * point, the caller may configure them) and once they have their state ('set': its
   * post-setup-namespaces), before any task opens a file; a throw kills the tree
   */
  namespaceHook?: (stage: 'made' | 'set', rootPid: number) => void | Promise<void>;
}

export interface RestoredTree {
  rootPid: number;
  /** every task (thread-group leader) restored, root first */
  pids: number[];
  /** true when the root is a child of this process (waitable) */
  isChild: boolean;
  /** microseconds from the root's launch until every task had been forked, and until all were resumed */
  forkingUs: number;
  restoreUs: number;
  /**
   * pages laid over the pages a task inherited from its parent (areas it took over, src/cow.ts),
   * and how many of them had the same content and stay one page with the parent's
   */
  pagesCompared: number;
  pagesShared: number;
}

const NONE = 0n;
const READY = CONST.ST_READY;

const FAILED = CONST.ST_FAILED;
/** offset of the bare syscall instruction in the blob (checked by the blob build) */
const BLOB_SYSCALL_OFFSET = 2n;

/** Not on a page boundary (a number's remainder where exact: a bigint `&` per area made a BigInt each, 60,000 of them) */
const misaligned = (x: bigint): boolean => (x >= 0n && x <= MAX_SAFE ? Number(x) % 4096 !== 0 : (x & 0xfffn) !== 0n);

export function validatePlan(plan: RestorePlan): void {
  const bad = (m: string): never => {
    throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: ${m}`, {}, ExitCode.BAD_INPUT);
  };
  if (!plan.tasks.length) bad('no tasks');
  // the namespaces a root may be born in: UTS, IPC, pid, mount and user (CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUSER)
  const nsFlags = plan.namespaces?.cloneFlags ?? 0;
  if (!Number.isInteger(nsFlags) || (nsFlags & ~(NS_TYPE.uts | NS_TYPE.ipc | NS_TYPE.pid | NS_TYPE.mnt | NS_TYPE.user)) !== 0) bad(`namespace clone flags 0x${nsFlags.toString(16)}`);
  if (!!plan.namespaces?.userns !== (!!(nsFlags & NS_TYPE.user) || !!plan.namespaces?.userJoined)) bad('a user namespace without its maps, or maps without a user namespace');
  if (plan.namespaces?.mounts?.length && !(nsFlags & NS_TYPE.mnt)) bad('mounts for a mount namespace the root is not born in');
  const newPid = ownPidNs(plan);
  if (newPid && plan.tasks[0]!.pid !== 1) bad(`the root of a new pid namespace has pid ${plan.tasks[0]!.pid}, not 1`);
  const ids = new Set<number>();
  plan.tasks.forEach((t, i) => {
    if (!Number.isInteger(t.pid) || t.pid < 1 || (t.pid === 1 && !(newPid && i === 0))) bad(`task ${i} has pid ${t.pid}`);
    // (a task a helper forks starts from its host, which may come after it)
    if (i === 0 ? t.parent !== -1 : !(t.parent >= 0 && (t.parent < i || (t.viaHelper !== undefined && t.parent !== i)))) bad(`task ${t.pid}: parent must come before its children`);
    if (t.viaHelper !== undefined && plan.helpers?.[t.viaHelper]?.host !== t.parent) bad(`task ${t.pid}: forked by a helper its parent does not host`);
    if (!t.threads.length || t.threads[0]!.tid !== t.pid) bad(`task ${t.pid}: first thread must be the task itself`);
    for (const th of t.threads) {
      if (ids.has(th.tid)) bad(`pid ${th.tid} appears twice`);
      ids.add(th.tid);
      if (th.fxsave.length !== 512) bad(`thread ${th.tid}: fxsave area must be 512 bytes`);
    }
    for (const f of t.fds) if (!(f.file >= 0 && f.file < plan.files.length)) bad(`task ${t.pid}: fd ${f.fd} names no file`);
    for (const x of [t.cwdGhost, t.rootGhost]) if (x !== undefined && !plan.ghosts?.[x]?.dir) bad(`task ${t.pid}: its working directory or root names no removed directory`);
    for (const v of t.vmas) {
      if (v.end <= v.start || misaligned(v.start) || misaligned(v.end)) bad(`task ${t.pid}: bad area ${v.start.toString(16)}-${v.end.toString(16)}`);
      if (v.shmem !== undefined && !(v.shmem >= 0 && v.shmem < (plan.shmem?.length ?? 0))) bad(`task ${t.pid}: area ${v.start.toString(16)} names no shared memory object`);
      // (a memfd may be mapped past its end, and any object privately: the task gets SIGBUS there, as it did)
      if (v.shmem !== undefined && !plan.shmem![v.shmem]!.memfd && v.kind === 'file-shared' && v.pgoff + (v.end - v.start) > plan.shmem![v.shmem]!.size) bad(`task ${t.pid}: area ${v.start.toString(16)} runs past its shared memory object`);
      if (v.ghost !== undefined && !(v.ghost >= 0 && v.ghost < (plan.ghosts?.length ?? 0))) bad(`task ${t.pid}: area ${v.start.toString(16)} names no unlinked file`);
    }
    for (const g of t.guards ?? []) {
      if (g.end <= g.start || misaligned(g.start) || misaligned(g.end)) bad(`task ${t.pid}: bad guard region ${g.start.toString(16)}-${g.end.toString(16)}`);
    }
  });
  // the tree's files, once (not once per task: a tree of 500 holds thousands)
  for (const f of plan.files) if ((f.kind === 'reg' || f.kind === 'fifo') && f.ghost !== undefined && !(f.ghost >= 0 && f.ghost < (plan.ghosts?.length ?? 0))) bad('a file names no unlinked file');
  for (const f of plan.files) if (f.kind === 'inotify' && f.watches.some((w) => w.ghost !== undefined && !(w.ghost >= 0 && w.ghost < (plan.ghosts?.length ?? 0)))) bad('an inotify watch names no unlinked file');
  // (or shared anonymous memory off huge pages: a descriptor opened on a map_files link)
  const openable = (o: ShmemPlan | undefined) => !!o && (!!o.memfd || o.hugetlb === undefined);
  for (const f of plan.files) if (f.kind === 'memfd' && !(f.shmem !== undefined && openable(plan.shmem?.[f.shmem]))) bad('a memfd descriptor names no memfd');
}

/**
 * The offsets of a new time namespace in which CLOCK_MONOTONIC and CLOCK_BOOTTIME read now what
 * the tasks read at dump time (`clocks`), as timens_offsets takes them. Offsets count from the
 * host's clocks: the restorer's own clocks less its own time namespace's offsets.
 */
export function timensOffsetsFor(clocks: NonNullable<NamespacePlan['clocks']>): string {
  const mine = readTimensOffsets(process.pid);
  const now = (id: number) => {
    const c = clockNow(id);
    return { sec: c.tv_sec, nsec: c.tv_nsec };
  };
  return formatTimensOffsets({
    monotonic: timespecAdd(clocks.monotonic, mine.monotonic, now(CLOCK_MONOTONIC)),
    boottime: timespecAdd(clocks.boottime, mine.boottime, now(CLOCK_BOOTTIME)),
  });
}

/** The root is born in a pid namespace of its own (the plan's pids are the ones inside it). */
function ownPidNs(plan: RestorePlan): boolean {
  return ((plan.namespaces?.cloneFlags ?? 0) & NS_TYPE.pid) !== 0;
}

/** How long a restore waits for a dying process to free a pid the checkpoint needs. */
const DYING_WAIT_MS = 3000;

/**
 * Is task `pid` on its way out: exiting (PF_EXITING: freeing its memory), a zombie, or killed
 * (SIGKILL pending)? The processes of a tree its dump just killed are so for a while, until
 * their memory is freed and whoever adopted them (init, a subreaper) reaps them: a restore run
 * right after the dump waits for them instead of failing on their pids.
 */
function dying(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const PF_EXITING = 0x4;
    if (f[0] === 'Z' || f[0] === 'X' || (Number(f[6]) & PF_EXITING) !== 0) return true;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const pending = (k: string) => BigInt(`0x${new RegExp(`\\n${k}:\\s+([0-9a-f]+)`).exec(status)?.[1] ?? '0'}`);
    return ((pending('SigPnd') | pending('ShdPnd')) & 0x100n) !== 0n;
  } catch {
    return false;
  }
}

/** Is `pid` free, once a dying process that holds it is gone (DYING_WAIT_MS at most)? */
function pidFree(pid: number, until: number): boolean {
  while (existsSync(`/proc/${pid}`)) {
    if (!dying(pid) || nowMs() >= until) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return true;
}

/** Every pid/tid the plan needs must be free: clone3(set_tid) cannot take a used one. */
export function checkPidsFree(plan: RestorePlan): void {
  // (in a pid namespace of its own every pid is free)
  if (ownPidNs(plan)) return;
  const until = nowMs() + DYING_WAIT_MS;
  for (const t of plan.tasks) {
    for (const tid of t.threads.map((th) => th.tid)) {
      if (!pidFree(tid, until)) {
        throw restoreError(RestoreErrorCode.PID_IN_USE, `pid ${tid} is already in use; the checkpoint needs it`, { pid: tid });
      }
    }
  }
  // (a helper takes the pid of a gone session or group leader for the while)
  for (const h of plan.helpers ?? []) {
    if (h.pid && !pidFree(h.pid, until)) throw restoreError(RestoreErrorCode.PID_IN_USE, `pid ${h.pid} is already in use; the checkpoint needs it (a helper process of its session or process group)`, { pid: h.pid });
  }
}

/**
 * Guard regions (MADV_GUARD_INSTALL, 6.13+) cannot be put back on a kernel without them: refuse
 * by name before any process is made rather than restore a task whose guard pages would read
 * and write like any other (`supported`: canInstallGuards(), asked only when a task has some).
 */
export function checkGuards(plan: RestorePlan, supported: () => boolean): void {
  const t = plan.tasks.find((x) => x.guards?.length);
  if (!t || supported()) return;
  const g = t.guards![0]!;
  const more = plan.tasks.reduce((n, x) => n + (x.guards?.length ?? 0), 0) - 1;
  throw restoreError(
    RestoreErrorCode.GUARDS,
    `pid ${t.pid} has a guard region at ${g.start.toString(16)}-${g.end.toString(16)}${more ? ` (and ${more} more in the tree)` : ''}, and this kernel cannot install guard regions (MADV_GUARD_INSTALL, Linux 6.13+)`,
    { pid: t.pid, start: g.start, end: g.end },
    ExitCode.UNSUPPORTED,
  );
}

const XFEATURE_NAMES = ['x87', 'SSE', 'AVX', 'MPX bounds', 'MPX CSR', 'AVX-512 opmask', 'AVX-512 ZMM_Hi256', 'AVX-512 Hi16_ZMM', 'PT', 'PKRU'];

/**
 * Code dumped on a CPU with more vector extensions (glibc picks its string functions once, at
 * start-up) dies with SIGILL elsewhere: refuse when a thread used components this CPU lacks.
 */
export function checkCpu(plan: RestorePlan, xcr0: bigint): void {
  for (const t of plan.tasks) {
    for (const th of t.threads) {
      const extra = th.xstateBv & ~xcr0;
      if (extra) {
        const names = XFEATURE_NAMES.filter((_, i) => extra & (1n << BigInt(i)));
        throw restoreError(
          RestoreErrorCode.CPU,
          `pid ${th.tid} was dumped on a CPU with ${names.join(', ') || `xsave features 0x${extra.toString(16)}`} which this CPU lacks (--cpu-cap=none restores anyway, re-pointing its IFUNC choices)`,
          { pid: th.tid, xstateBv: th.xstateBv, xcr0 },
          ExitCode.UNSUPPORTED,
        );
      }
    }
  }
}

function procState(pid: number): string | undefined {
  try {
    return readStat(pid).state;
  } catch {
    return undefined;
  }
}

interface Status {
  lazyUffd: bigint;
  state: bigint;
  pid: number;
  code: bigint;
  err: bigint;
  detail: bigint;
  step: bigint;
  /** UFFDIO_COPY pieces the task published (0: none, or all read with pread) */
  chunks: bigint;
  /** pages of its image laid over its parent's (cow.ts), and how many of them were equal and stay shared */
  cmpPages: bigint;
  cowPages: bigint;
  /** a task that makes a mount namespace below its parent's: 1 made (waiting to be shaped), 2 shaped, 3 abort */
  mntGate: bigint;
}

function readStatus(dv: DataView, i: number): Status {
  const base = Number(CONST.STATUS_TASKS_OFF) + i * recordSize('status');
  const f = (name: string): bigint => dv.getBigUint64(base + fieldOffset('status', name), true);
  return { state: f('state'), pid: Number(f('pid')), code: f('code'), err: f('err'), detail: f('detail'), step: f('step'), chunks: f('chunks'), cmpPages: f('cmp_pages'), cowPages: f('cow_pages'), lazyUffd: f('lazy_uffd'), mntGate: f('mnt_gate') };
}

/**
 * Tasks dumped on a CPU with xsave components this one lacks (restored with --cpu-cap=none):
 * their IFUNC choices are re-pointed at this CPU's where this process maps the same libraries.
 */
function withCpuDispatch(plan: RestorePlan, xcr0: bigint, log: Logger): RestorePlan {
  let self: ReturnType<typeof selfObjects> | undefined;
  return {
    ...plan,
    tasks: plan.tasks.map((t) => {
      if (t.zombie || !t.threads.some((th) => th.xstateBv & ~xcr0)) return t;
      const patches = dispatchPatches(t, (self ??= selfObjects()));
      log.info(`cpu: pid ${t.pid}: ${patches.length} GOT slot(s) re-pointed at this CPU's IFUNC choices`);
      return patches.length ? { ...t, patches: [...(t.patches ?? []), ...patches] } : t;
    }),
  };
}

/** The error of a restore stopped by its caller's signal (SIGINT, SIGTERM). */
function interrupted(signal: AbortSignal): Error {
  return restoreError(RestoreErrorCode.INTERRUPTED, `restore interrupted (${String(signal.reason ?? 'aborted')})`);
}

export async function restoreTree(plan: RestorePlan, opts: RestoreTreeOptions = {}): Promise<RestoredTree> {
  if (opts.signal?.aborted) throw interrupted(opts.signal);
  validatePlan(plan);
  const native = loadNative();
  const xcr0 = xgetbv(0); // the xsave components this CPU and kernel enable for user space
  if (!opts.skipCpuCheck) checkCpu(plan, xcr0);
  checkGuards(plan, canInstallGuards);
  plan = withCpuDispatch(plan, xcr0, opts.logger ?? silentLogger);
  checkPidsFree(plan);
  if (plan.namespaces?.clocks && opts.restoreSibling) {
    throw restoreError(RestoreErrorCode.UNSUPPORTED, 'restore: a tree in a time namespace of its own cannot be restored as a sibling of the restorer (--restore-sibling, as RPC callers ask) yet', {}, ExitCode.UNSUPPORTED);
  }
  // shared memory objects live in this process, and unlinked files under a name, until every
  // task holds its own view of them
  const shm = createShmem(plan, native);
  let ghosts: GhostFiles | undefined;
  // the root's own network namespace, made first: the root is born inside it (and before it, with
  // network or time namespaces of its own, its user namespace: userns.ts)
  let first: MadeFirst | undefined;
  let nets: TreeNetFds | undefined;
  const tun = new TunFiles(opts.logger ?? silentLogger);
  try {
    const log = opts.logger ?? silentLogger;
    first = namespacesFirst(plan, { userns: log, net: log }, { restoreSibling: !!opts.restoreSibling, ...(opts.netns ? { net: opts.netns } : {}) });
    plan = first.plan;
    ghosts = createGhosts(plan, ghostPlaces(plan, opts.mountRoot));
    const g = ghosts;
    // the objects' paths: this process's descriptors on them; a task in a user namespace of the
    // tree's own may not look into this process's (ptrace access in criu's user namespace): there,
    // the root holds the descriptors for the tasks, which open their own (encode.ts heldFdBase)
    const heldFds = plan.namespaces?.userns ? shm.fdOf.filter((fd): fd is number => fd !== undefined) : [];
    // the network namespaces below the root's, made as the root's is, held for the tasks that
    // enter them and the sockets made in them, with the root's (made, or this process's own)
    // (the root's: a network namespace joined with --join-ns, which the root enters last, or the
    // one made for it, or this process's own)
    const joinedNet = opts.joinNs?.find((j) => j.type === NS_TYPE.net);
    const userFd = [...first.joins, ...(opts.joinNs ?? [])].find((j) => j.type === NS_TYPE.user)?.fd;
    nets = nestedNetNamespaces(plan, joinedNet ? { fd: joinedNet.fd, path: `/proc/${process.pid}/fd/${joinedNet.fd}`, close: () => undefined } : first.net, log, userFd, first.nets);
    if (nets) {
      const byId = new Map([...nets.byId.keys()].map((id, k) => [id, heldFds.length + 1 + k]));
      const rootId = plan.namespaces?.rootNetId;
      if (rootId !== undefined) byId.set(rootId, heldFds.length);
      plan = { ...plan, netHeld: { root: heldFds.length, byId } };
    }
    // the tree's network namespaces made here, by id (/proc/PID/fd/N of this process's descriptor)
    const netPaths = new Map<number, string>();
    const rootNetId = plan.namespaces?.net?.id;
    if (first.net && rootNetId !== undefined) netPaths.set(rootNetId, first.net.path);
    for (const [id, fd] of nets?.byId ?? []) netPaths.set(id, `/proc/${process.pid}/fd/${fd}`);
    // the connections of those below the root's, and the tree's /dev/net/tun files, made once
    // the namespaces and their devices exist
    if (nets && opts.nestedSockets) plan = opts.nestedSockets(plan, (id) => netPaths.get(id));
    plan = tun.prepare(plan, netPaths);
    const held = [...heldFds, ...(nets ? [nets.root, ...nets.byId.values()] : [])];
    if (held.length) plan = { ...plan, held };
    const heldBase = heldFds.length ? heldFdBase(plan) : 0;
    const shmPath = (k: number): string => {
      const fd = shm.fdOf[k];
      return heldFds.length && fd !== undefined ? `/proc/self/fd/${heldBase + heldFds.indexOf(fd)}` : shm.paths[k]!;
    };
    // the first read-write file of each memfd is memfd_create's own open file (MemfdFilePlan.heldFd)
    const taken = new Set<number>();
    const memfdFile = (f: MemfdFilePlan): MemfdFilePlan => {
      const held = plan.shmem![f.shmem!]!.memfd ? shm.fdOf[f.shmem!] : undefined;
      if (held === undefined || (f.flags & O_ACCMODE) !== O_RDWR || taken.has(f.shmem!)) return { ...f, path: shmPath(f.shmem!) };
      taken.add(f.shmem!);
      return { ...f, path: shmPath(f.shmem!), heldFd: held };
    };
    const withPaths: RestorePlan = {
      ...plan,
      files: plan.files.map((f) =>
        f.kind === 'memfd' ? memfdFile(f)
          // a watch on an unlinked file: on the ghost made of it, by the name it was made at
          : f.kind === 'inotify' ? { ...f, watches: f.watches.map((w) => (w.ghost === undefined ? w : { ...w, path: g.paths[w.ghost]! })) }
          : (f.kind !== 'reg' && f.kind !== 'fifo') || f.ghost === undefined ? f : { ...f, path: g.paths[f.ghost]! },
      ),
      tasks: plan.tasks.map((t) => ({
        ...t,
        exe: t.exeGhost !== undefined ? g.paths[t.exeGhost] : t.exe,
        cwd: t.cwdGhost !== undefined ? g.paths[t.cwdGhost] : t.cwd,
        root: t.rootGhost !== undefined ? g.paths[t.rootGhost] : t.root,
        vmas: t.vmas.map((v) =>
          v.shmem !== undefined
            ? plan.shmem![v.shmem]!.memfd
              ? { ...v, path: shmPath(v.shmem), openFlags: v.openFlags ?? O_RDWR }
              : v.kind === 'file-private' ? { ...v, path: shmPath(v.shmem), openFlags: v.openFlags ?? 0 } : { ...v, kind: 'file-shared', path: shmPath(v.shmem), openFlags: O_RDWR }
            : v.ghost !== undefined ? { ...v, path: g.paths[v.ghost] } : v,
        ),
      })),
    };
    // seals that forbid new writable mappings wait until every task has mapped its areas; the
    // unlinked files get their times back once mapping and exec have touched them
    // (the tasks hold their unlinked files by then: their names go before any task runs)
    const beforeResume = async (pid: number) => {
      shm.sealLate();
      g.settle();
      g.release();
      await opts.beforeResume?.(pid);
    };
    // the unlinked files on mounts the restore makes anew are made once those are
    const namespaceHook = async (stage: 'made' | 'set', pid: number) => {
      if (stage === 'set') g.inTree(pid);
      await opts.namespaceHook?.(stage, pid);
    };
    const joinNs = [...(opts.joinNs ?? []), ...first.joins];
    return await launchTree(withPaths, native, { ...opts, beforeResume, namespaceHook, ...(first.net ? { netns: first.net } : {}), ...(joinNs.length ? { joinNs } : {}) });
  } finally {
    // (the tasks hold their tun files now, or the restore failed)
    tun.release();
    nets?.close();
    first?.close();
    ghosts?.release();
    shm.release();
  }
}

const O_RDWR = 2;
const O_ACCMODE = 3;

/**
 * The root's new user namespace gets its maps, written from here (its parent namespace) before
 * the root runs code of its own: each file in one write, as the kernel takes them.
 */
function writeUserMaps(rootPid: number, maps: NonNullable<NamespacePlan['userns']>): void {
  writeFileSync(`/proc/${rootPid}/uid_map`, formatIdMap(maps.uid));
  writeFileSync(`/proc/${rootPid}/gid_map`, formatIdMap(maps.gid));
}

/** From inside the root's new namespaces: its mounts, its UTS names and its IPC sysctls (those this kernel has). */
function setNamespaceState(rootPid: number, ns: NamespacePlan, mountRoot: RestoreTreeOptions['mountRoot']): void {
  if (ns.mounts && mountRoot) mountTreeUnder(rootPid, ns.mounts, mountRoot.root, mountRoot.ext);
  else if (ns.mounts) shapeMounts(rootPid, ns.mounts);
  if (ns.uts) namespaceFiles(rootPid, 'uts', { writes: [[UTS_FILES.nodename, ns.uts.nodename], [UTS_FILES.domainname, ns.uts.domainname]] });
  if (ns.ipcVar) {
    const v = ns.ipcVar;
    const writes = IPC_VAR_SYSCTLS.filter((s) => v[s.field] !== undefined && existsSync(s.path)).map((s) => [s.path, formatIpcSysctl(s.type, v[s.field])] as const);
    // (an IPC namespace's sysctls are its user namespace's root's to write: in the tree's own,
    // written as that root as criu sees it, when mapped)
    const as = ns.userns ? { uid: idOutside(ns.userns.uid, 0), gid: idOutside(ns.userns.gid, 0) } : undefined;
    namespaceFiles(rootPid, 'ipc', { writes, ...(as && as.uid !== UNMAPPED_ID && as.gid !== UNMAPPED_ID ? { as } : {}) });
  }
  // the SysV objects, each with its id, key, owner, creator, mode and contents (the owners in
  // the images are ids inside the tree's user namespace; made from here, they are ours)
  if (ns.sysv?.length) {
    const uid = (id: number) => (ns.userns ? idOutside(ns.userns.uid, id) : id);
    const gid = (id: number) => (ns.userns ? idOutside(ns.userns.gid, id) : id);
    makeSysvObjects(rootPid, ns.sysv.map((o) => ({
      kind: o.kind, id: o.id, key: o.key, mode: o.mode, uid: uid(o.uid), gid: gid(o.gid), cuid: uid(o.cuid), cgid: gid(o.cgid),
      ...(o.kind === 'shm' ? { size: Number(o.size ?? 0n), data: o.inline ?? shmemContents(o.size ?? 0n, o.pages ?? []), ...(o.hugetlb !== undefined ? { hugetlb: SHM_HUGETLB | o.hugetlb } : {}) } : {}),
      ...(o.kind === 'sem' ? { values: o.values ?? [] } : {}),
      ...(o.kind === 'msg' ? { qbytes: o.qbytes ?? 0, msgs: (o.msgs ?? []).map((m) => [m.mtype, m.data] as [bigint, Buffer]) } : {}),
    })));
  }
}

/**
 * The tasks inherit the launcher's audit login uid: only a task whose recorded one differs
 * keeps it in the plan, to be set (setting it starts a new audit session, so not needlessly).
 * Without an audit login uid here (no CONFIG_AUDIT), none is set.
 */
function loginuidsToSet(plan: RestorePlan): RestorePlan {
  let own: number | undefined;
  try {
    own = readLoginuid(process.pid);
  } catch {
    own = undefined;
  }
  // in a user namespace of the tree's own the recorded one is as seen inside it
  const uidMap = plan.namespaces?.userns?.uid;
  const host = (id: number) => (uidMap ? idOutside(uidMap, id) : id);
  return { ...plan, tasks: plan.tasks.map((t) => (t.loginuid === undefined || own === undefined || host(t.loginuid) === own ? { ...t, loginuid: undefined } : t)) };
}

async function launchTree(given: RestorePlan, native: RestorerNative, opts: RestoreTreeOptions): Promise<RestoredTree> {
  const log = opts.logger ?? silentLogger;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const blob = loadBlob();
  // (one read of /proc/self/maps for both: a hole taken meanwhile fails the launch's
  // MAP_FIXED_NOREPLACE with EEXIST and the next hole is tried)
  const self = selfMappings();
  const specials = currentSpecials(self);
  const plan = loginuidsToSet(given);
  const { w, fdBase } = encodeBody(plan, specials);
  const lay = regionLayout(blob.length, w.size, plan, specials);
  const spare = spareTid(plan, Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')));

  let launched: { pid: number; status: ArrayBuffer } | undefined;
  let tLaunch = 0;
  let region: RegionLayout | undefined;
  for (const start of findHoles(lay.size, plan, self)) {
    region = { ...lay, start };
    const planBuf = finishPlan(w, plan, region, fdBase, timeoutMs, spare, !opts.restoreSibling);
    log.debug(`restorer: region ${start.toString(16)}+${lay.size.toString(16)}, plan ${planBuf.length} bytes`);
    // (launch consumes planBuf once it has mapped the region: its pages are given back as they
    // are copied in, read as zeros after; the retry below comes before that)
    const r = native.launch({
      blob,
      plan: planBuf,
      regionStart: start,
      regionSize: lay.size,
      codeSize: lay.codeSize,
      planOff: lay.planOff,
      statusOff: lay.statusOff,
      statusSize: lay.statusSize,
      stackTop: start + lay.stackOff + lay.stackSize,
      rootPid: plan.tasks[0]!.pid,
      cloneParent: !!opts.restoreSibling,
      cloneFlags: plan.namespaces?.cloneFlags ?? 0,
      // (the tree's network namespace first, then --join-ns's)
      joinNs: [...(opts.netns ? [{ fd: opts.netns.fd, type: NS_TYPE.net, name: 'net' }] : []), ...(opts.joinNs ?? []).map((j) => ({ fd: j.fd, type: j.type, name: j.name, ...(j.uid !== undefined ? { uid: j.uid } : {}), ...(j.gid !== undefined ? { gid: j.gid } : {}) }))],
      ...(plan.namespaces?.clocks ? { timensOffsets: timensOffsetsFor(plan.namespaces.clocks) } : {}),
    });
    if (isSysError(r)) {
      if (r.syscall === 'mmap' && r.errno === 17) continue; // the launcher grew into the hole meanwhile
      if (r.syscall === 'clone3' && r.errno === 17) {
        throw restoreError(RestoreErrorCode.PID_IN_USE, `pid ${plan.tasks[0]!.pid} is already in use; the checkpoint needs it`, { pid: plan.tasks[0]!.pid });
      }
      throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot start the root task: ${syscallError(r.syscall, r.errno).message}`, {}, ExitCode.FAILED, syscallError(r.syscall, r.errno));
    }
    launched = r;
    tLaunch = nowMs();
    log.debug(`restorer: root task launched (pid ${r.pid})`);
    break;
  }
  if (!launched || !region) {
    throw restoreError(RestoreErrorCode.NO_HOLE, 'restore: no free address range for the restorer in this process and the checkpoint');
  }

  const { pid: rootPid, status } = launched;
  const dv = new DataView(status);
  const n = plan.tasks.length;
  const isChild = !opts.restoreSibling;
  // the plan's pids are the tasks' own; in a pid namespace of their own, crtools sees them at
  // others (found under the root by their innermost pid)
  const inNs = ownPidNs(plan);
  let seen = new Map<number, number>();
  const hostOf = (p: number): number | undefined => {
    if (!inNs) return p;
    if (!seen.has(p)) seen = treeInnermostTids(rootPid);
    return seen.get(p);
  };
  const started = (): number[] => plan.tasks.map((_, i) => readStatus(dv, i)).filter((s) => s.state !== NONE && s.pid > 0).flatMap((s) => hostOf(s.pid) ?? []);

  const abort = async (err: Error): Promise<never> => {
    native.go(status, 2, Number(CONST.STATUS_NS_OFF));
    native.go(status, 2, Number(CONST.STATUS_LAST_OFF));
    native.go(status, 2);
    const pids = new Set([rootPid, ...started()]);
    for (const p of [...pids].reverse()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (isChild) native.waitpid(rootPid, false);
    native.release(status);
    throw err;
  };

  const describe = (i: number, s: Status): string => {
    const step = STEPS[Number(s.code)] ?? `step ${s.code}`;
    return `restore of pid ${plan.tasks[i]!.pid} failed at "${step}": ${errnoName(Number(s.err))} (detail 0x${s.detail.toString(16)})`;
  };

  // the root into its css set first: its children are born there, its memory is charged there
  // (a tree in a cgroup namespace of its own: the root makes it at the namespace's root first)
  // (--join-ns: what the checkpoint holds of the namespaces joined, held to them)
  try {
    opts.joinedCheck?.(rootPid);
  } catch (e) {
    return abort(e as Error);
  }
  const cg = opts.cgroups;
  let cgns = false;
  if (cg && !cg.inherits(plan.tasks[0]!.cgSet, plan.cgroups?.rootSet)) {
    try {
      cgns = cg.moveToNamespaceRoot(rootPid, plan.tasks[0]!.cgSet);
      if (!cgns) cg.moveTask(rootPid, plan.tasks[0]!.cgSet);
    } catch (e) {
      return abort(e as Error);
    }
  }
  // the root's own namespaces get their state before any task runs code of its own (the root
  // opens no file before: its mounts are in place first)
  if (plan.namespaces) {
    try {
      if (plan.namespaces.userns && !plan.namespaces.userJoined) writeUserMaps(rootPid, plan.namespaces.userns);
    } catch (e) {
      return abort(restoreError(RestoreErrorCode.LAUNCH, `restore: cannot map the root's user namespace: ${(e as Error).message}`, { pid: rootPid }, ExitCode.FAILED, e as Error));
    }
    try {
      await opts.namespaceHook?.('made', rootPid);
    } catch (e) {
      return abort(e instanceof Error ? e : new Error(String(e)));
    }
    try {
      setNamespaceState(rootPid, plan.namespaces, opts.mountRoot);
    } catch (e) {
      return abort(restoreError(RestoreErrorCode.LAUNCH, `restore: cannot set up the root's namespaces: ${(e as Error).message}`, { pid: rootPid }, ExitCode.FAILED, e as Error));
    }
    try {
      await opts.namespaceHook?.('set', rootPid);
    } catch (e) {
      return abort(e instanceof Error ? e : new Error(String(e)));
    }
  }
  if (cgns) {
    // the root unshares its cgroup namespace where it stands, and says so; then into its set
    native.go(status, Number(CONST.NS_GATE_CGNS), Number(CONST.STATUS_NS_OFF));
    const until = Date.now() + timeoutMs;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    while (dv.getUint32(Number(CONST.STATUS_NS_OFF), true) !== Number(CONST.NS_GATE_CGNS_MADE)) {
      const s = readStatus(dv, 0);
      if (s.state === FAILED) return abort(restoreError(RestoreErrorCode.TASK, describe(0, s), { pid: plan.tasks[0]!.pid, step: STEPS[Number(s.code)], errno: Number(s.err), detail: s.detail }));
      if (Date.now() > until) return abort(restoreError(RestoreErrorCode.LAUNCH, `restore: the root (pid ${plan.tasks[0]!.pid}) did not make its cgroup namespace in ${timeoutMs} ms`, { pid: rootPid }, ExitCode.FAILED));
      Atomics.wait(sleeper, 0, 0, 1);
    }
    try {
      cg!.moveTask(rootPid, plan.tasks[0]!.cgSet);
    } catch (e) {
      return abort(e as Error);
    }
  }
  // the mount namespaces below the root's are copies of the root's (or another of them) shaped
  // again: the root's mounts in the dump's terms first (its tmpfs made anew have other devices)
  const nestedMnt = plan.namespaces?.nestedMounts;
  const shapedMnt = new Map<number, LiveIds>();
  let rootMnt: LiveIds | undefined;
  try {
    if (nestedMnt?.size && plan.namespaces?.mounts) rootMnt = liveIdsOf(rootPid, plan.namespaces.mounts, opts.mountRoot?.root);
  } catch (e) {
    return abort(e as Error);
  }
  /** the first task of each mount namespace below the root's (--root: pivoted into it with the root) */
  const nestedHosts: { host: number; afterPivot: MountOp[] }[] = [];
  const gates = new Set(plan.tasks.flatMap((t, i) => (t.unshareMnt !== undefined ? [i] : [])));
  const gateOffset = (i: number) => Number(CONST.STATUS_TASKS_OFF) + i * recordSize('status') + fieldOffset('status', 'mnt_gate');
  /** each task that made its mount namespace again and waits: the namespace shaped, the task let go */
  const shapeGated = (): Error | undefined => {
    for (const i of gates) {
      const s = readStatus(dv, i);
      if (s.mntGate !== BigInt(CONST.MNT_GATE_MADE)) continue;
      const t = plan.tasks[i]!;
      const ns = nestedMnt?.get(t.unshareMnt!);
      try {
        if (!ns) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: task ${t.pid} makes mount namespace ${t.unshareMnt}, which the plan does not hold`, { pid: t.pid }, ExitCode.BAD_INPUT);
        const host = hostOf(s.pid);
        if (host === undefined) throw restoreError(RestoreErrorCode.DIED, `restore: task ${t.pid} is gone`, { pid: t.pid });
        const from = nestedMnt!.has(ns.parent) ? shapedMnt.get(ns.parent) : rootMnt;
        const shaped = shapeNestedMounts(host, ns.mounts, from, opts.mountRoot?.root);
        shapedMnt.set(t.unshareMnt!, shaped.ids);
        nestedHosts.push({ host, afterPivot: shaped.afterPivot });
        log.debug(`restorer: pid ${t.pid}: mount namespace ${t.unshareMnt} made and shaped (${ns.mounts.length} mounts)`);
      } catch (e) {
        return e instanceof CrtoolsError ? e : restoreError(RestoreErrorCode.LAUNCH, `restore: cannot shape the mount namespace of pid ${t.pid}: ${(e as Error).message}`, { pid: t.pid }, ExitCode.FAILED, e as Error);
      }
      gates.delete(i);
      native.go(status, Number(CONST.MNT_GATE_SHAPED), gateOffset(i));
    }
    return undefined;
  };

  // the root opens its files, and the tasks attach SysV segments, only once the namespaces hold them
  native.go(status, 1, Number(CONST.STATUS_NS_OFF));

  const helper = pageHelper(plan, native, status);
  let helped = 0;
  let compared = 0;
  let cowShared = 0;
  let forkingUs: number | undefined;
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; ; round++) {
    let ready = 0;
    if (gates.size) {
      const e = shapeGated();
      if (e) return abort(e);
    }
    for (let i = 0; i < n; i++) {
      const s = readStatus(dv, i);
      if (s.state === FAILED) {
        return abort(restoreError(RestoreErrorCode.TASK, describe(i, s), { pid: plan.tasks[i]!.pid, step: STEPS[Number(s.code)], errno: Number(s.err), detail: s.detail }));
      }
      if (s.state >= READY) ready++;
    }
    if (forkingUs === undefined && started().length === n) forkingUs = Math.round((nowMs() - tLaunch) * 1000);
    if (ready === n) {
      log.debug(`restorer: every task ready (${n}), forked in ${((forkingUs ?? 0) / 1000).toFixed(1)} ms`);
      for (let i = 0; i < n; i++) {
        const s = readStatus(dv, i);
        compared += Number(s.cmpPages);
        cowShared += Number(s.cowPages);
      }
      if (compared) log.debug(`restorer: pages laid over a parent's: ${compared}, ${cowShared} of them left shared with it (copy-on-write)`);
      if (helper) {
        const pieces = plan.tasks.reduce((sum, _, i) => sum + Number(readStatus(dv, i).chunks), 0);
        log.debug(`restorer: UFFDIO_COPY pieces: ${pieces}, ${helped} of them copied by the launcher`);
      }
      break;
    }
    if (isChild) {
      const wr = native.waitpid(rootPid, true);
      if (!isSysError(wr) && wr.pid === rootPid) {
        const s = readStatus(dv, 0);
        const why = wr.signaled ? `killed by signal ${wr.signal}` : `exited with ${wr.code}`;
        native.go(status, 2);
        for (const p of started().slice(1)) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        native.release(status);
        // (a failure it reported just before it exited says what failed)
        if (s.state === FAILED) throw restoreError(RestoreErrorCode.TASK, describe(0, s), { pid: plan.tasks[0]!.pid, step: STEPS[Number(s.code)], errno: Number(s.err), detail: s.detail });
        throw restoreError(RestoreErrorCode.DIED, `restore: root task ${rootPid} ${why} at "${STEPS[Number(s.step)] ?? s.step}"`, { pid: rootPid });
      }
    }
    if (round % 16 === 15) {
      for (let i = 1; i < n; i++) {
        const s = readStatus(dv, i);
        if (s.state !== NONE && s.state < READY) {
          const host = hostOf(s.pid);
          const st = host === undefined ? undefined : procState(host);
          if (st === undefined || st === 'Z' || st === 'X') {
            return abort(restoreError(RestoreErrorCode.DIED, `restore: task ${s.pid} died at "${STEPS[Number(s.step)] ?? s.step}"`, { pid: s.pid }));
          }
        }
      }
    }
    if (Date.now() > deadline) return abort(restoreError(RestoreErrorCode.TIMEOUT, `restore: tasks not ready after ${timeoutMs} ms`));
    if (opts.signal?.aborted) return abort(interrupted(opts.signal));
    // meanwhile, take a share of the tasks' page copying (else just wait)
    const took = helper ? native.assist(helper, round < 100 ? 1 : 5) : 0;
    helped += took;
    if (!took) await sleep(helper ? 0 : round < 100 ? 1 : 5);
  }

  if (plan.lazy && opts.lazyHandOver) {
    const handed: { pid: number; uffd: number | undefined }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const t = plan.tasks[i]!;
        const s = readStatus(dv, i);
        handed.push({ pid: t.pid, uffd: t.zombie || !s.lazyUffd ? undefined : takeTaskFd(hostOf(t.pid) ?? t.pid, Number(s.lazyUffd - 1n)) });
      }
      await opts.lazyHandOver(handed);
      log.debug(`restorer: ${handed.filter((h) => h.uffd !== undefined).length} userfaultfd(s) handed to the lazy-pages daemon`);
    } catch (e) {
      return abort(e instanceof Error ? e : new Error(String(e)));
    } finally {
      for (const h of handed) if (h.uffd !== undefined) closeFd(h.uffd);
    }
  }

  // the tasks whose css set is not their parent's; then, --root: the tree's root its namespace's
  try {
    if (cg) {
      for (const t of plan.tasks.slice(1)) {
        if (!t.zombie && !cg.inherits(t.cgSet, plan.tasks[t.parent]!.cgSet)) cg.moveTask(hostOf(t.pid) ?? t.pid, t.cgSet);
      }
      // then each thread in cgroups of its own (its process is in its own by now)
      for (const t of plan.tasks) {
        for (const th of t.zombie ? [] : t.threads) if (th.cgSet !== undefined) cg.moveThread(hostOf(th.tid) ?? th.tid, th.cgSet, t.cgSet);
      }
    }
    if (opts.mountRoot && plan.namespaces?.mounts) pivotInto(rootPid, opts.mountRoot.root);
    if (opts.mountRoot) {
      for (const n of nestedHosts) {
        pivotInto(n.host, opts.mountRoot.root, n.afterPivot);
      }
    }
  } catch (e) {
    return abort(restoreError(RestoreErrorCode.LAUNCH, `restore: ${(e as Error).message}`, { pid: rootPid }, ExitCode.FAILED, e as Error));
  }

  // (the last point where the restore can still be called off: from here on the tree goes on)
  if (opts.signal?.aborted) return abort(interrupted(opts.signal));
  if (opts.beforeResume) {
    try {
      await opts.beforeResume(rootPid);
    } catch (e) {
      return abort(e instanceof Error ? e : new Error(String(e)));
    }
  }
  // (what the restore itself did to watched files, the unlinked ones made again and unlinked
  // by now, queued events no task caused: dropped, as CRIU 4.2 drops them)
  try {
    dropRestoreEvents(plan, hostOf);
  } catch (e) {
    return abort(restoreError(RestoreErrorCode.LAUNCH, `restore: cannot empty an inotify queue: ${(e as Error).message}`, { pid: rootPid }, ExitCode.FAILED, e as Error));
  }

  if (inNs) seen = treeInnermostTids(rootPid);
  const host = (p: number): number => {
    const h = hostOf(p);
    if (h === undefined) throw restoreError(RestoreErrorCode.DIED, `restore: task ${p} of the new pid namespace is gone`, { pid: p });
    return h;
  };
  let pids: number[];
  let finishTasks;
  try {
    pids = plan.tasks.map((t) => host(t.pid));
    finishTasks = plan.tasks
      .filter((t) => !t.zombie)
      .map((t) => ({
        tids: t.threads.map((th) => host(th.tid)), regionStart: region.start, regionSize: region.size, stopSigno: opts.leaveStopped ? STOP_SIGNALS.SIGSTOP : t.stopSigno ?? 0,
        suspendSeccomp: t.threads.some((th) => th.seccomp !== undefined),
      }));
  } catch (e) {
    return abort(e as Error);
  }
  // resume everything at once; the launcher removes the restorer region from every task and
  // stops again, as its last step, each task that was dumped stopped (every task with -s)
  log.debug('restorer: resuming the tasks');
  const fin = native.finish({
    status,
    tasks: finishTasks,
    syscallAddr: region.start + BLOB_SYSCALL_OFFSET,
    timeoutMs: Math.min(timeoutMs, 10_000),
    parkedOff: Number(CONST.STATUS_PARKED_OFF),
    lastOff: Number(CONST.STATUS_LAST_OFF),
  });
  if (isSysError(fin)) {
    const e = syscallError(fin.syscall, fin.errno, { pid: (fin as { pid?: number }).pid });
    return abort(restoreError(RestoreErrorCode.TASK, `restore: resuming the tasks failed: ${e.message}`, { pid: (fin as { pid?: number }).pid }, ExitCode.FAILED, e));
  }
  native.release(status);
  const restoreUs = Math.round((nowMs() - tLaunch) * 1000);
  return { rootPid, pids, isChild, forkingUs: forkingUs ?? restoreUs, restoreUs, pagesCompared: compared, pagesShared: cowShared };
}

/** The launcher's copy helper when some task has runs for UFFDIO_COPY (encode.ts uffdRunFlags). */
function pageHelper(plan: RestorePlan, native: RestorerNative, status: ArrayBuffer): PageHelperHandle | undefined {
  const tasks = plan.tasks.map((t, i) => {
    const flags = uffdRunFlags(plan, i);
    return t.pages
      .filter((_, k) => flags[k])
      .map((r) => ({ vaddr: r.vaddr, len: r.npages * PAGE_SIZE_BIGINT, off: r.offset, path: path.resolve(r.path ?? t.pagesPath ?? '') }));
  });
  if (!tasks.some((runs) => runs.length > 0)) return undefined;
  const fields = Object.fromEntries(
    (['state', 'pid', 'uffd', 'chunks', 'claimed', 'copied', 'help_err'] as const).map((f) => [f, fieldOffset('status', f)]),
  ) as PageHelperArgs['fields'];
  return native.pageHelper(status, {
    tasksOff: Number(CONST.STATUS_TASKS_OFF),
    recordSize: recordSize('status'),
    pubOff: Number(CONST.STATUS_PUB_OFF),
    chunk: Number(CONST.PAGE_CHUNK),
    fields,
    failed: Number(CONST.ST_FAILED),
    tasks,
  });
}

/** Wait for a restored root that is our child; resolves with its exit status. */
export async function waitRoot(pid: number): Promise<{ code: number; signal: number }> {
  const native = loadNative();
  for (;;) {
    const r = native.waitpid(pid, true);
    if (isSysError(r)) throw syscallError(r.syscall, r.errno, { pid });
    if (r.pid === pid) return { code: r.code ?? 0, signal: r.signal ?? 0 };
    await sleep(50);
  }
}
