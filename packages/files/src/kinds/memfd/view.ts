import { num, type CritRecord, type ViewKind } from '../../view/kind.js';

/** a memfd by its memfd.img inode (crit's explorers name it from memfd.img when they have it) */
export const memfdView: ViewKind = {
  type: 'MEMFD',
  field: 'memfd',
  name: (m: CritRecord) => `memfd[${num(m.inode_id)}]`,
};
