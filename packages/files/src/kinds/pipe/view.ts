import { num, type CritRecord, type ViewKind } from '../../view/kind.js';

export const pipeView: ViewKind = {
  type: 'PIPE',
  field: 'pipe',
  name: (p: CritRecord) => `pipe[${num(p.pipe_id)}]`,
};
