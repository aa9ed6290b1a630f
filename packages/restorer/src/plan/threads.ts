/** A thread of the checkpoint (core-TID.img) → its ThreadPlan: registers, xsave state, signals, scheduling. */
import { isRealtimePolicy, SCHED_RESET_ON_FORK } from '@crtools/common';
import { badImage as badInput, big, refuse as unsupported, type Obj } from '@crtools/files/plan';
import { X86_REGS, type ThreadPlan, type X86Reg } from '../plan.js';
import { seccompFrom } from './seccomp.js';

function u32le(vals: readonly number[] | undefined, count: number): Buffer {
  const b = Buffer.alloc(count * 4);
  (vals ?? []).slice(0, count).forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
}

/**
 * `count` words (little-endian, as x86 keeps them) from their values, the missing ones zero;
 * through a BigUint64Array, which takes each value modulo 2^64 (a thread's AVX-512 registers
 * are 200 words: a write of each through the Buffer cost ten times as much).
 */
function u64le(vals: readonly (bigint | number)[] | undefined, count: number): Buffer | undefined {
  if (!vals || vals.length === 0) return undefined;
  const words = new BigUint64Array(count);
  const n = Math.min(count, vals.length);
  for (let i = 0; i < n; i++) words[i] = big(vals[i]);
  return Buffer.from(words.buffer);
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
export function sigQueue(q: Obj | undefined, path: string): Buffer[] | undefined {
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
export function schedFrom(tc: Obj | undefined, path: string): { policy: number; prio: number; nice: number } | undefined {
  if (tc?.sched_policy === undefined && tc?.sched_nice === undefined) return undefined;
  const policy = Number(tc.sched_policy ?? 0);
  const prio = Number(tc.sched_prio ?? 0);
  const nice = Number(tc.sched_nice ?? 0);
  // (SCHED_RESET_ON_FORK rides in the policy's bit 30, as sched_getscheduler() gives it)
  const base = policy & ~SCHED_RESET_ON_FORK;
  if (![0, 1, 2, 3, 5].includes(base) || policy < 0) throw badInput(`${path}: unknown scheduling policy ${policy}`, { path, image: path });
  if (nice < -20 || nice > 19) throw badInput(`${path}: nice ${nice} out of range`, { path, image: path });
  if (isRealtimePolicy(policy) !== (prio > 0) || prio > 99) throw badInput(`${path}: priority ${prio} does not fit policy ${policy}`, { path, image: path });
  return { policy, prio, nice };
}

/**
 * `seccompFilters`: seccomp.img's filter list (undefined: no image); `oldSeccomp`: the task's
 * old_seccomp_mode/_filter, for the main thread of images from before per-thread seccomp.
 */
export function threadFrom(tid: number, core: Obj, leaderTc: Obj | undefined, path: string, seccompFilters?: Obj[], oldSeccomp?: { mode: unknown; filter: unknown }): ThreadPlan {
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
  const seccomp = seccompFrom(tc, seccompFilters, path, tid, oldSeccomp);
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
    ...(big(tc?.futex_rla_len) !== 0n ? { robustList: { head: big(tc?.futex_rla), len: big(tc?.futex_rla_len) } } : {}),
    ...(tc?.pdeath_sig ? { pdeathsig: Number(tc.pdeath_sig) } : {}),
    rseq: rseq && big(rseq.rseq_abi_pointer) !== 0n ? { ptr: big(rseq.rseq_abi_pointer), len: rseq.rseq_abi_size, sig: rseq.signature, ...(big(rseq.rseq_cs_pointer) !== 0n ? { cs: big(rseq.rseq_cs_pointer) } : {}) } : undefined,
    comm: tc?.comm ?? leaderTc?.comm,
    pendingSignals: sigQueue(tc?.signals_p, path),
    sched: schedFrom(tc, path),
    ...(seccomp ? { seccomp } : {}),
  };
}

