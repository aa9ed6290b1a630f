/**
 * Namespace files (files.img NS, ns_file_entry): opened again as /proc/PID/ns/X of a task of the
 * checkpoint that lives in the namespace named (its ids: core.img's, or ids-<pid>.img in older
 * images), once every task exists (a `late` regular file: by the root, then shared with every
 * holder). A namespace no live task of the checkpoint lives in is refused.
 */
import { NS_CLONE_FLAG, NS_KINDS, TASK_STATE, type NsKind } from '@crtools/images/facts';
import { badImage, readImage, refuse, type Obj, type PlanKind } from '../../plan/kind.js';
import type { RegFilePlan } from '../reg/plan.js';

export class NsPlans implements PlanKind<RegFilePlan> {
  readonly type = 'NS';
  readonly field = 'nsf';
  /** namespace id → a live task that lives in it (the first met, in pstree.img's order), and the kind */
  private readonly livedIn = new Map<number, { pid: number; kind: NsKind }>();

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    if (![...files.values()].some((f) => f.nsf)) return;
    for (const t of (await readImage(dir, 'pstree.img', 'PSTREE')) ?? []) {
      const pid = Number(t.pid);
      const core = (await readImage(dir, `core-${pid}.img`, 'CORE', true))?.[0];
      // (a zombie has no namespaces left to open)
      if (core?.tc?.task_state === TASK_STATE.DEAD) continue;
      const ids = core?.ids ?? (await readImage(dir, `ids-${pid}.img`, 'IDS', true))?.[0];
      for (const kind of NS_KINDS) {
        const id = ids?.[`${kind}_ns_id`];
        if (id !== undefined && !this.livedIn.has(Number(id))) this.livedIn.set(Number(id), { pid, kind });
      }
    }
  }

  plan(r: Obj, ctx: { what: string }): RegFilePlan {
    const at = this.livedIn.get(Number(r.ns_id));
    if (!at) throw refuse(`${ctx.what}: a file of namespace ${r.ns_id}, in which no live task of the checkpoint lives: not restored`);
    if (NS_CLONE_FLAG[at.kind] !== Number(r.ns_cflag)) throw badImage(`${ctx.what}: the file of namespace ${r.ns_id} has clone flag 0x${Number(r.ns_cflag).toString(16)}, but that namespace is a ${at.kind} one`, { image: 'files.img' });
    return { kind: 'reg', path: `/proc/${at.pid}/ns/${at.kind}`, flags: Number(r.flags ?? 0), pos: 0n, late: true };
  }
}
