/** timerfd: made again on its clock, armed with the time that was left. */
import { big, type Obj, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** timerfd: clock, expirations not yet read, time left (0 = disarmed) and interval. */
export interface TimerFilePlan extends FileBase {
  kind: 'timerfd';
  timer: { clockId: number; ticks: bigint; vsec: bigint; vnsec: bigint; isec: bigint; insec: bigint };
}

export const timerfdPlan: PlanKind<TimerFilePlan> = {
  type: 'TIMERFD',
  field: 'tfd',
  plan: (t: Obj) => ({
    kind: 'timerfd', flags: t.flags, pos: 0n,
    timer: { clockId: Number(t.clockid), ticks: big(t.ticks), vsec: big(t.vsec), vnsec: big(t.vnsec), isec: big(t.isec), insec: big(t.insec) },
  }),
};
