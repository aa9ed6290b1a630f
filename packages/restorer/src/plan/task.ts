/** Task-wide state of the checkpoint: capabilities, oom_score_adj, POSIX timers, zombies. */
import { SIGEV } from '@crtools/images/facts';
import { badImage as badInput, big, type Obj } from '@crtools/files/plan';
import { X86_REGS, type CredsPlan, type PosixTimerPlan, type TaskPlan, type ThreadPlan, type X86Reg } from '../plan.js';

/** creds_entry capability words (low, high) → bit sets; images without them leave caps inherited */
export function capsFrom(creds: Obj): CredsPlan['caps'] {
  if (!creds.cap_prm?.length && !creds.cap_bnd?.length) return undefined;
  const set = (w: unknown[] | undefined) => (w ?? []).reduce<bigint>((acc, x, i) => acc | (BigInt(Number(x) >>> 0) << BigInt(32 * i)), 0n);
  return {
    inh: set(creds.cap_inh), prm: set(creds.cap_prm), eff: set(creds.cap_eff), bnd: set(creds.cap_bnd), amb: set(creds.cap_amb),
    secbits: Number(creds.secbits ?? 0), noNewPrivs: !!creds.no_new_privs,
  };
}

export function oomFrom(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1000 || n > 1000) throw badInput(`${path}: oom_score_adj ${String(v)} out of range`, { path, image: path });
  return n;
}

const { SIGNAL: SIGEV_SIGNAL, NONE: SIGEV_NONE, THREAD_ID: SIGEV_THREAD_ID } = SIGEV;

/** A posix_timer_entry → what the blob recreates (same id, notify, remaining time). */
export function posixTimer(p: Obj, pid: number, tids: number[]): PosixTimerPlan {
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

/** A zombie: made with its pid, group, session and parent, it ends at once with its wait status. */
export function zombieTask(pid: number, parent: number, pgid: number, sid: number, status: number, comm?: string): TaskPlan {
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
