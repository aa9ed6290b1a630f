/** epoll: made empty, its targets added by the owner task once its descriptors are in place. */
import { big, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** One file descriptor an epoll instance watches: its number in the owner task, events, data. */
export interface EpollTarget {
  fd: number;
  events: number;
  data: bigint;
}

/** epoll: what it watches, added by the task `owner` once its descriptors are in place. */
export interface EpollFilePlan extends FileBase {
  kind: 'epoll';
  targets: EpollTarget[];
  owner: number;
}

export const epollPlan: PlanKind<EpollFilePlan> = {
  type: 'EVENTPOLL',
  field: 'epfd',
  plan: (e: Obj, ctx: PlanContext) => ({
    kind: 'epoll', flags: e.flags, pos: 0n, owner: ctx.pid,
    targets: ((e.tfd ?? []) as Obj[]).map((t) => ({ fd: Number(t.tfd), events: Number(t.events) >>> 0, data: big(t.data) })),
  }),
};
