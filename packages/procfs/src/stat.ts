import { parseError, type ParseOptions } from './errors.js';
import { readProcText, type ProcOptions, type Target } from './read.js';

/** /proc/PID/stat (proc(5) fields 1–52). Addresses, masks and sizes are bigint. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
  tpgid: number;
  flags: number;
  minflt: number;
  cminflt: number;
  majflt: number;
  cmajflt: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  priority: number;
  nice: number;
  numThreads: number;
  itrealvalue: number;
  starttime: bigint;
  vsize: bigint;
  rss: number;
  rsslim: bigint;
  startcode: bigint;
  endcode: bigint;
  startstack: bigint;
  kstkesp: bigint;
  kstkeip: bigint;
  signal: bigint;
  blocked: bigint;
  sigignore: bigint;
  sigcatch: bigint;
  wchan: bigint;
  nswap: number;
  cnswap: number;
  exitSignal: number;
  processor: number;
  rtPriority: number;
  policy: number;
  delayacctBlkioTicks: bigint;
  guestTime: number;
  cguestTime: number;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
  exitCode: number;
}

/** Field names from field 3 (state) on, and whether each is a 64-bit value. */
const FIELDS: [keyof ProcStat, boolean][] = [
  ['state', false], ['ppid', false], ['pgrp', false], ['session', false], ['ttyNr', false], ['tpgid', false],
  ['flags', false], ['minflt', false], ['cminflt', false], ['majflt', false], ['cmajflt', false], ['utime', false],
  ['stime', false], ['cutime', false], ['cstime', false], ['priority', false], ['nice', false], ['numThreads', false],
  ['itrealvalue', false], ['starttime', true], ['vsize', true], ['rss', false], ['rsslim', true], ['startcode', true],
  ['endcode', true], ['startstack', true], ['kstkesp', true], ['kstkeip', true], ['signal', true], ['blocked', true],
  ['sigignore', true], ['sigcatch', true], ['wchan', true], ['nswap', false], ['cnswap', false], ['exitSignal', false],
  ['processor', false], ['rtPriority', false], ['policy', false], ['delayacctBlkioTicks', true], ['guestTime', false],
  ['cguestTime', false], ['startData', true], ['endData', true], ['startBrk', true], ['argStart', true], ['argEnd', true],
  ['envStart', true], ['envEnd', true], ['exitCode', false],
];

/** A ProcStat's keys in their order, each with a value of its kind (parseStat copies it). */
const STAT_SHAPE: Record<string, unknown> = Object.fromEntries([['pid', 0], ['comm', ''], ...FIELDS.map(([name, wide]) => [name, name === 'state' ? '' : wide ? 0n : 0])]);

/** Fields after comm that every kernel since 3.5 prints (CRIU requires them all). */
const MIN_FIELDS = FIELDS.length;

function splitStat(text: string, opts?: ParseOptions): { pid: string; comm: string; rest: string[] } {
  const line = text.endsWith('\n') ? text.slice(0, -1) : text;
  const open = line.indexOf(' (');
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const close = line.lastIndexOf(')');
  if (open <= 0 || close < open || line.indexOf('\n') >= 0) throw parseError(opts?.path, 1, 'expected "PID (comm) fields…"', line);
  const rest = line.slice(close + 1).trim();
  return { pid: line.slice(0, open), comm: line.slice(open + 2, close), rest: rest ? rest.split(' ') : [] };
}

/** Parse /proc/PID/stat. comm is taken between the first '(' and the last ')'. */
export function parseStat(text: string, opts?: ParseOptions): ProcStat {
  const { pid, comm, rest } = splitStat(text, opts);
  if (!/^\d+$/.test(pid)) throw parseError(opts?.path, 1, 'bad pid', text.trimEnd());
  if (rest.length < MIN_FIELDS) throw parseError(opts?.path, 1, `expected ${MIN_FIELDS} fields after comm, found ${rest.length}`, text.trimEnd());
  // (every field set on a copy of one object of the final shape: no shape built field by field)
  const out: Record<string, unknown> = { ...STAT_SHAPE, pid: Number(pid), comm };
  for (let i = 0; i < FIELDS.length; i++) {
    const [name, wide] = FIELDS[i]!;
    const v = rest[i]!;
    if (name === 'state') {
      if (v.length !== 1) throw parseError(opts?.path, 1, 'bad state', text.trimEnd());
      out.state = v;
      continue;
    }
    if (!/^-?\d+$/.test(v)) throw parseError(opts?.path, 1, `bad ${name}`, text.trimEnd());
    out[name] = !wide ? Number(v) : v.charCodeAt(0) === 45 /* - */ ? BigInt.asUintN(64, BigInt(v)) : BigInt(v);
  }
  return out as unknown as ProcStat;
}

/** The --raw view: pid, comm and the remaining fields as text, keyed by proc(5) field name. */
export function parseStatRaw(text: string, opts?: ParseOptions): Record<string, string> {
  const { pid, comm, rest } = splitStat(text, opts);
  const out: Record<string, string> = { pid, comm };
  rest.forEach((v, i) => {
    out[i < FIELDS.length ? FIELDS[i]![0] : `field${i + 3}`] = v;
  });
  return out;
}

export function readStat(target: Target, opts?: ProcOptions): ProcStat {
  const { path, text } = readProcText(target, 'stat', opts);
  return parseStat(text, { path });
}

/** Scheduling policy numbers (sched(7)). */
export const SCHED_POLICY: Record<number, string> = {
  0: 'SCHED_OTHER', 1: 'SCHED_FIFO', 2: 'SCHED_RR', 3: 'SCHED_BATCH', 5: 'SCHED_IDLE', 6: 'SCHED_DEADLINE', 7: 'SCHED_EXT',
};

export interface SchedInfo {
  policy: number;
  policyName: string;
  rtPriority: number;
  nice: number;
}

/** Scheduling policy, RT priority and nice value, from stat fields 41, 40 and 19. */
export function schedFromStat(s: ProcStat): SchedInfo {
  return { policy: s.policy, policyName: SCHED_POLICY[s.policy] ?? `SCHED_${s.policy}`, rtPriority: s.rtPriority, nice: s.nice };
}

export function readSched(target: Target, opts?: ProcOptions): SchedInfo {
  return schedFromStat(readStat(target, opts));
}
