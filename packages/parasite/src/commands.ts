import { CrtoolsError } from '@crtools/common';
import { PARASITE_CMD, PARASITE_STRUCTS } from './gen-abi.js';
import { FIRST_BATCH_BYTES, initCommandArgs, initPending, initRan, runBlobCommand, runFirstBatch, type Infection } from './remote.js';

type StructName = keyof typeof PARASITE_STRUCTS;

/** Read field `name` (element `i` of arrays) of struct `s` at byte `base` of buf, by the generated layout. */
function field(buf: Buffer, s: StructName, name: string, base = 0, i = 0): bigint {
  const f = (PARASITE_STRUCTS[s].fields as Record<string, { offset: number; type: string; size: number }>)[name];
  if (!f) throw new Error(`parasite ABI: no field ${s}.${name}`);
  const at = base + f.offset + i * f.size;
  switch (f.type) {
    case 'u64': return buf.readBigUInt64LE(at);
    case 'i64': return buf.readBigInt64LE(at);
    case 'u32': return BigInt(buf.readUInt32LE(at));
    case 'i32': return BigInt(buf.readInt32LE(at));
    default: throw new Error(`parasite ABI: ${s}.${name} is a struct`);
  }
}

function offsetOf(s: StructName, name: string): number {
  return (PARASITE_STRUCTS[s].fields as Record<string, { offset: number }>)[name]!.offset;
}

type CommandName = keyof typeof PARASITE_CMD;

function failed(tid: number, cmd: CommandName, r: bigint): CrtoolsError {
  return new CrtoolsError('PARASITE_COMMAND', `task ${tid}: parasite command ${cmd} failed (errno ${-r})`, { context: { pid: tid } });
}

function run(inf: Infection, tid: number, cmd: CommandName, args: Buffer): Buffer {
  const r = runBlobCommand(inf, tid, PARASITE_CMD[cmd], args);
  if (r < 0n) throw failed(tid, cmd, r);
  return args;
}

/** One command of a batch: its arguments, and what its results say once it ran. */
export interface Command<T> {
  cmd: CommandName;
  args: Buffer;
  decode(args: Buffer): T;
}

const B = PARASITE_STRUCTS.batch_args;
const BC = PARASITE_STRUCTS.batch_call;
const BATCH_MAX = B.fields.call.count;

/**
 * Run commands in thread tid in one run of the blob (BATCH: one stop of the task for all of
 * them, not one each), in order; each one's results decoded. The first that failed is thrown
 * (the others ran: none of them changes the task). The first commands of a lazy infection in
 * its main thread take INIT into their batch (one stop fewer).
 */
export function runCommands<T extends unknown[]>(inf: Infection, tid: number, given: { [K in keyof T]: Command<T[K]> }): T {
  // (the first batch lies in the area's private data, below the blob's stack: at most half of it)
  const bytes = given.reduce((n, c) => n + c.args.length + 8, B.size + PARASITE_STRUCTS.init_args.size + 8);
  const withInit = tid === inf.pid && initPending(inf) && given.length < BATCH_MAX && bytes <= FIRST_BATCH_BYTES;
  if (given.length === 1 && !withInit) {
    const c = given[0]!;
    return [c.decode(run(inf, tid, c.cmd, c.args))] as T;
  }
  const cmds: Command<unknown>[] = withInit ? [{ cmd: 'INIT', args: initCommandArgs(inf), decode: () => undefined }, ...given] : [...given];
  if (cmds.length > BATCH_MAX) throw new RangeError(`at most ${BATCH_MAX} parasite commands in one batch`);
  const offs: number[] = [];
  let end: number = B.size;
  for (const c of cmds) {
    end = (end + 7) & ~7;
    offs.push(end);
    end += c.args.length;
  }
  const buf = Buffer.alloc(end);
  buf.writeUInt32LE(cmds.length, B.fields.nr.offset);
  cmds.forEach((c, i) => {
    const at = B.fields.call.offset + i * BC.size;
    buf.writeUInt32LE(PARASITE_CMD[c.cmd], at + BC.fields.cmd.offset);
    buf.writeUInt32LE(offs[i]!, at + BC.fields.off.offset);
    c.args.copy(buf, offs[i]!);
  });
  const ret = (i: number) => buf.readBigInt64LE(B.fields.call.offset + i * BC.size + BC.fields.ret.offset);
  if (withInit) {
    runFirstBatch(inf, buf);
    initRan(inf, ret(0), buf.subarray(offs[0]!, offs[0]! + cmds[0]!.args.length));
  } else run(inf, tid, 'BATCH', buf);
  return cmds.slice(withInit ? 1 : 0).map((c, j) => {
    const i = withInit ? j + 1 : j;
    const r = ret(i);
    if (r < 0n) throw failed(tid, c.cmd, r);
    return c.decode(buf.subarray(offs[i]!, offs[i]! + c.args.length));
  }) as T;
}

/** One signal's disposition as the kernel reports it (struct kernel_sigaction). */
export interface SigactionState {
  sig: number;
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

/** rt_sigaction(sig, NULL, &old) for signals 1..64 but SIGKILL and SIGSTOP (CRIU's order). */
export function dumpSigactions(inf: Infection): SigactionState[] {
  return runCommands(inf, inf.pid, [sigactionsCommand()])[0];
}

export function sigactionsCommand(): Command<SigactionState[]> {
  return { cmd: 'SIGACTIONS', args: Buffer.alloc(PARASITE_STRUCTS.sigactions_args.size), decode: decodeSigactions };
}

function decodeSigactions(b: Buffer): SigactionState[] {
  const nr = Number(field(b, 'sigactions_args', 'nr'));
  const base = offsetOf('sigactions_args', 'sa');
  const size = PARASITE_STRUCTS.sigaction.size;
  const out: SigactionState[] = [];
  let sig = 1;
  for (let i = 0; i < nr; i++, sig++) {
    if (sig === 9 || sig === 19) sig++;
    const at = base + i * size;
    out.push({
      sig,
      handler: field(b, 'sigaction', 'handler', at),
      flags: field(b, 'sigaction', 'flags', at),
      restorer: field(b, 'sigaction', 'restorer', at),
      mask: field(b, 'sigaction', 'mask', at),
    });
  }
  return out;
}

export interface ItimerState {
  isec: bigint;
  iusec: bigint;
  vsec: bigint;
  vusec: bigint;
}

/** getitimer for ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
export function dumpItimers(inf: Infection): { real: ItimerState; virt: ItimerState; prof: ItimerState } {
  return runCommands(inf, inf.pid, [itimersCommand()])[0];
}

export function itimersCommand(): Command<{ real: ItimerState; virt: ItimerState; prof: ItimerState }> {
  return { cmd: 'ITIMERS', args: Buffer.alloc(PARASITE_STRUCTS.itimers_args.size), decode: decodeItimers };
}

function decodeItimers(b: Buffer): { real: ItimerState; virt: ItimerState; prof: ItimerState } {
  const one = (w: number): ItimerState => {
    const at = offsetOf('itimers_args', 't') + w * PARASITE_STRUCTS.itimer.size;
    return {
      isec: field(b, 'itimer', 'isec', at),
      iusec: field(b, 'itimer', 'iusec', at),
      vsec: field(b, 'itimer', 'vsec', at),
      vusec: field(b, 'itimer', 'vusec', at),
    };
  };
  return { real: one(0), virt: one(1), prof: one(2) };
}

export interface PosixTimerValue {
  id: number;
  isec: bigint;
  insec: bigint;
  vsec: bigint;
  vnsec: bigint;
  overrun: number;
}

/** timer_gettime and timer_getoverrun for the given timer ids (at most 256). */
export function dumpPosixTimers(inf: Infection, ids: number[]): PosixTimerValue[] {
  if (ids.length === 0) return [];
  return runCommands(inf, inf.pid, [posixTimersCommand(inf.pid, ids)])[0];
}

/** (`pid` names the task in the refusal of more than 256 timers) */
export function posixTimersCommand(pid: number, ids: number[]): Command<PosixTimerValue[]> {
  if (ids.length > 256) throw new CrtoolsError('UNSUPPORTED_TIMERS', `task ${pid}: more than 256 POSIX timers`, { context: { pid } });
  // (only as long as the timers asked: the command reads nr of them)
  const base = offsetOf('posix_timers_args', 't');
  const size = PARASITE_STRUCTS.posix_timer.size;
  const b = Buffer.alloc(base + ids.length * size);
  b.writeUInt32LE(ids.length, offsetOf('posix_timers_args', 'nr'));
  ids.forEach((id, i) => b.writeInt32LE(id, base + i * size + offsetOf('posix_timer', 'id')));
  return { cmd: 'POSIX_TIMERS', args: b, decode: (out) => decodePosixTimers(out, ids) };
}

function decodePosixTimers(b: Buffer, ids: number[]): PosixTimerValue[] {
  const base = offsetOf('posix_timers_args', 't');
  const size = PARASITE_STRUCTS.posix_timer.size;
  return ids.map((id, i) => {
    const at = base + i * size;
    return {
      id,
      isec: field(b, 'posix_timer', 'isec', at),
      insec: field(b, 'posix_timer', 'insec', at),
      vsec: field(b, 'posix_timer', 'vsec', at),
      vnsec: field(b, 'posix_timer', 'vnsec', at),
      overrun: Number(field(b, 'posix_timer', 'overrun', at)),
    };
  });
}

/** Process-wide values only prctl() and friends tell. */
export interface MiscState {
  securebits: number;
  dumpable: number;
  pdeathsig: number;
  childSubreaper: boolean;
  noNewPrivs: boolean;
  timerslack: bigint;
  personality: number;
  /** Current program break (brk(0)). */
  brk: bigint;
  thpDisabled: boolean;
  /** membarrier registrations (MEMBARRIER_CMD_GET_REGISTRATIONS bits), or a negative errno where the kernel cannot tell */
  membarrier: number;
}

export function dumpMisc(inf: Infection): MiscState {
  return runCommands(inf, inf.pid, [miscCommand()])[0];
}

export function miscCommand(): Command<MiscState> {
  return { cmd: 'MISC', args: Buffer.alloc(PARASITE_STRUCTS.misc_args.size), decode: decodeMisc };
}

function decodeMisc(b: Buffer): MiscState {
  const f = (n: string) => field(b, 'misc_args', n);
  return {
    securebits: Number(f('securebits')),
    dumpable: Number(f('dumpable')),
    pdeathsig: Number(f('pdeathsig')),
    childSubreaper: f('child_subreaper') !== 0n,
    noNewPrivs: f('no_new_privs') > 0n,
    timerslack: f('timerslack'),
    personality: Number(f('personality')),
    brk: f('brk'),
    thpDisabled: f('thp_disabled') > 0n,
    membarrier: Number(f('membarrier')),
  };
}

/** What only the thread itself can tell. */
export interface ThreadMiscState {
  tid: number;
  clearTidAddr: bigint;
  sas: { ss_sp: bigint; ss_flags: number; ss_size: bigint };
  robustList: { head: bigint; len: bigint };
  /** sched_getscheduler(): the policy with SCHED_RESET_ON_FORK (0x40000000), or a negative errno */
  schedPolicy: number;
  /** the thread's nice value (-20..19), as /proc's stat has it */
  nice: number;
  /** its real-time priority (sched_getparam: 0 under a policy that is not real-time) */
  rtPriority: number;
  /** its name (PR_GET_NAME), as /proc's stat has it */
  comm: string;
}

export function dumpThreadMisc(inf: Infection, tid: number): ThreadMiscState {
  return runCommands(inf, tid, [threadMiscCommand(tid)])[0];
}

/** (run in thread `tid` itself: what it tells is the calling thread's) */
export function threadMiscCommand(tid: number): Command<ThreadMiscState> {
  return { cmd: 'THREAD', args: Buffer.alloc(PARASITE_STRUCTS.thread_args.size), decode: (b) => decodeThreadMisc(b, tid) };
}

function decodeThreadMisc(b: Buffer, tid: number): ThreadMiscState {
  const f = (n: string) => field(b, 'thread_args', n);
  return {
    tid,
    clearTidAddr: f('clear_tid_addr'),
    sas: { ss_sp: f('ss_sp'), ss_flags: Number(f('ss_flags')), ss_size: f('ss_size') },
    robustList: { head: f('robust_head'), len: f('robust_len') },
    schedPolicy: Number(f('sched_policy')),
    nice: Number(f('nice')),
    rtPriority: Number(f('rt_prio')),
    comm: cString(b, PARASITE_STRUCTS.thread_args.fields.comm),
  };
}

/** A NUL-terminated name in a field of `count` words (PR_GET_NAME's 16 bytes), as text the way /proc prints it decoded. */
function cString(b: Buffer, f: { offset: number; size: number; count: number }): string {
  const bytes = b.subarray(f.offset, f.offset + f.size * f.count);
  const nul = bytes.indexOf(0);
  return bytes.subarray(0, nul < 0 ? bytes.length : nul).toString('utf8');
}
