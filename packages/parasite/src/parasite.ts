import { detachThread, getSeccompFilters, getTls, SECCOMP_MODE, type SeccompFilter, type TlsDesc, getFpRegs, getSigmask, peekSiginfo, seizeProcess, SIGTRAP, type RseqConfig, type StoppedThread } from './ptrace.js';
import { cure, infect, prepare, type CodeArea, type Infection } from './remote.js';
import {
  dumpThreadMisc, itimersCommand, miscCommand, posixTimersCommand, runCommands, sigactionsCommand, threadMiscCommand,
  type ItimerState, type MiscState, type PosixTimerValue, type SigactionState, type ThreadMiscState,
} from './commands.js';
import type { ProcStatus } from '@crtools/procfs';
import { decodeGpRegs, type GpRegs } from './regs.js';
import type { FpRegs } from './xsave.js';

/** Everything ptrace and the parasite tell about one thread. */
export interface ThreadState {
  tid: number;
  regs: GpRegs;
  fpregs: FpRegs;
  sigmask: bigint;
  pendingSignals: Buffer[];
  rseq?: RseqConfig;
  /**
   * struct rseq's rseq_cs, kept when its critical section does not restart on signals (the
   * image's rseq_cs_pointer: the restore sets it again, the return from rseq() clears it)
   */
  rseqCs?: bigint;
  tls: TlsDesc[];
  misc: ThreadMiscState;
  /** seccomp mode (0 disabled, 1 strict, 2 filter) and, in filter mode, the chain oldest first */
  seccomp: { mode: number; filters: SeccompFilter[] };
  /** /proc/PID/task/TID/status as read when the thread was seized (StoppedThread.status) */
  status: ProcStatus;
}

/** Everything ptrace and the parasite tell about one process. */
export interface TaskState {
  pid: number;
  /**
   * The signal in the main thread's stop after PTRACE_INTERRUPT: SIGTRAP for a running task;
   * for one in group-stop, the signal that stopped it (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
   */
  interruptSignal: number;
  threads: ThreadState[];
  sharedPendingSignals: Buffer[];
  sigactions: SigactionState[];
  itimers: { real: ItimerState; virt: ItimerState; prof: ItimerState };
  posixTimers: PosixTimerValue[];
  misc: MiscState;
}

export interface CollectOptions {
  /** POSIX timer ids (from /proc/PID/timers) to read. */
  posixTimerIds?: number[];
}

/**
 * Collect a seized process's state: registers by ptrace, the rest by calls run inside it.
 * cure() runs on every path; the threads stay seized (the caller resumes or kills them).
 */
export function collectTaskState(pid: number, threads: StoppedThread[], opts: CollectOptions = {}): TaskState {
  const inf: Infection = prepare(pid, threads);
  let failure: unknown;
  try {
    infect(inf, true);
    return collectInfected(inf, opts);
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    const err = cure(inf);
    if (err && failure === undefined) throw err;
  }
}

/**
 * Infect a seized process, run `fn` with it (collectInfected, openPageTransfer...), cure on every
 * path. The threads stay seized. `codeAreas`: the task's readable executable mappings as the
 * caller has just read them (the tree stopped), where the bootstrap's `syscall` instruction is
 * looked for, instead of reading /proc/PID/maps again (a task of 60,000 areas: ~40 ms).
 */
export async function withInfection<T>(pid: number, threads: StoppedThread[], fn: (inf: Infection) => Promise<T> | T, opts: { codeAreas?: readonly CodeArea[] } = {}): Promise<T> {
  const inf: Infection = prepare(pid, threads, opts.codeAreas);
  let failure: unknown;
  try {
    // (INIT rides in the first batch of commands, or runs before whatever comes first)
    infect(inf, true);
    return await fn(inf);
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    const err = cure(inf);
    if (err && failure === undefined) throw err;
  }
}

/** Everything ptrace and the blob tell about an infected process. */
export function collectInfected(inf: Infection, opts: CollectOptions = {}): TaskState {
  const { pid, threads } = inf;
  const perThread = threads.map((t) => ({
    tid: t.tid,
    regs: decodeGpRegs(inf.saved.get(t.tid)!),
    fpregs: getFpRegs(t.tid).fpregs,
    // as seized: our traps ran with a mask of ours (remote.ts)
    sigmask: inf.masks.get(t.tid) ?? getSigmask(t.tid),
    pendingSignals: peekSiginfo(t.tid, false),
    rseq: inf.rseq.get(t.tid),
    tls: getTls(t.tid),
    seccomp: { mode: t.seccompMode, filters: t.seccompMode === SECCOMP_MODE.FILTER ? getSeccompFilters(t.tid) : [] },
    status: t.status,
  }));
  const shared = peekSiginfo(pid, true);
  // the process-wide commands and the main thread's own in one run of the blob (one stop);
  // every other thread's in that thread
  const timerIds = opts.posixTimerIds ?? [];
  const [actions, itimers, misc, mainMisc, posixTimers] = runCommands(inf, pid, [
    sigactionsCommand(), itimersCommand(), miscCommand(), threadMiscCommand(pid),
    ...(timerIds.length ? [posixTimersCommand(pid, timerIds)] : []),
  ] as const) as [SigactionState[], TaskState['itimers'], MiscState, ThreadMiscState, PosixTimerValue[] | undefined];
  const sigactions = withTrapAction(actions, inf.trapAction);
  const threadStates: ThreadState[] = perThread.map((t) => {
    const cs = inf.rseqCs.get(t.tid);
    return { ...t, ...(cs !== undefined ? { rseqCs: cs } : {}), misc: t.tid === pid ? mainMisc : dumpThreadMisc(inf, t.tid) };
  });
  return {
    pid,
    interruptSignal: threads[0]?.stop.stopSignal ?? 0,
    threads: threadStates,
    sharedPendingSignals: shared,
    sigactions,
    itimers,
    posixTimers: posixTimers ?? [],
    misc,
  };
}

/**
 * The actions as the parasite read them, but SIGTRAP's as it was before our first trap (a trap
 * resets an ignored SIGTRAP to the default; cure() ignores it again).
 */
function withTrapAction(actions: SigactionState[], trap: Buffer | undefined): SigactionState[] {
  if (!trap) return actions;
  return actions.map((a) => a.sig !== SIGTRAP ? a : {
    sig: a.sig, handler: trap.readBigUInt64LE(0), flags: trap.readBigUInt64LE(8), restorer: trap.readBigUInt64LE(16), mask: trap.readBigUInt64LE(24),
  });
}

/** Seize a process (all threads); detach with resumeProcess(). */
export function freezeProcess(pid: number, timeoutMs?: number): StoppedThread[] {
  return seizeProcess(pid, timeoutMs);
}

/** Detach every thread, letting it run on exactly as before. Never throws. */
export function resumeProcess(threads: StoppedThread[]): void {
  for (const t of threads) detachThread(t);
}
