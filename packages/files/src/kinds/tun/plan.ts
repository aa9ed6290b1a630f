/**
 * /dev/net/tun files (files.img TUNF entries, ours or CRIU 4.2's): the device the file was
 * attached to (none: a file never attached) and the network namespace it was opened in; its open
 * flags are those of the REG entry of the same id CRIU 4.2 writes beside it. The restorer makes
 * the file itself, once the devices exist (a descriptor the task takes as it is).
 */
import { badImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** A /dev/net/tun file: `netdev` the device it is attached to. */
export interface TunFilePlan extends FileBase {
  kind: 'tun';
  netdev?: string;
  /** its queue of a multi-queue device was detached (TUNSETQUEUE IFF_DETACH_QUEUE) */
  detached?: boolean;
  /** the id of the network namespace it was opened in (tunfile_entry.ns_id, when written) */
  netnsId?: number;
}

export class TunPlans implements PlanKind<TunFilePlan> {
  readonly type = 'TUNF';
  readonly field = 'tunf';
  /** the REG entries files.img holds beside another of the same id (a tun file's path and flags) */
  twins: ReadonlyMap<number, Obj> = new Map();

  plan(e: Obj, ctx: PlanContext): TunFilePlan {
    const reg = this.twins.get(ctx.id)?.reg as Obj | undefined;
    if (!reg) throw badImage(`files.img: tun file ${ctx.id} (${ctx.what}) has no REG entry of its id`, { image: 'files.img' });
    if (reg.name !== '/dev/net/tun') throw refuse(`${ctx.what}: tun file ${ctx.id} opened at ${String(reg.name)}, not /dev/net/tun, which crtools does not restore`);
    const p: TunFilePlan = { kind: 'tun', flags: Number(reg.flags), pos: 0n };
    if (e.netdev !== undefined && e.netdev !== null && e.netdev !== '') p.netdev = String(e.netdev);
    if (e.detached && p.netdev !== undefined) p.detached = true;
    if (e.ns_id !== undefined && e.ns_id !== null) p.netnsId = Number(e.ns_id);
    return p;
  }
}
