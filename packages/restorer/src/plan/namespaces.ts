/**
 * The namespaces a restore makes again: those of the root that are not the dump's criu's
 * (inventory root_ids), as CRIU 4.2 decides it. The root task is born in them (clone flags of
 * its clone3), their state is put back from inside before any task runs its own code; every other
 * task must live in its parent's (CRIU's rule: no nested namespaces). A root in a pid namespace of
 * its own is born as its init (pid 1) and every other task at its pid inside it.
 */
import { NS_KINDS, type NsKind } from '@crtools/images/facts';
import { badImage as badInput, firstEntry as first, readImage as img, refuse as unsupported, type Obj } from '@crtools/files/plan';
import { NS_TYPE } from '@crtools/sys';
import type { NamespacePlan } from '../plan.js';

/** clone(2) flags of the namespaces a restore makes (CLONE_NEW*). */
const CLONE_NEW: Partial<Record<NsKind, number>> = { uts: NS_TYPE.uts, ipc: NS_TYPE.ipc, pid: NS_TYPE.pid };

/** The kinds whose namespaces a restore makes again. */
export const RESTORED_NS = Object.keys(CLONE_NEW) as NsKind[];

/** The root's namespaces that differ from criu's (root_ids), refused by name unless restored. */
export async function rootNamespaces(dir: string, rootPid: number, rootIds: Obj, ids: Obj): Promise<NamespacePlan> {
  const own: NsKind[] = NS_KINDS.filter((k) => ids[`${k}_ns_id`] !== undefined && rootIds[`${k}_ns_id`] !== undefined && Number(ids[`${k}_ns_id`]) !== Number(rootIds[`${k}_ns_id`]));
  const off = own.filter((k) => !RESTORED_NS.includes(k));
  if (off.length) {
    throw unsupported(`pid ${rootPid} lives in its own ${off.join(', ')} namespace${off.length > 1 ? 's' : ''}, which restore does not recreate yet (restored: ${RESTORED_NS.join(', ')})`, { pid: rootPid });
  }
  if (own.includes('pid') && rootPid !== 1) throw badInput(`pid ${rootPid} is the root of a pid namespace of its own (ids-${rootPid}.img) but not its init (pid 1)`, { pid: rootPid });
  const plan: NamespacePlan = { cloneFlags: own.reduce((f, k) => f | CLONE_NEW[k]!, 0) };
  if (own.includes('uts')) {
    const f = `utsns-${Number(ids.uts_ns_id)}.img`;
    const e = first(await img(dir, f, 'UTSNS'), f);
    plan.uts = { nodename: String(e.nodename ?? ''), domainname: String(e.domainname ?? '') };
    for (const [k, v] of Object.entries(plan.uts)) {
      if (Buffer.byteLength(v) > 64) throw badInput(`${f}: ${k} longer than 64 bytes`, { image: f });
    }
  }
  if (own.includes('ipc')) {
    const id = Number(ids.ipc_ns_id);
    const f = `ipcns-var-${id}.img`;
    const e = first(await img(dir, f, 'IPC_VAR'), f);
    // SysV objects of the namespace (CRIU writes them beside its sysctls): not made again yet
    for (const [kind, magic] of [['shm', 'IPCNS_SHM'], ['sem', 'IPCNS_SEM'], ['msg', 'IPCNS_MSG']] as const) {
      const objs = await img(dir, `ipcns-${kind}-${id}.img`, magic, true);
      if (objs?.length) throw unsupported(`${objs.length} SysV IPC ${kind} object(s) of the IPC namespace (ipcns-${kind}-${id}.img) are not restored yet`, { pid: rootPid });
    }
    plan.ipcVar = e;
  }
  return plan;
}

/** Every task but the root lives in its parent's namespaces. */
export function checkTaskNamespaces(pid: number, ids: Obj, parentIds: Obj): void {
  const nested = NS_KINDS.filter((k) => ids[`${k}_ns_id`] !== undefined && parentIds[`${k}_ns_id`] !== undefined && Number(ids[`${k}_ns_id`]) !== Number(parentIds[`${k}_ns_id`]));
  if (nested.length) {
    throw unsupported(`pid ${pid} lives in ${nested.join(', ')} namespace${nested.length > 1 ? 's' : ''} other than its parent's (nested namespaces), which restore does not recreate`, { pid });
  }
}
