import { listTasks, NO_SUCH_PROCESS, readStat, readStatus, readStatusValue, type ProcStatus } from '@crtools/procfs';
import { CrtoolsError, ExitCode, isCrtoolsError, isNativeSysError } from '@crtools/common';
import { check, native } from './load-native.js';
import { decodeWaitStatus, PTRACE_EVENT_STOP, type WaitStatus } from './wait-status.js';
import { decodeGpRegs, encodeGpRegs, GP_REGS_SIZE, type GpRegs } from './regs.js';
import { decodeXsave, NT_X86_XSTATE, type FpRegs } from './xsave.js';

export const SIGTRAP = 5;
export const SIGSTOP = 19;
export const DEFAULT_WAIT_MS = 5000;
/** ptrace option: seccomp (strict or filters) does not act on the tracee while we trace it (CAP_SYS_ADMIN) */
export const PTRACE_O_SUSPEND_SECCOMP = 1 << 21;
/** seccomp modes, /proc/PID/status "Seccomp:" */
export const SECCOMP_MODE = { DISABLED: 0, STRICT: 1, FILTER: 2 } as const;

/** A thread in a ptrace-stop under our control. */
export interface StoppedThread {
  tid: number;
  /** The stop we got after PTRACE_INTERRUPT (SIGSTOP in it means the task was group-stopped). */
  stop: WaitStatus;
  /** A signal that was being delivered when we stopped it: re-delivered on detach. */
  pendingSignal: number;
  /**
   * The thread's seccomp mode once stopped (SECCOMP_MODE); when not disabled, seccomp is
   * suspended for it while we trace it (PTRACE_O_SUSPEND_SECCOMP), so that calls run inside it
   * (the parasite's) are neither refused nor fatal.
   */
  seccompMode: number;
  /**
   * The thread's /proc status as read once it had stopped (read once, as CRIU's seize does):
   * its credentials and seccomp mode, which do not change while its process is stopped.
   */
  status: ProcStatus;
}

/** Wait for a ptrace-stop of tid; throws when the thread is gone or the wait times out. */
export function waitStop(tid: number, timeoutMs = DEFAULT_WAIT_MS): WaitStatus {
  const r = check(native().wait(tid, timeoutMs), 'waitpid', tid);
  if (r.pid === 0) {
    throw new CrtoolsError('PTRACE_TIMEOUT', `task ${tid} did not stop within ${timeoutMs} ms`, { context: { pid: tid } });
  }
  const st = decodeWaitStatus(r.status);
  if (!st.stopped) {
    const how = st.termSignal !== undefined ? `was killed by signal ${st.termSignal}` : `exited with code ${st.exitCode}`;
    throw new CrtoolsError('TASK_GONE', `task ${tid} ${how} during the dump`, { context: { pid: tid } });
  }
  return st;
}

/**
 * Collect the exit of a thread we trace that was killed: until the tracer has waited for it
 * a traced task stays a zombie nobody else can reap (a process that goes on after a dump, as
 * a library user's does, would keep it so). Stops seen on the way are passed over.
 */
export function reapKilled(tid: number, timeoutMs = DEFAULT_WAIT_MS): void {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) return;
    const r = native().wait(tid, left);
    if (isNativeSysError(r) || r.pid === 0) return; // ECHILD: already collected (or never ours); 0: timed out
    if (!decodeWaitStatus(r.status).stopped) return;
  }
}

/**
 * PTRACE_SEIZE + PTRACE_INTERRUPT one thread and wait for its stop.
 * When a signal-delivery-stop comes first, the signal is kept for detach and we wait
 * again for the interrupt's own stop.
 */
export function seizeThread(tid: number, timeoutMs = DEFAULT_WAIT_MS): StoppedThread {
  startSeize(tid);
  return finishSeize(tid, timeoutMs, tid);
}

/** PTRACE_SEIZE + PTRACE_INTERRUPT, not waiting for the stop (finishSeize does). */
function startSeize(tid: number): void {
  const n = native();
  const seized = n.seize(tid, 0);
  if (isNativeSysError(seized) && seized.errno === 1 /* EPERM */) refuseTraced(tid);
  check(seized, 'ptrace(PTRACE_SEIZE)', tid);
  const interrupted = n.interrupt(tid);
  if (isNativeSysError(interrupted)) {
    // seized but never stopped: the detach fails as well, and the thread is untraced when we exit
    n.detach(tid, 0);
    check(interrupted, 'ptrace(PTRACE_INTERRUPT)', tid);
  }
}

/**
 * The stop of a thread (of process pid) startSeize interrupted: a signal-delivery-stop that
 * comes first is passed over, its signal kept for the detach. On failure the thread is
 * detached (which needs it stopped: one that never stops is untraced only when we exit).
 */
function finishSeize(tid: number, timeoutMs: number, pid: number): StoppedThread {
  const n = native();
  try {
    let pendingSignal = 0;
    for (;;) {
      const st = waitStop(tid, timeoutMs);
      if (st.event === PTRACE_EVENT_STOP) {
        const status = readStatus(threadOf(pid, tid));
        return { tid, stop: st, pendingSignal, seccompMode: suspendSeccomp(tid, status), status };
      }
      // a signal-delivery-stop: remember the signal, suppress it for now, let the interrupt trap arrive
      if (st.stopSignal !== SIGTRAP) pendingSignal = st.stopSignal;
      check(n.cont(tid, 0), 'ptrace(PTRACE_CONT)', tid);
    }
  } catch (e) {
    n.detach(tid, 0);
    throw e;
  }
}

/**
 * A thread another process traces (a debugger, strace) cannot be seized: say so by name, with
 * its tracer, rather than as a bare EPERM (which stays for the other causes: no rights over it).
 */
function refuseTraced(tid: number): void {
  const tracer = Number(readStatusValue(tid, 'TracerPid') ?? 0);
  if (!tracer) return;
  let name = '';
  try {
    name = ` (${readStatusValue(tracer, 'Name')})`;
  } catch {
    // gone meanwhile: the pid alone
  }
  throw new CrtoolsError('TASK_TRACED', `task ${tid} is traced by process ${tracer}${name}: a task under another tracer cannot be dumped`, { exitCode: ExitCode.UNSUPPORTED, context: { pid: tid } });
}

/**
 * A stopped thread's seccomp mode (it cannot change while stopped), from its status; when not
 * disabled, seccomp is suspended for it until we detach, as compel does.
 */
function suspendSeccomp(tid: number, status: ProcStatus): number {
  const mode = status.Seccomp ?? SECCOMP_MODE.DISABLED;
  if (mode !== SECCOMP_MODE.DISABLED) check(native().setOptions(tid, PTRACE_O_SUSPEND_SECCOMP), 'ptrace(PTRACE_SETOPTIONS)', tid);
  return mode;
}

/** One seccomp filter of a thread: its classic BPF program (sock_filter[]) and flags. */
export interface SeccompFilter {
  /** the instructions, 8 bytes each, as the kernel holds them */
  filter: Buffer;
  /** SECCOMP_FILTER_FLAG_* the kernel reports for it (LOG), 0 when it cannot tell */
  flags: number;
}

/** BPF_MAXINSNS: no filter is longer */
const BPF_MAXINSNS = 4096;

/**
 * A stopped thread's seccomp filters, oldest first (the order they were installed in), with
 * PTRACE_SECCOMP_GET_FILTER and PTRACE_SECCOMP_GET_METADATA (flags: 0 on a kernel without it).
 */
export function getSeccompFilters(tid: number): SeccompFilter[] {
  const n = native();
  const buf = Buffer.alloc(BPF_MAXINSNS * 8);
  const out: SeccompFilter[] = [];
  let withMeta = true;
  for (let i = 0; ; i++) {
    const r = n.seccompFilter(tid, i, buf);
    if (isNativeSysError(r) && r.errno === 2 /* ENOENT: past the newest */) return out;
    const len = check(r, 'ptrace(PTRACE_SECCOMP_GET_FILTER)', tid);
    let flags = 0;
    if (withMeta) {
      const m = n.seccompMetadata(tid, i);
      if (isNativeSysError(m) && m.errno === 5 /* EIO: unknown request */) withMeta = false;
      else flags = check(m, 'ptrace(PTRACE_SECCOMP_GET_METADATA)', tid);
    }
    out.push({ filter: Buffer.from(buf.subarray(0, len * 8)), flags });
  }
}

/**
 * A thread's own /proc directory (/proc/PID/task/TID): /proc/TID/stat of a thread speaks for
 * its whole process (its times summed over every thread: a read costs as many threads as the
 * process has), the task's own file for the thread alone.
 */
const threadOf = (pid: number, tid: number) => ({ pid, tid });

/** PF_IO_WORKER (include/linux/sched.h), in /proc/PID/task/TID/stat's flags */
const PF_IO_WORKER = 0x10;

/**
 * An io_uring worker of the process (iou-wrk-*, iou-sqp-*): a thread of the kernel's that
 * /proc lists among the process's own, with no user space of its own to run. It is no thread
 * of the program: not seized (it would take the interrupt's stop, then run none of the
 * parasite's code), not dumped. The io_uring instance it serves is the task's descriptor or
 * ring mapping, which the dump refuses by name.
 */
function isIoWorker(pid: number, tid: number): boolean {
  try {
    return (readStat(threadOf(pid, tid)).flags & PF_IO_WORKER) !== 0;
  } catch {
    return false; // gone: the seize says so
  }
}

/** Thread ids of a process (/proc/PID/task, through @crtools/procfs), ascending, io_uring's workers left out. */
export function listThreads(pid: number): number[] {
  return taskIds(pid).filter((t) => t === pid || !isIoWorker(pid, t));
}

/** /proc/PID/task, ascending, io_uring's workers included; a process that is not there said by pid. */
function taskIds(pid: number): number[] {
  try {
    return listTasks(pid);
  } catch (e) {
    if (isCrtoolsError(e) && e.code === NO_SUCH_PROCESS) {
      throw new CrtoolsError('NO_SUCH_TASK', `no process with pid ${pid}`, { context: { pid }, exitCode: ExitCode.FAILED, cause: e });
    }
    throw e;
  }
}

/**
 * Seize every thread of a process, rescanning /proc/PID/task until no new thread appears
 * (threads created meanwhile are caught by the next scan). Each scan's new threads are all
 * seized and interrupted first, then their stops awaited: they stop side by side instead of
 * one after another (a process of 1,000 threads: ~0.1 ms each). Only new threads are looked
 * at for io_uring's workers (which are left alone). On failure, everything seized is detached
 * again.
 */
export function seizeProcess(pid: number, timeoutMs = DEFAULT_WAIT_MS): StoppedThread[] {
  const seized = new Map<number, StoppedThread>();
  const ioWorkers = new Set<number>();
  /** seized and interrupted, the stop not yet awaited */
  let started: number[] = [];
  try {
    for (let round = 0; round < 64; round++) {
      const fresh: number[] = [];
      for (const t of taskIds(pid)) {
        if (seized.has(t) || ioWorkers.has(t)) continue;
        if (t !== pid && isIoWorker(pid, t)) ioWorkers.add(t);
        else fresh.push(t);
      }
      if (fresh.length === 0 && round > 0) break;
      for (const t of fresh) {
        try {
          startSeize(t);
          started.push(t);
        } catch (e) {
          // a thread that exited between the scan and the seize is not an error
          if ((e as NodeJS.ErrnoException).code === 'ESRCH' && t !== pid) continue;
          throw e;
        }
      }
      const waiting = started;
      started = [];
      for (let i = 0; i < waiting.length; i++) {
        try {
          seized.set(waiting[i]!, finishSeize(waiting[i]!, timeoutMs, pid));
        } catch (e) {
          started = waiting.slice(i + 1);
          throw e;
        }
      }
    }
    const main = seized.get(pid);
    if (!main) throw new CrtoolsError('NO_SUCH_TASK', `no process with pid ${pid}`, { context: { pid } });
    return [main, ...[...seized.values()].filter((t) => t.tid !== pid)];
  } catch (e) {
    for (const t of seized.values()) detachThread(t);
    // interrupted, not yet awaited: their stop is near (the interrupt is queued), then the detach
    for (const t of started) {
      try {
        detachThread(finishSeize(t, Math.min(timeoutMs, 1000), pid));
      } catch {
        // (finishSeize detached it, or it is gone)
      }
    }
    throw e;
  }
}

/** Detach, re-delivering a signal we intercepted while seizing. Never throws (a thread gone meanwhile is detached anyway). */
export function detachThread(t: StoppedThread): void {
  native().detach(t.tid, t.pendingSignal);
}

export function getGpRegs(tid: number): { regs: GpRegs; raw: Buffer } {
  const raw = Buffer.alloc(GP_REGS_SIZE);
  check(native().getRegs(tid, raw), 'ptrace(PTRACE_GETREGS)', tid);
  return { regs: decodeGpRegs(raw), raw };
}

export function setGpRegs(tid: number, regs: GpRegs | Buffer): void {
  const raw = Buffer.isBuffer(regs) ? regs : encodeGpRegs(regs);
  check(native().setRegs(tid, raw), 'ptrace(PTRACE_SETREGS)', tid);
}

/** The whole XSAVE area (every component this CPU has), decoded, plus the raw bytes. */
export function getFpRegs(tid: number): { fpregs: FpRegs; raw: Buffer } {
  const buf = Buffer.alloc(16384);
  const len = check(native().getRegset(tid, NT_X86_XSTATE, buf), 'ptrace(PTRACE_GETREGSET)', tid);
  // (a copy of the area's own length: a view would hold all 16 KiB per thread until the dump ends)
  const raw = Buffer.from(buf.subarray(0, len));
  return { fpregs: decodeXsave(raw, len), raw };
}

export function getSigmask(tid: number): bigint {
  return check(native().getSigmask(tid), 'ptrace(PTRACE_GETSIGMASK)', tid);
}

export function setSigmask(tid: number, mask: bigint): void {
  check(native().setSigmask(tid, mask), 'ptrace(PTRACE_SETSIGMASK)', tid);
}

/** Pending signals as raw 128-byte siginfo records (per-thread, or the shared queue). */
export function peekSiginfo(tid: number, shared: boolean): Buffer[] {
  const out: Buffer[] = [];
  const buf = Buffer.alloc(128 * 32);
  for (;;) {
    const n = check(native().peekSiginfo(tid, shared, out.length, buf), 'ptrace(PTRACE_PEEKSIGINFO)', tid);
    for (let i = 0; i < n; i++) out.push(Buffer.from(buf.subarray(i * 128, (i + 1) * 128)));
    if (n < 32) return out;
  }
}

export interface RseqConfig {
  rseq_abi_pointer: bigint;
  rseq_abi_size: number;
  signature: number;
  flags: number;
}

/** PTRACE_GET_RSEQ_CONFIGURATION; undefined when the kernel lacks it. */
export function getRseqConfig(tid: number): RseqConfig | undefined {
  const buf = Buffer.alloc(32);
  const r = native().rseqConfig(tid, buf);
  if (isNativeSysError(r) && (r.errno === 5 /* EIO: unknown request */ || r.errno === 22)) return undefined;
  check(r, 'ptrace(PTRACE_GET_RSEQ_CONFIGURATION)', tid);
  return {
    rseq_abi_pointer: buf.readBigUInt64LE(0),
    rseq_abi_size: buf.readUInt32LE(8),
    signature: buf.readUInt32LE(12),
    flags: buf.readUInt32LE(16),
  };
}

/** process_vm_readv into buf[offset, offset+length); returns bytes read. */
export function readMemory(pid: number, addr: bigint, buf: Buffer, offset = 0, length = buf.length - offset): number {
  return check(native().vmRead(pid, addr, buf, offset, length), 'process_vm_readv', pid);
}

export function writeMemory(pid: number, addr: bigint, buf: Buffer, offset = 0, length = buf.length - offset): number {
  return check(native().vmWrite(pid, addr, buf, offset, length), 'process_vm_writev', pid);
}

export function peekWord(tid: number, addr: bigint): bigint {
  return check(native().peek(tid, addr), 'ptrace(PTRACE_PEEKDATA)', tid);
}

export function pokeWord(tid: number, addr: bigint, word: bigint): void {
  check(native().poke(tid, addr, BigInt.asUintN(64, word)), 'ptrace(PTRACE_POKEDATA)', tid);
}

/** One TLS descriptor (struct user_desc), with CRIU's user_desc_t field names. */
export interface TlsDesc {
  entry_number: number;
  base_addr: number;
  limit: number;
  seg_32bit: boolean;
  contents_h: boolean;
  contents_l: boolean;
  read_exec_only: boolean;
  limit_in_pages: boolean;
  seg_not_present: boolean;
  usable: boolean;
}

/** The three TLS GDT entries (12, 13, 14) of a thread. */
export function getTls(tid: number): TlsDesc[] {
  const out: TlsDesc[] = [];
  for (let idx = 12; idx <= 14; idx++) {
    const b = Buffer.alloc(16);
    check(native().getThreadArea(tid, idx, b), 'ptrace(PTRACE_GET_THREAD_AREA)', tid);
    const bits = b.readUInt32LE(12);
    out.push({
      entry_number: b.readUInt32LE(0),
      base_addr: b.readUInt32LE(4),
      limit: b.readUInt32LE(8),
      seg_32bit: (bits & 1) !== 0,
      contents_h: (bits & 4) !== 0,
      contents_l: (bits & 2) !== 0,
      read_exec_only: (bits & 8) !== 0,
      limit_in_pages: (bits & 16) !== 0,
      seg_not_present: (bits & 32) !== 0,
      usable: (bits & 64) !== 0,
    });
  }
  return out;
}
