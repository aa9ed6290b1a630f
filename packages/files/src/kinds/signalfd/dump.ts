/** signalfd: the signals it takes, as fdinfo shows them. */
import { anonInodeKind, fown, noFdinfo } from '../../dump/kind.js';

export const signalfdDump = anonInodeKind('anon_inode:[signalfd]', 'SIGNALFD', (pid, rec, id, flags) => ({
  type: 'SIGNALFD', id, sgfd: { id, flags, fown: fown(), sigmask: (rec.signalfd ?? noFdinfo(pid, rec)).sigmask },
}));
