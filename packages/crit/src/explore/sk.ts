/** `crit x DIR sk`: each task's sockets, as their kinds show them (@crtools/files/view). */
import { describeSocketEntry, SOCKET_FILE_TYPES, type SocketView } from '@crtools/files/view';
import { ImageDir, num, type CritEntry } from '../image-dir.js';

/** One socket of a task: its descriptor, files.img id, and what its kind shows (@crtools/files/view). */
export type SockRow = { fd: number; id: number } & SocketView;
export interface TaskSocks {
  pid: number;
  sockets: SockRow[];
}

function describeSocket(fd: number, id: number, fe: CritEntry | undefined, type: string): SockRow {
  return { fd, id, ...((fe && describeSocketEntry(fe)) ?? { kind: type.toLowerCase() }) };
}

export async function collectSk(d: ImageDir): Promise<TaskSocks[]> {
  const out: TaskSocks[] = [];
  for (const t of await d.liveTasks()) {
    const ids = await d.first(`ids-${t.pid}.img`);
    const fdi = await d.load(`fdinfo-${num(ids.files_id)}.img`);
    const sockets: SockRow[] = [];
    for (const fd of fdi.entries) {
      const type = String(fd.type);
      if (!SOCKET_FILE_TYPES.has(type)) continue;
      sockets.push(describeSocket(num(fd.fd), num(fd.id), await d.fileEntry(num(fd.id)), type));
    }
    out.push({ pid: t.pid, sockets });
  }
  return out;
}

export function renderSk(rows: TaskSocks[]): string {
  let s = '';
  for (const t of rows) {
    s += `${t.pid}\n`;
    if (!t.sockets.length) s += '\t(no sockets)\n';
    for (const k of t.sockets) {
      const bits = [k.kind, k.type, k.state].filter((x) => x !== undefined && x !== '').join(' ');
      let line = `\t${String(k.fd).padStart(7)}: ${bits}`;
      if (k.ino !== undefined) line += ` ino ${k.ino}`;
      if (k.local) line += ` ${k.local}`;
      if (k.peer) line += ` -> ${k.peer}`;
      s += line + '\n';
    }
  }
  return s;
}
