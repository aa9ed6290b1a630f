/** eventfd: made again with its counter. */
import { big, type Obj, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** eventfd: `value` its counter. */
export interface EventfdFilePlan extends FileBase {
  kind: 'eventfd';
  value: bigint;
}

export const eventfdPlan: PlanKind<EventfdFilePlan> = {
  type: 'EVENTFD',
  field: 'efd',
  plan: (e: Obj) => ({ kind: 'eventfd', flags: e.flags, pos: 0n, value: big(e.counter) }),
};
