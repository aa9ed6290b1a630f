/** pidfd: opened again on the restored process it named, or on a process made and reaped at once (a pidfd of one gone). */
import { badImage, type Obj, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';
import { PIDFD_THREAD } from './facts.js';

/**
 * pidfd: `pid` the process of the tree it names; -1: a process that had exited and been reaped,
 * `ino` then its pidfs inode as recorded (pidfds of one such process have the same; 0: unknown).
 */
export interface PidfdFilePlan extends FileBase {
  kind: 'pidfd';
  pid: number;
  ino?: number;
}


export const pidfdPlan: PlanKind<PidfdFilePlan> = {
  type: 'PIDFD',
  field: 'pidfd',
  plan: (e: Obj, ctx) => {
    const pid = Number(e.nspid);
    if (!Number.isInteger(pid) || pid === 0 || pid < -1) throw badImage(`${ctx.what}: pidfd of pid ${e.nspid}`, { image: 'files.img' });
    if (Number(e.flags) & PIDFD_THREAD) throw badImage(`${ctx.what}: a pidfd of one thread (PIDFD_THREAD)`, { image: 'files.img' });
    return pid === -1 ? { kind: 'pidfd', flags: Number(e.flags), pos: 0n, pid, ino: Number(e.ino ?? 0) } : { kind: 'pidfd', flags: Number(e.flags), pos: 0n, pid };
  },
};
