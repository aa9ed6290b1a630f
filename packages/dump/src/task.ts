import { readlinkSync, statSync } from 'node:fs';
import { CrtoolsError, ExitCode, isRealtimePolicy, PAGE_SIZE_BIGINT, Refusals } from '@crtools/common';
import { COREDUMP_FILTER_DEFAULT, decodeDev, SIGEV, stopSignal, TASK_STATE } from '@crtools/images/facts';
import { restartableRegs, type TaskState, type ThreadState } from '@crtools/parasite';
import {
  ANON_HUGEPAGE, auxvWords, MAP, readAuxv, readCoredumpFilter, readLimits, readLoginuid, readOomScoreAdj, readStat, VMA,
  type CriuVma, type FdRecord, type ProcStat, type ProcStatus, type PosixTimer,
} from '@crtools/procfs';
import type { Entry, FileTable } from '@crtools/files/dump';
import { SECCOMP_FILTER_FLAG_TSYNC, SeccompChains, sameChain } from './seccomp.js';
import { AioRings } from './aio.js';


function capWords(v: bigint | undefined): number[] {
  const x = v ?? 0n;
  return [Number(x & 0xffffffffn), Number(x >> 32n)];
}

/** How ids are written: as the tree's user namespace sees them (the identity when it lives in criu's). */
export interface IdView {
  uidInside(id: number): number;
  gidInside(id: number): number;
}

const SAME_IDS: IdView = { uidInside: (id) => id, gidInside: (id) => id };

/**
 * Creds of one thread from /proc/PID/task/TID/status plus securebits from the parasite; the ids
 * as the thread's user namespace sees them (as CRIU, whose parasite asks the thread itself).
 */
export function credsEntry(st: ProcStatus, secbits: number, noNewPrivs: boolean, view: IdView = SAME_IDS): Entry {
  const uid = (st.Uid ?? [0, 0, 0, 0]).map((x) => view.uidInside(x));
  const gid = (st.Gid ?? [0, 0, 0, 0]).map((x) => view.gidInside(x));
  const e: Entry = {
    uid: uid[0], gid: gid[0], euid: uid[1], egid: gid[1], suid: uid[2], sgid: gid[2], fsuid: uid[3], fsgid: gid[3],
    cap_inh: capWords(st.CapInh), cap_prm: capWords(st.CapPrm), cap_eff: capWords(st.CapEff), cap_bnd: capWords(st.CapBnd),
    secbits,
    groups: (st.Groups ?? []).map((x) => view.gidInside(x)),
    cap_amb: capWords(st.CapAmb),
  };
  if (noNewPrivs) e['no_new_privs'] = 1;
  return e;
}

function threadInfo(t: ThreadState): Entry {
  const fp = t.fpregs;
  const fpregs: Entry = {
    cwd: fp.cwd, swd: fp.swd, twd: fp.twd, fop: fp.fop, rip: fp.rip, rdp: fp.rdp, mxcsr: fp.mxcsr, mxcsr_mask: fp.mxcsr_mask,
    st_space: fp.st_space, xmm_space: fp.xmm_space,
  };
  if (fp.xsave) fpregs['xsave'] = { ...fp.xsave };
  return {
    clear_tid_addr: t.misc.clearTidAddr,
    gpregs: { ...restartableRegs(t.regs), mode: 'NATIVE' },
    fpregs,
    tls: t.tls,
  };
}

function sigQueue(list: Buffer[]): Entry {
  return { signals: list.map((siginfo) => ({ siginfo })) };
}

const SECCOMP_STRICT = 1;
const SECCOMP_FILTER = 2;

/**
 * thread_core's seccomp_mode and seccomp_filter of each thread of a task, its filters added to
 * the tree's chains. When every thread has the main thread's chain, only the main thread keeps
 * it, with SECCOMP_FILTER_FLAG_TSYNC on each filter (as CRIU 4.2 records it): restored, it is
 * installed once for the whole process, so the threads share one chain again, and a later
 * TSYNC install of the program's own still finds every thread's filters its ancestors.
 */
function seccompOfThreads(pid: number, state: TaskState, chains: SeccompChains, refusals: Refusals): Entry[] {
  const [main, ...rest] = state.threads;
  for (const t of state.threads) {
    const { mode, filters } = t.seccomp;
    if (mode > SECCOMP_FILTER || (mode === SECCOMP_FILTER && filters.length === 0)) {
      refusals.refuse(new CrtoolsError('UNSUPPORTED_SECCOMP', `task ${pid}: thread ${t.tid} has seccomp mode ${mode}${mode === SECCOMP_FILTER ? ' without filters that ptrace can read' : ''}`, { context: { pid: t.tid }, exitCode: ExitCode.UNSUPPORTED }));
      return state.threads.map(() => ({}));
    }
  }
  const shared = main !== undefined && main.seccomp.mode === SECCOMP_FILTER && rest.every((t) => t.seccomp.mode === SECCOMP_FILTER && sameChain(t.seccomp.filters, main.seccomp.filters));
  return state.threads.map((t, i) => {
    if (shared) {
      if (i > 0) return {};
      return { seccomp_mode: 'filter', seccomp_filter: chains.add(t.seccomp.filters.map((f) => ({ filter: f.filter, flags: f.flags | SECCOMP_FILTER_FLAG_TSYNC }))) };
    }
    if (t.seccomp.mode === SECCOMP_STRICT) return { seccomp_mode: 'strict' };
    if (t.seccomp.mode === SECCOMP_FILTER) return { seccomp_mode: 'filter', seccomp_filter: chains.add(t.seccomp.filters) };
    return {};
  });
}

function threadCore(pid: number, t: ThreadState, state: TaskState, withMask: boolean, seccomp: Entry, cgSet: number, view: IdView): Entry {
  const status = t.status;
  // (nice, priority and name as the thread itself told them: the parasite's THREAD command)
  // with SCHED_RESET_ON_FORK, as sched_getscheduler() tells it (stat's field leaves the flag out)
  const policy = t.misc.schedPolicy >= 0 ? t.misc.schedPolicy : readStat({ pid, tid: t.tid }).policy;
  const tc: Entry = {
    futex_rla: t.misc.robustList.head,
    futex_rla_len: Number(t.misc.robustList.len),
    sched_nice: t.misc.nice,
    sched_policy: policy,
  };
  if (isRealtimePolicy(policy)) tc['sched_prio'] = t.misc.rtPriority;
  if (withMask) tc['blk_sigset'] = t.sigmask;
  tc['sas'] = { ss_sp: t.misc.sas.ss_sp, ss_size: t.misc.sas.ss_size, ss_flags: t.misc.sas.ss_flags };
  // (the parent-death signal is the main thread's: clone clears it for every new thread)
  if (!withMask && state.misc.pdeathsig) tc['pdeath_sig'] = state.misc.pdeathsig;
  tc['signals_p'] = sigQueue(t.pendingSignals);
  tc['creds'] = credsEntry(status, state.misc.securebits, state.misc.noNewPrivs, view);
  Object.assign(tc, seccomp);
  tc['comm'] = t.misc.comm;
  if (t.rseq && t.rseq.rseq_abi_pointer !== 0n) {
    tc['rseq_entry'] = { rseq_abi_pointer: t.rseq.rseq_abi_pointer, rseq_abi_size: t.rseq.rseq_abi_size, signature: t.rseq.signature, ...(t.rseqCs !== undefined ? { rseq_cs_pointer: t.rseqCs } : {}) };
  }
  tc['cg_set'] = cgSet;
  return tc;
}

/**
 * core-PID.img entries: the main thread (with the task part) and one file per other thread; each
 * thread's css set from `cgSetOf` (cgroups.ts); creds and login uid as `view` sees them.
 */
export function coreEntries(pid: number, state: TaskState, stat: ProcStat, timers: PosixTimer[], refusals = new Refusals(), seccompChains = new SeccompChains(), cgSetOf: (tid: number) => number = () => 1, view: IdView = SAME_IDS): Map<number, Entry> {
  const out = new Map<number, Entry>();
  const main = state.threads[0]!;
  refusals.check(() => refuseTimerSlack(pid, state.misc.timerslack, stat.policy));
  const limits = readLimits(pid).sort((a, b) => a.index - b.index);
  const it = state.itimers;
  const posix = timers.map((pt) => {
    const v = state.posixTimers.find((x) => x.id === pt.id);
    return {
      it_id: pt.id, clock_id: pt.clockId, si_signo: pt.signo, it_sigev_notify: notifyValue(pt.notify, pt.notifyTarget), sival_ptr: pt.sigval,
      overrun: v?.overrun ?? 0, isec: v?.isec ?? 0n, insec: v?.insec ?? 0n, vsec: v?.vsec ?? 0n, vnsec: v?.vnsec ?? 0n,
      ...(pt.notifyTarget === 'tid' ? { notify_thread_id: pt.notifyId } : {}),
    };
  });
  // a task seized in group-stop is TASK_STOPPED, with the signal that stopped it (restore stops it again)
  const stopSigno = stopSignal(state.interruptSignal);
  const tcEntry: Entry = {
    task_state: stopSigno ? TASK_STATE.STOPPED : TASK_STATE.ALIVE,
    exit_code: 0,
    personality: state.misc.personality,
    flags: stat.flags,
    blk_sigset: main.sigmask,
    comm: stat.comm,
    timers: { real: it.real, virt: it.virt, prof: it.prof, posix },
    rlimits: { rlimits: limits.map((l) => ({ cur: l.soft, max: l.hard })) },
    signals_s: sigQueue(state.sharedPendingSignals),
    loginuid: view.uidInside(readLoginuid(pid)),
    oom_score_adj: readOomScoreAdj(pid),
    sigactions: state.sigactions.map((s) => ({ sigaction: s.handler, flags: s.flags, restorer: s.restorer, mask: s.mask, compat_sigaction: false })),
    child_subreaper: state.misc.childSubreaper,
  };
  if (state.misc.membarrier > 0) tcEntry['membarrier_registration_mask'] = state.misc.membarrier;
  if (stopSigno) tcEntry['stop_signo'] = stopSigno;
  const seccomp = seccompOfThreads(pid, state, seccompChains, refusals);
  out.set(pid, { mtype: 'X86_64', thread_info: threadInfo(main), tc: tcEntry, thread_core: threadCore(pid, main, state, false, seccomp[0]!, cgSetOf(main.tid), view) });
  state.threads.slice(1).forEach((t, i) => {
    out.set(t.tid, { mtype: 'X86_64', thread_info: threadInfo(t), thread_core: threadCore(pid, t, state, true, seccomp[i + 1]!, cgSetOf(t.tid), view) });
  });
  return out;
}

/** A task's timer slack when nobody set it: 50 µs, none for a real-time task (Linux 6.7 on). */
const TIMER_SLACK_DEFAULT = 50_000n;

/**
 * CRIU's images have no field for the timer slack (PR_SET_TIMERSLACK): a restored task has its
 * restorer's. A task whose slack is not what it would be anyway is refused by name.
 */
function refuseTimerSlack(pid: number, slack: bigint, policy: number): void {
  const rt = policy === 1 || policy === 2;
  if (slack === TIMER_SLACK_DEFAULT || (rt && slack === 0n)) return;
  throw new CrtoolsError('UNSUPPORTED_TASK_ATTRIBUTE', `task ${pid}: timer slack ${slack} ns (PR_SET_TIMERSLACK) is not supported (a restored task has ${TIMER_SLACK_DEFAULT} ns)`, {
    context: { pid, attribute: 'timerslack' },
    exitCode: ExitCode.UNSUPPORTED,
  });
}

/**
 * /proc/PID/timers' "notify: WORD/TARGET.ID" as sigev_notify: the word says how (signal, none),
 * the target whom ("tid": the one thread named, SIGEV_THREAD_ID; "pid": the process).
 */
function notifyValue(notify: string, target: string): number {
  if (notify.includes('none')) return SIGEV.NONE;
  return target === 'tid' ? SIGEV.THREAD_ID : SIGEV.SIGNAL;
}

function devString(dev: number): string {
  const d = decodeDev(dev);
  return `${d.major}:${d.minor}`;
}

/**
 * A mapping the dump cannot carry, refused by name (returns true when it can). `memfd`: it maps a
 * memfd; `shmemObject`: it is one the dump carries (shared anonymous memory, a memfd on shmem).
 */
function refuseVma(pid: number, v: CriuVma, memfd: boolean, shmemObject: boolean, sysvAttaches?: ReadonlyMap<number, bigint>): true {
  const where = `task ${pid}: mapping ${v.start.toString(16)}-${v.end.toString(16)}`;
  // a SysV segment of the tree's own IPC namespace, attached whole (shmat maps a segment from its
  // start to its end, in its pages): attached again at restore; a part of an attach is refused by name
  if (v.status & VMA.AREA_SYSVIPC && sysvAttaches && v.shmid !== undefined) {
    const len = sysvAttaches.get(Number(v.shmid));
    const whole = len !== undefined && v.pgoff === 0n && v.end - v.start === len;
    if (whole) return true;
    throw new CrtoolsError('UNSUPPORTED_VMA', `${where} ${v.name}: ${len === undefined ? 'SysV IPC shared memory of no segment of the tree\'s IPC namespace' : 'a part of an attach of SysV shared memory (split or partly unmapped)'} is not supported yet`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
  }
  if (v.status & VMA.UNSUPP) {
    throw new CrtoolsError('UNSUPPORTED_VMA', `${where} ${v.name || '(anonymous)'} is not supported`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
  }
  // anonymous huge pages on no hugetlb device kerndat found: they would be taken for a file (a
  // file of a mounted hugetlbfs is one: mapped again from its path, as CRIU 4.2 does)
  if (v.name === ANON_HUGEPAGE && v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED) && !(v.status & VMA.AREA_MEMFD)) {
    throw new CrtoolsError('UNSUPPORTED_VMA', `${where} ${v.name}: memory on huge pages of a size kerndat found no hugetlb device for is not supported`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
  }
  const what = v.status & VMA.AREA_SYSVIPC ? 'SysV IPC shared memory'
    : v.status & VMA.ANON_SHARED ? 'shared anonymous memory of no known object'
    : v.status & VMA.AREA_MEMFD && !shmemObject ? 'a private mapping of shared anonymous memory'
    // a file mapping whose name is no path: the ring of an anonymous inode (io_uring, perf...)
    : v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED) && !v.name.startsWith('/') ? (v.name === 'anon_inode:[io_uring]' ? 'an io_uring ring' : 'a mapping of an anonymous inode')
    : undefined;
  if (what) throw new CrtoolsError('UNSUPPORTED_VMA', `${where} ${v.name || '(anonymous)'}: ${what} is not supported yet`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
  // a memfd off the shmem device and off every hugetlb device kerndat found (a huge page size it
  // did not probe): not carried (it would come back on another filesystem)
  if (memfd && !shmemObject && v.deleted && v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) {
    throw new CrtoolsError('UNSUPPORTED_VMA', `${where} of ${v.name}, a memfd on neither the shmem device nor a known hugetlb device, is not supported`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
  }
  return true;
}

/**
 * The areas of mm-PID.img that map a socket (a packet socket's rings) get the socket's file id
 * as shmid, once the task's descriptors `fds` have theirs (refused when the task does not hold
 * the socket, or it is not a packet socket).
 */
export function socketMappings(pid: number, mm: Entry, fds: readonly FdRecord[], files: FileTable, refusals: Refusals): void {
  for (const e of mm['vmas'] as Entry[]) {
    if (!(Number(e['status']) & VMA.AREA_SOCKET)) continue;
    const id = refusals.check(() => files.socketMapping(pid, fds, e['start'] as bigint, e['shmid'] as bigint));
    if (id !== undefined) e['shmid'] = BigInt(id);
  }
}

/**
 * mm-PID.img: VmaEntry list (file VMAs get file ids), auxv, mm bounds. Guard regions follow the
 * real areas as CRIU 4.2 writes them: an entry per range with status VMA_AREA_GUARD alone.
 */
export function mmEntry(
  pid: number, vmas: CriuVma[], stat: ProcStat, misc: { brk: bigint; dumpable: number; thpDisabled: boolean }, files: FileTable,
  guards: readonly { start: bigint; end: bigint }[] = [], refusals = new Refusals(),
  /** the SysV segments of the tree's own IPC namespace (id → the length of an attach); without it, SysV mappings are refused */
  sysvAttaches?: ReadonlyMap<number, bigint>,
  /** the tree's AIO rings so far (a ring two tasks map is refused) */
  aioRings = new AioRings(),
): Entry {
  const exe = statSync(`/proc/${pid}/exe`);
  const exeLink = readlinkSync(`/proc/${pid}/exe`);
  const exeDeleted = / \(deleted\)$/.test(exeLink);
  const exePath = exeLink.replace(/ \(deleted\)$/, '');
  // a program run from a memfd (fexecve): its exe would come back as an unlinked regular file
  // while its mappings are the memfd's; not carried yet
  if (exeDeleted && exePath.startsWith('/memfd:')) {
    throw new CrtoolsError('UNSUPPORTED_TASK_ATTRIBUTE', `task ${pid}: an executable run from a memfd (${exePath.slice(1)}) is not supported yet`, {
      context: { pid, attribute: 'exe' }, exitCode: ExitCode.UNSUPPORTED,
    });
  }
  const exeId = files.mappedFile(exePath, devString(exe.dev), BigInt(exe.ino), 0, pid, exeDeleted ? `/proc/${pid}/exe` : undefined);
  const out: Entry[] = [];
  const aios: Entry[] = [];
  for (const v of vmas) {
    // the shmem device's objects are classified MEMFD | FILE_SHARED/FILE_PRIVATE (as CRIU 4.2
    // does): shared anonymous memory (`/dev/zero (deleted)`; mapped private too, through a
    // descriptor opened on its /proc/PID/map_files link) and memfds; shared anonymous huge pages
    // (`/anon_hugepage (deleted)` on a hugetlb device) likewise, mapped shared only
    const memfd = v.name.startsWith('/memfd:');
    const anonShared = v.name === '/dev/zero' || (v.name === ANON_HUGEPAGE && (v.flags & MAP.HUGETLB) !== 0);
    const shmemObject = (v.status & VMA.AREA_MEMFD) !== 0 && ((v.status & VMA.FILE_SHARED) !== 0 ? anonShared || memfd : (memfd || v.name === '/dev/zero') && (v.status & VMA.FILE_PRIVATE) !== 0);
    if (!refusals.check(() => refuseVma(pid, v, memfd, shmemObject, sysvAttaches))) continue;
    const e: Entry = { start: v.start, end: v.end, pgoff: v.pgoff, shmid: 0n, prot: v.prot, flags: v.flags, status: v.status, fd: -1n };
    // a SysV attach names its segment by id (the inode of its file), as CRIU 4.2
    if (v.status & VMA.AREA_SYSVIPC) {
      e['shmid'] = v.shmid!;
      // its map_files link's mode, as CRIU 4.2 records it
      if (v.fdflags !== undefined) e['fdflags'] = v.fdflags;
    }
    // a packet socket's rings: the socket's inode for now, its file id once the task's
    // descriptors are dumped (socketMappings), as CRIU 4.2 names it
    else if (v.status & VMA.AREA_SOCKET) {
      e['shmid'] = v.ino;
      // its map_files link's mode, as CRIU 4.2 records it for every area with one
      e['fdflags'] = v.fdflags ?? 2;
    }
    else if (shmemObject) {
      const fdflags = v.fdflags ?? (v.status & VMA.FILE_SHARED && v.prot & 2 ? 2 : 0);
      e['shmid'] = BigInt(files.shmemMapping(pid, v.start, v.end, v.name, v.ino));
      e['fdflags'] = fdflags;
    } else if (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) {
      const fdflags = v.fdflags ?? (v.status & VMA.FILE_SHARED && v.prot & 2 ? 2 : 0);
      const via = v.deleted ? `/proc/${pid}/map_files/${v.start.toString(16)}-${v.end.toString(16)}` : undefined;
      e['shmid'] = BigInt(files.mappedFile(v.name, `${v.devMajor}:${v.devMinor}`, v.ino, fdflags, pid, via));
      e['fdflags'] = fdflags;
    }
    if (v.status & VMA.AREA_AIORING) {
      // as CRIU 4.2: the ring's open mode (read-write) beside it, and its aios entry
      e['fdflags'] = v.fdflags ?? 2;
      const ring = refusals.check(() => aioRings.entry(pid, v));
      if (ring) aios.push(ring);
    }
    // private anonymous huge pages: their map_files link's mode, as CRIU 4.2 records it
    if (v.status & VMA.ANON_PRIVATE && v.flags & MAP.HUGETLB && v.fdflags !== undefined) e['fdflags'] = v.fdflags;
    if (v.madv) e['madv'] = v.madv;
    out.push(e);
  }
  for (const g of guards) out.push({ start: g.start, end: g.end, pgoff: 0n, shmid: 0n, prot: 0, flags: 0, status: VMA.AREA_GUARD, fd: -1n });
  const coredumpFilter = readCoredumpFilter(pid);
  return {
    mm_start_code: stat.startcode, mm_end_code: stat.endcode, mm_start_data: stat.startData, mm_end_data: stat.endData,
    mm_start_stack: stat.startstack, mm_start_brk: stat.startBrk, mm_brk: misc.brk,
    mm_arg_start: stat.argStart, mm_arg_end: stat.argEnd, mm_env_start: stat.envStart, mm_env_end: stat.envEnd,
    exe_file_id: exeId,
    // CRIU keeps the vector without its AT_NULL terminator
    mm_saved_auxv: auxvWords(readAuxv(pid).filter((a) => a.type !== 0)),
    vmas: out,
    ...(aios.length ? { aios } : {}),
    dumpable: misc.dumpable,
    thp_disabled: misc.thpDisabled,
    // left out when it is the kernel's default (see COREDUMP_FILTER_DEFAULT)
    ...(coredumpFilter !== COREDUMP_FILTER_DEFAULT ? { coredump_filter: coredumpFilter } : {}),
  };
}
