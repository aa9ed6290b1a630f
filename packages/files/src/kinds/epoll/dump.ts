/**
 * epoll: its targets, each by descriptor number in the owner task. A target whose descriptor
 * was closed since it was added (or now names another file) is still watched while its file is
 * open: as CRIU 4.2 does, it is written under a descriptor of the same task that is that very
 * file (kcmp KCMP_EPOLL_TFD), so the restore adds that one. A target the task no longer holds
 * at any descriptor cannot be added again and is refused. A kernel without KCMP_EPOLL_TFD (kerndat
 * has_kcmp_epoll_tfd false) cannot tell which file a target is: its epolls are refused by name.
 */
import { statSync } from 'node:fs';
import { listFds } from '@crtools/procfs';
import { isEpollTarget } from '@crtools/sys';
import { anonInodeKind, fown, refuseFd } from '../../dump/kind.js';

export const epollDump = anonInodeKind('anon_inode:[eventpoll]', 'EVENTPOLL', (pid, rec, id, flags) => {
  const targets = rec.epoll?.tfds ?? [];
  const seen = new Map<number, number>();
  let fds: number[] | undefined;
  const target = (fd: number, tfd: number, toff: number): boolean => {
    try {
      return isEpollTarget(pid, fd, rec.fd, tfd, toff);
    } catch (e) {
      // (EINVAL, EOPNOTSUPP: a kernel older than 4.x's kcmp mode for epoll targets)
      const code = (e as { code?: string }).code;
      if (code !== 'EINVAL' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
      throw refuseFd(pid, rec.fd, `which file epoll target ${tfd} is cannot be checked: this kernel has no kcmp KCMP_EPOLL_TFD (kerndat has_kcmp_epoll_tfd) (${code})`, rec.target);
    }
  };
  const tfd = targets.map((t) => {
    // the toff-th target registered under this number (a number closed and reused, added again)
    const toff = seen.get(t.tfd) ?? 0;
    seen.set(t.tfd, toff + 1);
    let st;
    try {
      st = statSync(`/proc/${pid}/fd/${t.tfd}`, { bigint: true });
    } catch {
      st = undefined;
    }
    let fd = t.tfd;
    if (!st || st.ino !== t.ino || !target(t.tfd, t.tfd, toff)) {
      fds ??= listFds(pid);
      const other = fds.find((f) => f !== t.tfd && f !== rec.fd && target(f, t.tfd, toff));
      if (other === undefined) throw refuseFd(pid, rec.fd, `watches a file no longer open at fd ${t.tfd} nor at any other descriptor of the task (a closed epoll target)`, rec.target);
      fd = other;
    }
    return { id, tfd: fd, events: t.events, data: t.data, dev: t.sdev, inode: t.ino, pos: t.pos };
  });
  // two targets re-pointed to one descriptor could not both be added again
  const twice = tfd.find((t, i) => tfd.findIndex((u) => u.tfd === t.tfd) !== i);
  if (twice) throw refuseFd(pid, rec.fd, `watches the file at fd ${twice.tfd} twice (once through a descriptor closed since), which cannot be added again`, rec.target);
  return { type: 'EVENTPOLL', id, epfd: { id, flags, fown: fown(), tfd } };
});
