import type { CritRecord, ViewKind } from '../../view/kind.js';

export const regView: ViewKind = {
  type: 'REG',
  field: 'reg',
  name: (r: CritRecord) => (r.name ? String(r.name) : 'unknown path'),
};
