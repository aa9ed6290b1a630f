/**
 * epoll: its targets, each by descriptor number in the owner task, checked to still name the
 * file that was added (a target closed after being added cannot be found again).
 */
import { statSync } from 'node:fs';
import { anonInodeKind, fown, refuseFd } from '../../dump/kind.js';

export const epollDump = anonInodeKind('anon_inode:[eventpoll]', 'EVENTPOLL', (pid, rec, id, flags) => {
  const tfd = (rec.epoll?.tfds ?? []).map((t) => {
    let st;
    try {
      st = statSync(`/proc/${pid}/fd/${t.tfd}`, { bigint: true });
    } catch {
      st = undefined;
    }
    if (!st || st.ino !== t.ino) throw refuseFd(pid, rec.fd, `watches a file no longer open at fd ${t.tfd} (a closed epoll target is not supported)`, rec.target);
    return { id, tfd: t.tfd, events: t.events, data: t.data, dev: t.sdev, inode: t.ino, pos: t.pos };
  });
  return { type: 'EVENTPOLL', id, epfd: { id, flags, fown: fown(), tfd } };
});
