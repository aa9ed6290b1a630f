/**
 * cgroup.img as a plan: the css sets (each controller's path of a set, and where the tree's cgroup
 * namespace is rooted in it), the dumped directories of
 * each controller with their properties, and the set of the dump's criu (inventory root_cg_set).
 * A task's set is its core's (thread_core.cg_set, else tc.cg_set).
 */
import { badImage as badInput, readImage as img, type Obj } from '@crtools/files/plan';
import type { CgroupDirPlan, CgroupsPlan } from '../plan.js';

function dirOf(e: Obj, f: string, top: boolean): CgroupDirPlan {
  // (a top directory named '' is the hierarchy's root)
  const name = String(e.dir_name ?? '');
  if ((!name && !top) || name.split('/').includes('..')) throw badInput(`${f}: cgroup directory "${name}"`, { image: f });
  const permsOf = (p: Obj | undefined) => (p ? { perms: { mode: Number(p.mode), uid: Number(p.uid), gid: Number(p.gid) } } : {});
  return {
    name,
    props: ((e.properties as Obj[] | undefined) ?? []).filter((p) => p.value !== undefined).map((p) => ({ name: String(p.name), value: String(p.value), ...permsOf(p.perms as Obj | undefined) })),
    ...permsOf(e.dir_perms as Obj | undefined),
    children: ((e.children as Obj[] | undefined) ?? []).map((c) => dirOf(c, f, false)),
  };
}

/** cgroup.img (absent: undefined, the tasks stay in the restorer's cgroups as CRIU leaves them). */
export async function cgroupsOf(dir: string, rootSet: number | undefined): Promise<CgroupsPlan | undefined> {
  const f = 'cgroup.img';
  const e = (await img(dir, f, 'CGROUP', true))?.[0];
  if (!e) return undefined;
  const sets = ((e.sets as Obj[] | undefined) ?? []).map((s) => ({
    id: Number(s.id),
    ctls: ((s.ctls as Obj[] | undefined) ?? []).map((c) => {
      const m = { name: String(c.name ?? ''), path: String(c.path ?? '') };
      const prefix = Number(c.cgns_prefix ?? 0);
      if (!prefix) return m;
      // (the namespace's root: a directory of the path, or the path itself)
      if (prefix > m.path.length || (prefix < m.path.length && m.path[prefix] !== '/')) throw badInput(`${f}: css set ${String(s.id)}: cgns_prefix ${prefix} of ${m.name || 'unified'}:${m.path}`, { image: f });
      return { ...m, cgnsPrefix: prefix };
    }),
  }));
  const controllers = ((e.controllers as Obj[] | undefined) ?? []).map((c) => ({
    cnames: ((c.cnames as unknown[] | undefined) ?? []).map(String),
    dirs: ((c.dirs as Obj[] | undefined) ?? []).map((d) => dirOf(d, f, true)),
  }));
  return { sets, controllers, ...(rootSet !== undefined ? { rootSet } : {}) };
}

/** A task's css set as its core records it. */
export function cgSetOf(core: Obj): number | undefined {
  const v = (core.thread_core as Obj | undefined)?.cg_set ?? (core.tc as Obj | undefined)?.cg_set;
  return v === undefined ? undefined : Number(v);
}
