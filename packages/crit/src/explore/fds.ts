/** `crit x DIR fds`: each task's descriptors by name, cwd and root. */
import { ImageDir, num } from '../image-dir.js';

export interface FdRow {
  fd: number;
  type: string;
  id: number;
  file: string;
}
export interface TaskFds {
  pid: number;
  fds: FdRow[];
  cwd: string;
  root: string;
}

export async function fdsOf(d: ImageDir, pid: number): Promise<FdRow[]> {
  const ids = await d.first(`ids-${pid}.img`);
  const fdt = num(ids.files_id);
  const fdi = await d.load(`fdinfo-${fdt}.img`);
  const rows: FdRow[] = [];
  for (const fd of fdi.entries) {
    const type = String(fd.type);
    const id = num(fd.id);
    rows.push({ fd: num(fd.fd), type, id, file: await d.fileName(type, id) });
  }
  return rows;
}

export async function collectFds(d: ImageDir): Promise<TaskFds[]> {
  const out: TaskFds[] = [];
  for (const t of await d.liveTasks()) {
    const fds = await fdsOf(d, t.pid);
    const fs = await d.first(`fs-${t.pid}.img`);
    out.push({ pid: t.pid, fds, cwd: await d.fileName('REG', num(fs.cwd_id)), root: await d.fileName('REG', num(fs.root_id)) });
  }
  return out;
}

export function renderFds(rows: TaskFds[]): string {
  let s = '';
  for (const t of rows) {
    s += `${t.pid}\n`;
    for (const f of t.fds) s += `\t${String(f.fd).padStart(7)}: ${f.file}\n`;
    s += `\t${'cwd'.padStart(7)}: ${t.cwd}\n`;
    s += `\t${'root'.padStart(7)}: ${t.root}\n`;
  }
  return s;
}
