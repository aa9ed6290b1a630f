/** What the explorers share: page arithmetic, status bits, tasks in tree order. */
import { PAGE_SHIFT as SHIFT } from '@crtools/common';
import type { CritEntry, ImageDir, Task } from '../image-dir.js';
import { PE } from '../_images.js';

export const PAGE_SHIFT = BigInt(SHIFT);
export const hex = (v: bigint): string => v.toString(16);

export const MAP_GROWSDOWN = 0x0100;
export const PE_PARENT = PE.PARENT;
export const PE_PRESENT = PE.PRESENT;

export async function comm(d: ImageDir, pid: number): Promise<string> {
  const core = await d.first(`core-${pid}.img`, false);
  const tc = core.tc as CritEntry | undefined;
  return tc ? String(tc.comm) : '';
}

/** Tasks in tree order (parent, then its children depth-first), like crit's show_ps. */
export async function treeOrder(d: ImageDir): Promise<{ task: Task; depth: number }[]> {
  const tasks = await d.tasks();
  const byPid = new Map(tasks.map((t) => [t.pid, t]));
  const kids = new Map<number, Task[]>();
  let root: Task | undefined;
  for (const t of tasks) {
    if (t.ppid === 0) {
      root = t; // crit keeps the last task without a parent as the root
      continue;
    }
    if (!byPid.has(t.ppid)) continue;
    let k = kids.get(t.ppid);
    if (!k) kids.set(t.ppid, (k = []));
    k.push(t);
  }
  const out: { task: Task; depth: number }[] = [];
  const walk = (t: Task, depth: number): void => {
    out.push({ task: t, depth });
    for (const k of kids.get(t.pid) ?? []) walk(k, depth + 1);
  };
  if (root) walk(root, 0);
  return out;
}

