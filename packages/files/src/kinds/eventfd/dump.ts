/** eventfd: its counter, as fdinfo shows it. */
import { anonInodeKind, fown, noFdinfo } from '../../dump/kind.js';

export const eventfdDump = anonInodeKind('anon_inode:[eventfd]', 'EVENTFD', (pid, rec, id, flags) => ({
  type: 'EVENTFD', id, efd: { id, flags, fown: fown(), counter: (rec.eventfd ?? noFdinfo(pid, rec)).count },
}));
