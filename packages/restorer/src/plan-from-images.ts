/**
 * images → restore plan: reads a CRIU image directory (ours or CRIU 4.2's) through
 * @crtools/images and @crtools/pagemap and produces the plain-data plan @crtools/restorer runs.
 * Everything that can be checked before forking is checked here (missing files, sizes,
 * truncated pages images, unsupported kinds).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CrtoolsError, ExitCode, PAGE_SIZE_BIGINT, silentLogger, type Logger } from '@crtools/common';
import { FILE_LOCK_FLAG, FILE_LOCK_TYPE, NS_KINDS, SIGEV, TASK_STATE } from '@crtools/images/facts';
import {
  VMA_ANON_PRIVATE, VMA_ANON_SHARED, VMA_AREA_AIORING, VMA_AREA_MEMFD, VMA_AREA_REGULAR, VMA_AREA_SOCKET,
  VMA_AREA_SYSVIPC, VMA_AREA_VDSO, VMA_AREA_VSYSCALL, VMA_AREA_VVAR, VMA_FILE_PRIVATE, VMA_FILE_SHARED, VMA_UNSUPP,
} from '@crtools/images';
import { openPageReader } from '@crtools/pagemap';
import { FilePlanTable, firstEntry, readImage } from '@crtools/files/plan';
import { X86_REGS, type CredsPlan, type PageRun, type PosixTimerPlan, type ShmemPlan, type RestorePlan, type TaskPlan, type ThreadPlan, type VmaPlan, type X86Reg } from './plan.js';

type Obj = Record<string, any>;


const FD_CLOEXEC = 1;

export interface BuildPlanOptions {
  logger?: Logger;
  /**
   * CRIU's --inherit-fd: files handed over by the caller instead of made again, by the name CRIU
   * gives them (`pipe:[ino]`, `socket:[ino]`, a path without its leading slash) → descriptor
   */
  inherit?: Map<string, number>;
}

function unsupported(msg: string, ctx: Record<string, unknown> = {}): CrtoolsError {
  return new CrtoolsError('RESTORE_UNSUPPORTED', msg, { exitCode: ExitCode.UNSUPPORTED, context: ctx });
}

function badInput(msg: string, ctx: Record<string, unknown> = {}): CrtoolsError {
  return new CrtoolsError('RESTORE_BAD_IMAGE', msg, { exitCode: ExitCode.BAD_INPUT, context: ctx });
}

function missing(msg: string, path: string): CrtoolsError {
  return new CrtoolsError('RESTORE_MISSING_FILE', msg, { exitCode: ExitCode.FAILED, context: { path } });
}

const img = readImage;
const first = firstEntry;

const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : BigInt((v as number | undefined) ?? 0));

function u32le(vals: readonly number[] | undefined, count: number): Buffer {
  const b = Buffer.alloc(count * 4);
  (vals ?? []).slice(0, count).forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
}

function u64le(vals: readonly (bigint | number)[] | undefined, count: number): Buffer | undefined {
  if (!vals || vals.length === 0) return undefined;
  const b = Buffer.alloc(count * 8);
  vals.slice(0, count).forEach((v, i) => b.writeBigUInt64LE(BigInt.asUintN(64, big(v)), i * 8));
  return b;
}

/** The 512-byte FXSAVE image from CRIU's user_x86_fpregs_entry. */
export function fxsaveFrom(fp: Obj): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt16LE(fp.cwd & 0xffff, 0);
  b.writeUInt16LE(fp.swd & 0xffff, 2);
  b.writeUInt16LE(fp.twd & 0xffff, 4);
  b.writeUInt16LE(fp.fop & 0xffff, 6);
  b.writeBigUInt64LE(big(fp.rip), 8);
  b.writeBigUInt64LE(big(fp.rdp), 16);
  b.writeUInt32LE(fp.mxcsr >>> 0, 24);
  b.writeUInt32LE(fp.mxcsr_mask >>> 0, 28);
  u32le(fp.st_space, 32).copy(b, 32);
  u32le(fp.xmm_space, 64).copy(b, 160);
  return b;
}

/** A signal_queue_entry → raw siginfo_t buffers (CRIU stores them as the kernel's 128 bytes). */
function sigQueue(q: Obj | undefined, path: string): Buffer[] | undefined {
  const list = (q?.signals ?? []) as Obj[];
  if (!list.length) return undefined;
  return list.map((e, i) => {
    const b = e.siginfo as Buffer | undefined;
    if (!b || b.length !== 128) throw badInput(`${path}: pending signal ${i} has a ${b?.length ?? 0}-byte siginfo (128 expected)`, { path, image: path });
    const signo = b.readInt32LE(0);
    if (signo < 1 || signo > 64) throw badInput(`${path}: pending signal ${i} has signal number ${signo}`, { path, image: path });
    return Buffer.from(b);
  });
}

/** thread_core sched_* → policy/prio/nice (nothing recorded: left as inherited) */
function schedFrom(tc: Obj | undefined, path: string): { policy: number; prio: number; nice: number } | undefined {
  if (tc?.sched_policy === undefined && tc?.sched_nice === undefined) return undefined;
  const policy = Number(tc.sched_policy ?? 0);
  const prio = Number(tc.sched_prio ?? 0);
  const nice = Number(tc.sched_nice ?? 0);
  if (![0, 1, 2, 3, 5].includes(policy)) throw badInput(`${path}: unknown scheduling policy ${policy}`, { path, image: path });
  if (nice < -20 || nice > 19) throw badInput(`${path}: nice ${nice} out of range`, { path, image: path });
  if ((policy === 1 || policy === 2) !== (prio > 0) || prio > 99) throw badInput(`${path}: priority ${prio} does not fit policy ${policy}`, { path, image: path });
  return { policy, prio, nice };
}

/** creds_entry capability words (low, high) → bit sets; images without them leave caps inherited */
function capsFrom(creds: Obj): CredsPlan['caps'] {
  if (!creds.cap_prm?.length && !creds.cap_bnd?.length) return undefined;
  const set = (w: unknown[] | undefined) => (w ?? []).reduce<bigint>((acc, x, i) => acc | (BigInt(Number(x) >>> 0) << BigInt(32 * i)), 0n);
  return {
    inh: set(creds.cap_inh), prm: set(creds.cap_prm), eff: set(creds.cap_eff), bnd: set(creds.cap_bnd), amb: set(creds.cap_amb),
    secbits: Number(creds.secbits ?? 0), noNewPrivs: !!creds.no_new_privs,
  };
}

function oomFrom(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1000 || n > 1000) throw badInput(`${path}: oom_score_adj ${String(v)} out of range`, { path, image: path });
  return n;
}

const { SIGNAL: SIGEV_SIGNAL, NONE: SIGEV_NONE, THREAD_ID: SIGEV_THREAD_ID } = SIGEV;

/** A posix_timer_entry → what the blob recreates (same id, notify, remaining time). */
function posixTimer(p: Obj, pid: number, tids: number[]): PosixTimerPlan {
  const notify = Number(p.it_sigev_notify);
  if (notify !== SIGEV_SIGNAL && notify !== SIGEV_NONE && notify !== SIGEV_THREAD_ID) {
    throw badInput(`core-${pid}.img: POSIX timer ${p.it_id} has sigev_notify ${notify}`, { pid });
  }
  const notifyTid = notify === SIGEV_THREAD_ID ? Number(p.notify_thread_id) : undefined;
  if (notifyTid !== undefined && !tids.includes(notifyTid)) {
    throw badInput(`core-${pid}.img: POSIX timer ${p.it_id} signals thread ${notifyTid}, which is not in the task`, { pid });
  }
  const isec = big(p.isec);
  const insec = big(p.insec);
  let vsec = big(p.vsec);
  let vnsec = big(p.vnsec);
  // a periodic timer caught with its expiry signal still queued shows no time left: it fires again at once
  if (vsec === 0n && vnsec === 0n && (isec !== 0n || insec !== 0n)) vnsec = 1n;
  return { id: Number(p.it_id), clockId: Number(p.clock_id), signo: Number(p.si_signo), notify, sival: big(p.sival_ptr), notifyTid, isec, insec, vsec, vnsec };
}

function threadFrom(tid: number, core: Obj, leaderTc: Obj | undefined, path: string): ThreadPlan {
  if (core.mtype !== 'X86_64' && core.mtype !== 1) throw unsupported(`${path}: architecture ${core.mtype} is not x86_64`, { path });
  const ti = core.thread_info;
  if (!ti?.gpregs || !ti.fpregs) throw badInput(`${path}: no x86 thread state`, { path, image: path });
  if (ti.gpregs.mode !== undefined && ti.gpregs.mode !== 'NATIVE' && ti.gpregs.mode !== 1) throw unsupported(`${path}: 32-bit (compat) tasks are not supported`, { path });
  const regs = {} as Record<X86Reg, bigint>;
  for (const r of X86_REGS) regs[r] = big(ti.gpregs[r]);
  const xs = ti.fpregs.xsave as Obj | undefined;
  const tc = core.thread_core as Obj | undefined;
  const sas = tc?.sas as Obj | undefined;
  const rseq = tc?.rseq_entry as Obj | undefined;
  const sm = tc?.seccomp_mode;
  if (sm !== undefined && sm !== 'disabled' && sm !== 0) throw unsupported(`${path}: seccomp (${sm}) is not restored yet`, { path, pid: tid });
  return {
    tid,
    regs,
    fxsave: fxsaveFrom(ti.fpregs),
    xstateBv: big(xs?.xstate_bv ?? 3n),
    ymmh: xs?.ymmh_space?.length ? u32le(xs.ymmh_space, 64) : undefined,
    opmask: u64le(xs?.opmask_reg, 8),
    zmmUpper: u64le(xs?.zmm_upper, 64),
    hi16Zmm: u64le(xs?.hi16_zmm, 128),
    pkru: xs?.pkru?.length ? Number(xs.pkru[0]) : undefined,
    blkSigset: big(tc?.blk_sigset ?? leaderTc?.blk_sigset ?? 0n),
    sas: { sp: big(sas?.ss_sp), size: big(sas?.ss_size), flags: sas?.ss_flags ?? 2 },
    clearTid: big(ti.clear_tid_addr),
    rseq: rseq && big(rseq.rseq_abi_pointer) !== 0n ? { ptr: big(rseq.rseq_abi_pointer), len: rseq.rseq_abi_size, sig: rseq.signature } : undefined,
    comm: tc?.comm ?? leaderTc?.comm,
    pendingSignals: sigQueue(tc?.signals_p, path),
    sched: schedFrom(tc, path),
  };
}

/**
 * The shared anonymous memory objects of a checkpoint: CRIU 4.2 writes MAP_SHARED|MAP_ANONYMOUS
 * memory the memfd way (a MEMFD file whose memfd.img inode is named /dev/zero; pages in
 * pagemap-shmem-<shmid>.img), older CRIU as VMA_ANON_SHARED areas naming the shmid directly.
 * One object per shmid, sized to cover every area that maps it.
 */
class ShmemTable {
  readonly objects: { shmid: number; size: bigint }[] = [];
  private byKey = new Map<string, number>();
  constructor(private readonly inodes: Map<number, Obj>) {}

  /** Object index of a memfd-way area (file = its files.img entry). */
  memfd(file: Obj, v: VmaPlan, where: string): number {
    if (file.type !== 'MEMFD' || !file.memfd) throw unsupported(`${where}: shared mapping of a ${file.type} file`);
    const inode = this.inodes.get(Number(file.memfd.inode_id));
    if (!inode) throw badInput(`${where}: memfd.img has no inode ${file.memfd.inode_id}`, { image: 'memfd.img' });
    if (inode.name !== '/dev/zero') throw unsupported(`${where}: memfd "${inode.name}" mappings are not restored yet`);
    return this.add(`memfd:${file.memfd.inode_id}`, Number(inode.shmid), big(inode.size), v);
  }

  /** Object index of a VMA_ANON_SHARED area. */
  anon(shmid: number, v: VmaPlan): number {
    return this.add(`anon:${shmid}`, shmid, 0n, v);
  }

  private add(key: string, shmid: number, size: bigint, v: VmaPlan): number {
    const need = v.pgoff + (v.end - v.start);
    let i = this.byKey.get(key);
    if (i === undefined) {
      i = this.objects.push({ shmid, size: 0n }) - 1;
      this.byKey.set(key, i);
    }
    const o = this.objects[i]!;
    for (const s of [size, need]) if (s > o.size) o.size = (s + 4095n) & ~4095n;
    return i;
  }
}

/** A zombie: made with its pid, group, session and parent, it ends at once with its wait status. */
function zombieTask(pid: number, parent: number, pgid: number, sid: number, status: number, comm?: string): TaskPlan {
  const zero = (Object.fromEntries(X86_REGS.map((r) => [r, 0n])) as Record<X86Reg, bigint>);
  const thread: ThreadPlan = { tid: pid, regs: zero, fxsave: Buffer.alloc(512), xstateBv: 3n, blkSigset: 0n, sas: { sp: 0n, size: 0n, flags: 2 }, clearTid: 0n, comm };
  const mm = { startCode: 0n, endCode: 0n, startData: 0n, endData: 0n, startStack: 0n, startBrk: 0n, brk: 0n, argStart: 0n, argEnd: 0n, envStart: 0n, envEnd: 0n };
  return {
    pid, parent, pgid, sid, threads: [thread], vmas: [], pages: [], fds: [], umask: 0o22, personality: 0, mm, auxv: [], dumpable: 0,
    sigactions: Array.from({ length: 64 }, () => ({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n })), rlimits: [],
    creds: { uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0, groups: [] },
    itimers: [], childSubreaper: false, zombie: { status },
  };
}

function vmaFrom(v: Obj, files: FilePlanTable, shmem: ShmemTable, pid: number): VmaPlan {
  const s = v.status >>> 0;
  const base = { start: big(v.start), end: big(v.end), pgoff: big(v.pgoff), prot: v.prot, flags: v.flags, madv: big(v.madv ?? 0n) };
  const where = `pid ${pid}: area ${base.start.toString(16)}-${base.end.toString(16)}`;
  if (s & VMA_AREA_VSYSCALL) return { ...base, kind: 'vsyscall' };
  if (s & VMA_AREA_VVAR) return { ...base, kind: 'vvar' };
  if (s & VMA_AREA_VDSO) return { ...base, kind: 'vdso' };
  if (s & VMA_AREA_REGULAR && s & VMA_AREA_MEMFD && s & VMA_FILE_SHARED && !(s & (VMA_AREA_SYSVIPC | VMA_UNSUPP))) {
    const p: VmaPlan = { ...base, kind: 'file-shared' };
    return { ...p, shmem: shmem.memfd(files.entry(Number(v.shmid), where), p, where) };
  }
  if (s & VMA_AREA_REGULAR && s & VMA_ANON_SHARED && !(s & (VMA_AREA_SYSVIPC | VMA_AREA_MEMFD | VMA_UNSUPP))) {
    const p: VmaPlan = { ...base, kind: 'file-shared' };
    return { ...p, shmem: shmem.anon(Number(v.shmid), p) };
  }
  if (s & (VMA_AREA_SYSVIPC | VMA_AREA_SOCKET | VMA_AREA_AIORING | VMA_AREA_MEMFD | VMA_UNSUPP | VMA_ANON_SHARED)) {
    throw unsupported(`${where}: this kind of mapping (status 0x${s.toString(16)}) is not restored yet`, { pid });
  }
  if (!(s & VMA_AREA_REGULAR)) throw unsupported(`${where}: irregular mapping (status 0x${s.toString(16)})`, { pid });
  if (s & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
    const f = files.entry(Number(v.shmid), where);
    if (!f.reg) throw unsupported(`${where}: mapped ${f.type} file`, { pid });
    const path = f.reg.name as string;
    const ghost = files.ghostOf(Number(v.shmid));
    if (ghost !== undefined) return { ...base, kind: s & VMA_FILE_SHARED ? 'file-shared' : 'file-private', path, openFlags: Number(v.fdflags ?? 0) & ~0o100, ghost };
    if (!existsSync(path)) throw missing(`${where}: mapped file ${path} no longer exists`, path);
    const size = f.reg.size === undefined ? undefined : big(f.reg.size);
    if (size !== undefined && BigInt(statSync(path).size) !== size) throw missing(`${where}: mapped file ${path} changed size`, path);
    return { ...base, kind: s & VMA_FILE_SHARED ? 'file-shared' : 'file-private', path, openFlags: Number(v.fdflags ?? 0) & ~0o100, fileSize: size };
  }
  if (s & VMA_ANON_PRIVATE) return { ...base, kind: 'anon' };
  throw unsupported(`${where}: unknown mapping (status 0x${s.toString(16)})`, { pid });
}

export async function buildRestorePlan(dirIn: string, opts: BuildPlanOptions = {}): Promise<RestorePlan> {
  const log = opts.logger ?? silentLogger;
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw badInput(`images directory ${dir} does not exist`, { path: dir });
  const inventory = first(await img(dir, 'inventory.img', 'INVENTORY'), 'inventory.img');
  const pstree = (await img(dir, 'pstree.img', 'PSTREE'))!;
  if (!pstree.length) throw badInput('pstree.img: no tasks', { image: 'pstree.img' });
  const files = await FilePlanTable.load(dir, { inherit: opts.inherit });
  const memfdInodes = new Map<number, Obj>(((await img(dir, 'memfd.img', 'MEMFD_INODE', true)) ?? []).map((m) => [Number(m.inode_id), m]));
  const shmem = new ShmemTable(memfdInodes);

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
    if (tc.task_state !== undefined && tc.task_state !== TASK_STATE.ALIVE) {
      throw unsupported(`pid ${pid}: task state ${tc.task_state} is not restored yet`, { pid });
    }
    const ids = core.ids ?? first(await img(dir, `ids-${pid}.img`, 'IDS'), `ids-${pid}.img`);
    // namespaces are not recreated: every task must live in the dump's root namespaces
    const rootIds = (inventory.root_ids ?? {}) as Obj;
    for (const ns of NS_KINDS) {
      const k = `${ns}_ns_id`;
      if (ids[k] !== undefined && rootIds[k] !== undefined && ids[k] !== rootIds[k]) {
        throw unsupported(`pid ${pid} lives in its own ${ns} namespace, which restore does not recreate yet`, { pid });
      }
    }
    const oldSeccomp = tc.old_seccomp_mode;
    if (oldSeccomp !== undefined && oldSeccomp !== 'disabled' && oldSeccomp !== 0) throw unsupported(`pid ${pid}: seccomp (${oldSeccomp}) is not restored yet`, { pid });
    const mm = first(await img(dir, `mm-${pid}.img`, 'MM'), `mm-${pid}.img`);
    const fs = first(await img(dir, `fs-${pid}.img`, 'FS'), `fs-${pid}.img`);
    const fdinfoFile = inventory.fdinfo_per_id ? `fdinfo-${ids.files_id}.img` : `fdinfo-${pid}.img`;
    const fdinfo = (await img(dir, fdinfoFile, 'FDINFO')) ?? [];

    const threadIds: number[] = (e.threads ?? [pid]).map(Number);
    if (threadIds[0] !== pid) threadIds.sort((a, b) => (a === pid ? -1 : b === pid ? 1 : 0));
    const threads: ThreadPlan[] = [];
    for (const tid of threadIds) {
      const c = tid === pid ? core : first(await img(dir, `core-${tid}.img`, 'CORE'), `core-${tid}.img`);
      threads.push(threadFrom(tid, c, tc, `core-${tid}.img`));
    }

    const vmas = (mm.vmas ?? []).map((v: Obj) => vmaFrom(v, files, shmem, pid));
    const reader = await openPageReader({ dir, id: pid });
    const pages = reader.segments().map((s) => ({ vaddr: s.vaddr, npages: BigInt(s.nrPages), offset: BigInt(s.offset), path: s.path }));
    reader.close();
    checkPagesImages(pages);
    const sorted = [...vmas].sort((x: VmaPlan, y: VmaPlan) => (x.start < y.start ? -1 : 1));
    for (const p of pages) {
      // a run may span adjacent areas; every page of it must be inside one
      let at = p.vaddr;
      const end = p.vaddr + p.npages * PAGE_SIZE_BIGINT;
      for (const v of sorted) if (v.start <= at && at < v.end) at = v.end < end ? v.end : end;
      if (at < end || sorted.some((v: VmaPlan) => v.kind === 'file-shared' && v.start < end && p.vaddr < v.end)) {
        throw badInput(`pagemap-${pid}.img: pages at 0x${p.vaddr.toString(16)} lie outside the task's private mappings`, { pid });
      }
    }
    // vDSO pages are the kernel's; never write them
    const restorable = pages.filter((p) => !vmas.some((v: VmaPlan) => (v.kind === 'vdso' || v.kind === 'vvar') && v.start <= p.vaddr && p.vaddr < v.end));

    const fds = fdinfo.map((f: Obj) => ({ fd: Number(f.fd), file: files.index(Number(f.id), `pid ${pid} fd ${f.fd}`, pid), cloexec: (Number(f.flags) & FD_CLOEXEC) !== 0 }));
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
    if (exe && exeGhost === undefined && !existsSync(exe)) throw missing(`pid ${pid}: executable ${exe} no longer exists`, exe);
    const cwd = fs.cwd_id !== undefined ? files.regPath(Number(fs.cwd_id), `pid ${pid} cwd`) : undefined;
    if (cwd && !existsSync(cwd)) throw missing(`pid ${pid}: working directory ${cwd} no longer exists`, cwd);

    tasks.push({
      pid,
      parent: tasks.length === 0 ? -1 : indexOf.get(Number(e.ppid))!,
      pgid: Number(e.pgid),
      sid: Number(e.sid),
      threads,
      vmas,
      pagesPath: reader.pagesPath,
      pages: restorable,
      fds,
      cwd,
      root: fs.root_id !== undefined ? files.regPath(Number(fs.root_id), `pid ${pid} root`) : undefined,
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
      pendingSignals: sigQueue(tc.signals_s, corePath),
      posixTimers: ((tm.posix ?? []) as Obj[]).map((p) => posixTimer(p, pid, threadIds)),
      oomScoreAdj: oomFrom(tc.oom_score_adj, corePath),
    });
    log.debug(`restore plan: pid ${pid}: ${threads.length} thread(s), ${vmas.length} areas, ${restorable.length} page runs, ${fds.length} fds`);
  }
  files.finish();
  for (const k of files.unusedInherit()) log.warn(`--inherit-fd: no file of the checkpoint is ${k}`);
  // shared memory objects: their pages, offsets within the object
  const shmemPlans: ShmemPlan[] = [];
  for (const o of shmem.objects) {
    const name = `pagemap-shmem-${o.shmid}.img`;
    if (!existsSync(join(dir, name))) throw badInput(`${join(dir, name)}: image missing (the shared memory's pages)`, { image: name });
    const reader = await openPageReader({ dir, id: o.shmid, kind: 'shmem' });
    const pages: PageRun[] = reader.segments().map((s) => ({ vaddr: s.vaddr, npages: BigInt(s.nrPages), offset: BigInt(s.offset), path: s.path }));
    reader.close();
    checkPagesImages(pages);
    for (const p of pages) {
      if (p.vaddr + p.npages * PAGE_SIZE_BIGINT > o.size) throw badInput(`pagemap-shmem-${o.shmid}.img: pages at offset 0x${p.vaddr.toString(16)} lie past the ${o.size} bytes of the shared memory`, { image: `pagemap-shmem-${o.shmid}.img` });
    }
    shmemPlans.push({ size: o.size, pages });
  }
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
  return { tasks, files: files.files, ...(shmemPlans.length ? { shmem: shmemPlans } : {}), ...(files.ghosts.length ? { ghosts: files.ghosts } : {}) };
}

/** A truncated pages image must fail while planning, not halfway through a restore. */
function checkPagesImages(pages: PageRun[]): void {
  const ends = new Map<string, bigint>();
  for (const p of pages) {
    const end = p.offset + p.npages * PAGE_SIZE_BIGINT;
    if (end > (ends.get(p.path!) ?? 0n)) ends.set(p.path!, end);
  }
  for (const [path, end] of ends) {
    const have = existsSync(path) ? BigInt(statSync(path).size) : -1n;
    if (have < end) throw badInput(`${path}: pages image is ${have < 0n ? 'missing' : `${have} bytes`}, its pagemap needs ${end}`, { path, image: path });
  }
}
