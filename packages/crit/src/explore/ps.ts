/** `crit x DIR ps`: the tasks in tree order with their pid, group, session and command. */
import { comm, treeOrder } from './shared.js';
import { ImageDir } from '../image-dir.js';

export interface PsRow {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
  depth: number;
  threads: number[];
}

export async function collectPs(d: ImageDir): Promise<PsRow[]> {
  const rows: PsRow[] = [];
  for (const { task, depth } of await treeOrder(d)) {
    rows.push({ pid: task.pid, ppid: task.ppid, pgid: task.pgid, sid: task.sid, comm: await comm(d, task.pid), depth, threads: task.threads });
  }
  return rows;
}

export function renderPs(rows: PsRow[]): string {
  let s = `${'PID'.padStart(7)}${'PGID'.padStart(7)}${'SID'.padStart(7)}   COMM\n`;
  for (const r of rows) {
    s += `${String(r.pid).padStart(7)}${String(r.pgid).padStart(7)}${String(r.sid).padStart(7)}   ${' '.repeat(4 * r.depth)}${r.comm}\n`;
  }
  return s;
}
