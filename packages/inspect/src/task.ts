/**
 * What /proc shows of one task (thread-group leader) and of each of its threads: the values a
 * restore must give back. Counters of what happened (faults, CPU time, context switches) and
 * what the scheduler decides (state, processor) are left out here, not compared away later:
 * they describe the run, not the state. What does belong to the state but must change across a
 * restore is kept, and listed with its reason in compare.ts.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { parseLimits, parseStatRaw, parseStatusRaw, parseTimers } from '@crtools/procfs';

/** /proc/PID/status keys that are state (the rest: memory use and counters). */
// (SigQ is left out: it counts the signals queued for the whole real uid, not this task's)
const STATUS_KEYS = [
  'Name', 'Umask', 'Tgid', 'Pid', 'PPid', 'TracerPid', 'Uid', 'Gid', 'Groups', 'NStgid', 'NSpid', 'NSpgid', 'NSsid',
  'Kthread', 'VmLck', 'VmPin', 'Threads', 'SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm',
  'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters', 'Speculation_Store_Bypass',
  'SpeculationIndirectBranch', 'Cpus_allowed_list', 'Mems_allowed_list', 'THP_enabled', 'untag_mask',
  'x86_Thread_features', 'x86_Thread_features_locked', 'CoreDumping',
] as const;

/** /proc/PID/stat fields that are state (procfs' names). */
const STAT_KEYS = [
  'ppid', 'pgrp', 'session', 'ttyNr', 'tpgid', 'flags', 'priority', 'nice', 'numThreads', 'exitSignal', 'rtPriority', 'policy',
  'vsize', 'rsslim', 'startcode', 'endcode', 'startstack', 'startData', 'endData', 'startBrk', 'argStart', 'argEnd', 'envStart',
  'envEnd', 'starttime',
] as const;

/** per thread: what each thread has of its own */
// (NSpid: the thread's ids down to its innermost pid namespace, what insideView reads)
const THREAD_STATUS_KEYS = ['Name', 'NSpid', 'SigPnd', 'SigBlk', 'CapEff', 'CapPrm', 'CapInh', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters', 'Uid', 'Gid', 'Cpus_allowed_list', 'Speculation_Store_Bypass', 'x86_Thread_features'] as const;
const THREAD_STAT_KEYS = ['priority', 'nice', 'rtPriority', 'policy', 'exitSignal'] as const;

export interface ThreadPrint {
  tid: number;
  status: Record<string, string>;
  stat: Record<string, string>;
}

export interface TaskPrint {
  pid: number;
  comm: string;
  exe: string | null;
  cwd: string | null;
  root: string | null;
  cmdline: string;
  status: Record<string, string>;
  stat: Record<string, string>;
  /** /proc/PID/limits, one line per resource: "soft hard" */
  limits: Record<string, string>;
  cgroup: string;
  loginuid: string;
  sessionid: string;
  personality: string;
  timerslack_ns: string;
  oom_score_adj: string;
  coredump_filter: string;
  /** /proc/PID/attr/current: the LSM label */
  lsm: string;
  /** /proc/PID/ns/*: the namespaces, by link */
  ns: Record<string, string>;
  /** /proc/PID/timers: POSIX timers (id, signal, notify, clock) */
  timers: string[];
  /** /proc/PID/auxv as hex */
  auxv: string;
  /**
   * the owner of /proc/PID's files (status), "UID:GID": the task's effective ids while it is
   * dumpable, root's when it is not (PR_SET_DUMPABLE; a change of ids clears it), which decides
   * who may read them and trace it (/proc/PID itself always shows the effective ids)
   */
  procOwner: string;
  threads: ThreadPrint[];
}

function text(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function link(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

function ownerOf(path: string): string {
  try {
    const st = statSync(path);
    return `${st.uid}:${st.gid}`;
  } catch {
    return '';
  }
}

function pick<K extends string>(all: Record<string, string>, keys: readonly K[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (all[k] !== undefined) out[k] = all[k]!;
  return out;
}

/** /proc/PID/limits (procfs' parser) as { resource: "SOFT HARD" }. */
export function limitsOf(text: string): Record<string, string> {
  return Object.fromEntries(parseLimits(text).map((l) => [l.name, `${l.soft} ${l.hard}`]));
}

/** /proc/PID/timers (procfs' parser): one line per timer, as the kernel words it. */
export function timersOf(text: string): string[] {
  return parseTimers(text).map(
    (t) => `ID: ${t.id} signal: ${t.signo}/${t.sigval.toString(16).padStart(16, '0')} notify: ${t.notify}/${t.notifyTarget}.${t.notifyId} ClockID: ${t.clockId}`,
  );
}

export function threadPrint(pid: number, tid: number): ThreadPrint {
  const base = `/proc/${pid}/task/${tid}`;
  return {
    tid,
    status: pick(parseStatusRaw(text(`${base}/status`)), THREAD_STATUS_KEYS),
    stat: pick(parseStatRaw(text(`${base}/stat`)), THREAD_STAT_KEYS),
  };
}

/** What a zombie keeps of its stat: its place in the tree and its exit code (all CRIU keeps of one). */
const ZOMBIE_STAT_KEYS = ['ppid', 'pgrp', 'session', 'exitCode'] as const;

export function taskPrint(pid: number, tids: number[]): TaskPrint {
  const base = `/proc/${pid}`;
  const statRaw = parseStatRaw(text(`${base}/stat`));
  if (statRaw['state'] === 'Z') {
    // a zombie is an exit status: its masks, limits and the rest died with it (the kernel
    // shows leftovers of its last moments, which no dump can read and no program can see)
    return {
      pid, comm: statRaw['comm'] ?? '', exe: null, cwd: null, root: null, cmdline: '', status: { State: 'Z' }, stat: pick(statRaw, ZOMBIE_STAT_KEYS),
      limits: {}, cgroup: '', loginuid: '', sessionid: '', personality: '', timerslack_ns: '', oom_score_adj: '', coredump_filter: '', lsm: '', ns: {}, timers: [], auxv: '', procOwner: '', threads: [],
    };
  }
  const ns: Record<string, string> = {};
  for (const n of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts']) {
    const l = link(`${base}/ns/${n}`);
    if (l !== null) ns[n] = l;
  }
  let auxv = '';
  try {
    auxv = readFileSync(`${base}/auxv`).toString('hex');
  } catch {
    /* gone or a kernel thread */
  }
  return {
    pid,
    comm: statRaw['comm'] ?? '',
    exe: link(`${base}/exe`),
    cwd: link(`${base}/cwd`),
    root: link(`${base}/root`),
    cmdline: text(`${base}/cmdline`).split('\0').join(' ').trimEnd(),
    status: pick(parseStatusRaw(text(`${base}/status`)), STATUS_KEYS),
    stat: pick(statRaw, STAT_KEYS),
    limits: limitsOf(text(`${base}/limits`)),
    cgroup: text(`${base}/cgroup`).trim(),
    loginuid: text(`${base}/loginuid`).trim(),
    sessionid: text(`${base}/sessionid`).trim(),
    personality: text(`${base}/personality`).trim(),
    timerslack_ns: text(`${base}/timerslack_ns`).trim(),
    oom_score_adj: text(`${base}/oom_score_adj`).trim(),
    coredump_filter: text(`${base}/coredump_filter`).trim(),
    lsm: text(`${base}/attr/current`).replace(/\0/g, '').trim(),
    ns,
    timers: timersOf(text(`${base}/timers`)),
    auxv,
    procOwner: ownerOf(`${base}/status`),
    threads: tids.map((tid) => threadPrint(pid, tid)),
  };
}
