/** signalfd: made again with its signal mask. */
import { big, type Obj, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** signalfd: `value` its signal mask (bit n-1 = signal n). */
export interface SignalfdFilePlan extends FileBase {
  kind: 'signalfd';
  value: bigint;
}

export const signalfdPlan: PlanKind<SignalfdFilePlan> = {
  type: 'SIGNALFD',
  field: 'sgfd',
  plan: (s: Obj) => ({ kind: 'signalfd', flags: s.flags, pos: 0n, value: big(s.sigmask) }),
};
