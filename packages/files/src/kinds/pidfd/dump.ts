/**
 * pidfd (pidfd_open, clone's CLONE_PIDFD): a handle on a process, as fdinfo shows it — `Pid:`
 * the process it refers to (in our namespace), -1 once that process is gone and reaped. Kept as
 * CRIU 4.2 keeps it (files.img PIDFD, pidfd_entry: ino, flags, nspid). A pidfd of a process
 * outside the dumped tree is refused (after a restore the number would name another process,
 * or none), as is a pidfd of one thread (PIDFD_THREAD), which CRIU 4.2 does not carry either.
 */
import type { FdRecord } from '@crtools/procfs';
import { fown, noFdinfo, refuseFd, type DumpKind, type FdClaim } from '../../dump/kind.js';
import type { DumpedIds } from '../../dump/fown.js';
import { PIDFD_THREAD } from './facts.js';

const O_ACCMODE = 0o3;

export class PidfdFiles implements DumpKind {
  /** tree: the pids and tids of the dumped tree (undefined: unknown, every live target refused) */
  constructor(private readonly tree: () => DumpedIds | undefined) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    if (rec.target !== 'anon_inode:[pidfd]' && !/^pidfd:/.test(rec.target)) return undefined;
    const text = rec.other?.['Pid'];
    if (text === undefined || !/^-?\d+$/.test(text.trim())) noFdinfo(pid, rec);
    const target = Number(text.trim());
    if (flags & PIDFD_THREAD) throw refuseFd(pid, rec.fd, `a pidfd of thread ${target} (PIDFD_THREAD) is not supported`, rec.target);
    if (target > 0 && !this.tree()?.tasks.has(target)) {
      throw refuseFd(pid, rec.fd, `a pidfd of process ${target}, which is outside the dumped tree, is not supported (after a restore the number would name another process, or none)`, rec.target);
    }
    // (a tree in a pid namespace of its own: the pid as its tasks see it)
    const innerId = this.tree()?.innerId;
    const nspid = target > 0 ? (innerId ? innerId(target, false) : target) : -1;
    return {
      type: 'PIDFD',
      // pidfds of one process share an inode: kcmp tells whether two descriptors are one open file
      key: `pidfd:${rec.ino}:${flags}`,
      // flags without the access mode, as CRIU writes them (it hands them to pidfd_open, which takes no O_RDWR)
      entry: (id) => ({ type: 'PIDFD', id, pidfd: { id, ino: Number(rec.ino & 0xffffffffn), flags: flags & ~O_ACCMODE, nspid, fown: fown() } }),
    };
  }
}
