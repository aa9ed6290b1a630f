import { CrtoolsError } from '@crtools/common';
import { call, dataAddr, NR, readData, type Infection } from './remote.js';

/** One signal's disposition as the kernel reports it (struct kernel_sigaction). */
export interface SigactionState {
  sig: number;
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

function ok(inf: Infection, what: string, r: bigint): bigint {
  if (r < 0n && r > -4096n) {
    const e = new CrtoolsError('REMOTE_CALL', `task ${inf.pid}: ${what} failed in the tracee (errno ${-r})`, { context: { pid: inf.pid } });
    (e as unknown as { errno: number }).errno = Number(r);
    throw e;
  }
  return r;
}

/** rt_sigaction(sig, NULL, &old) for signals 1..64 but SIGKILL and SIGSTOP (CRIU's order). */
export function dumpSigactions(inf: Infection): SigactionState[] {
  const sigs: number[] = [];
  for (let s = 1; s <= 64; s++) if (s !== 9 && s !== 19) sigs.push(s);
  sigs.forEach((s, i) => ok(inf, `rt_sigaction(${s})`, call(inf, inf.pid, NR.rt_sigaction, [BigInt(s), 0n, dataAddr(inf, i * 32), 8n])));
  const b = readData(inf, 0, sigs.length * 32);
  return sigs.map((sig, i) => ({
    sig,
    handler: b.readBigUInt64LE(i * 32),
    flags: b.readBigUInt64LE(i * 32 + 8),
    restorer: b.readBigUInt64LE(i * 32 + 16),
    mask: b.readBigUInt64LE(i * 32 + 24),
  }));
}

export interface ItimerState {
  isec: bigint;
  iusec: bigint;
  vsec: bigint;
  vusec: bigint;
}

/** getitimer for ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
export function dumpItimers(inf: Infection): { real: ItimerState; virt: ItimerState; prof: ItimerState } {
  for (let w = 0; w < 3; w++) ok(inf, `getitimer(${w})`, call(inf, inf.pid, NR.getitimer, [BigInt(w), dataAddr(inf, w * 32)]));
  const b = readData(inf, 0, 96);
  const one = (o: number): ItimerState => ({
    isec: b.readBigInt64LE(o),
    iusec: b.readBigInt64LE(o + 8),
    vsec: b.readBigInt64LE(o + 16),
    vusec: b.readBigInt64LE(o + 24),
  });
  return { real: one(0), virt: one(32), prof: one(64) };
}

export interface PosixTimerValue {
  id: number;
  isec: bigint;
  insec: bigint;
  vsec: bigint;
  vnsec: bigint;
  overrun: number;
}

/** timer_gettime (and timer_getoverrun) for the given timer ids. */
export function dumpPosixTimers(inf: Infection, ids: number[]): PosixTimerValue[] {
  return ids.map((id) => {
    ok(inf, `timer_gettime(${id})`, call(inf, inf.pid, NR.timer_gettime, [BigInt(id), dataAddr(inf, 0)]));
    const overrun = ok(inf, `timer_getoverrun(${id})`, call(inf, inf.pid, 225, [BigInt(id)]));
    const b = readData(inf, 0, 32);
    return {
      id,
      isec: b.readBigInt64LE(0),
      insec: b.readBigInt64LE(8),
      vsec: b.readBigInt64LE(16),
      vnsec: b.readBigInt64LE(24),
      overrun: Number(overrun),
    };
  });
}

/** Process-wide values only prctl() tells. */
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
}

const PR_GET_PDEATHSIG = 2;
const PR_GET_DUMPABLE = 3;
const PR_GET_SECUREBITS = 27;
const PR_GET_TIMERSLACK = 30;
const PR_GET_CHILD_SUBREAPER = 37;
const PR_GET_NO_NEW_PRIVS = 39;
const PR_GET_TID_ADDRESS = 40;

export function dumpMisc(inf: Infection): MiscState {
  const p = (what: string, opt: number, arg = 0n) => ok(inf, what, call(inf, inf.pid, NR.prctl, [BigInt(opt), arg, 0n, 0n, 0n]));
  p('prctl(PR_GET_PDEATHSIG)', PR_GET_PDEATHSIG, dataAddr(inf, 0));
  p('prctl(PR_GET_CHILD_SUBREAPER)', PR_GET_CHILD_SUBREAPER, dataAddr(inf, 8));
  const b = readData(inf, 0, 16);
  return {
    securebits: Number(p('prctl(PR_GET_SECUREBITS)', PR_GET_SECUREBITS)),
    dumpable: Number(p('prctl(PR_GET_DUMPABLE)', PR_GET_DUMPABLE)),
    pdeathsig: b.readInt32LE(0),
    childSubreaper: b.readInt32LE(8) !== 0,
    noNewPrivs: p('prctl(PR_GET_NO_NEW_PRIVS)', PR_GET_NO_NEW_PRIVS) !== 0n,
    timerslack: p('prctl(PR_GET_TIMERSLACK)', PR_GET_TIMERSLACK),
    personality: Number(ok(inf, 'personality', call(inf, inf.pid, NR.personality, [0xffffffffn]))),
    brk: BigInt.asUintN(64, call(inf, inf.pid, 12, [0n])),
  };
}

/** What only the thread itself can tell. */
export interface ThreadMiscState {
  tid: number;
  clearTidAddr: bigint;
  sas: { ss_sp: bigint; ss_flags: number; ss_size: bigint };
  robustList: { head: bigint; len: bigint };
}

export function dumpThreadMisc(inf: Infection, tid: number): ThreadMiscState {
  ok(inf, 'prctl(PR_GET_TID_ADDRESS)', call(inf, tid, NR.prctl, [BigInt(PR_GET_TID_ADDRESS), dataAddr(inf, 0), 0n, 0n, 0n]));
  ok(inf, 'sigaltstack', call(inf, tid, NR.sigaltstack, [0n, dataAddr(inf, 16)]));
  ok(inf, 'get_robust_list', call(inf, tid, NR.get_robust_list, [0n, dataAddr(inf, 48), dataAddr(inf, 56)]));
  const b = readData(inf, 0, 64);
  return {
    tid,
    clearTidAddr: b.readBigUInt64LE(0),
    sas: { ss_sp: b.readBigUInt64LE(16), ss_flags: b.readInt32LE(24), ss_size: b.readBigUInt64LE(32) },
    robustList: { head: b.readBigUInt64LE(48), len: b.readBigUInt64LE(56) },
  };
}
