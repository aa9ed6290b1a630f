/** `crit x DIR mems`: each task's memory areas as crit prints them. */
import { hex, MAP_GROWSDOWN } from './shared.js';
import { ImageDir, big, num, type CritEntry } from '../image-dir.js';
import { VMA_ANON_SHARED, VMA_AREA_REGULAR, VMA_AREA_SOCKET, VMA_AREA_STACK, VMA_AREA_SYSVIPC, VMA_AREA_VDSO, VMA_AREA_VSYSCALL, VMA_FILE_PRIVATE, VMA_FILE_SHARED, type JsonValue } from '../_images.js';

export interface VmaRow {
  start: bigint;
  end: bigint;
  prot: string;
  /** What crit prints after the protection ("" for anonymous private memory). */
  name: string;
  /** The backing file for file mappings (always resolved, whatever the file's kind). */
  file?: string;
  pgoff?: bigint;
  shared?: boolean;
  /** False for areas crit marks with "*" (not regular: vsyscall, unsupported). */
  regular: boolean;
  status: number;
}
export interface TaskMems {
  pid: number;
  exe: string;
  vmas: VmaRow[];
}

/** Numbers shared memory segments 1, 2, … in order of first appearance (crit's vma_id). */
class ShortIds {
  private ids = new Map<string, number>();
  get(k: JsonValue | undefined): number {
    const key = String(k);
    let v = this.ids.get(key);
    if (v === undefined) this.ids.set(key, (v = this.ids.size + 1));
    return v;
  }
}

function protStr(p: number): string {
  return (p & 1 ? 'r' : '-') + (p & 2 ? 'w' : '-') + (p & 4 ? 'x' : '-');
}

async function vmaRow(d: ImageDir, vma: CritEntry, ids: ShortIds): Promise<VmaRow> {
  const st = num(vma.status);
  const row: VmaRow = { start: big(vma.start), end: big(vma.end), prot: protStr(num(vma.prot)), name: '', regular: !!(st & VMA_AREA_REGULAR), status: st };
  let fn: string;
  if (st & VMA_AREA_SYSVIPC) fn = ` ips[${ids.get(vma.shmid).toString(16)}]`;
  else if (st & VMA_ANON_SHARED) fn = ` shmem[${ids.get(vma.shmid).toString(16)}]`;
  else if (st & VMA_AREA_SOCKET) fn = ` packet[${ids.get(vma.shmid).toString(16)}]`;
  else if (st & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
    row.file = await d.fileName('REG', num(vma.shmid), true);
    fn = ' ' + row.file;
    row.pgoff = big(vma.pgoff);
    if (row.pgoff) fn += ` + 0x${hex(row.pgoff)}`;
    row.shared = !!(st & VMA_FILE_SHARED);
    if (row.shared) fn += ' (s)';
  } else if (st & VMA_AREA_STACK) fn = ' [stack]';
  else if (st & VMA_AREA_VSYSCALL) fn = ' [vsyscall]';
  else if (st & VMA_AREA_VDSO) fn = ' [vdso]';
  else if (num(vma.flags) & MAP_GROWSDOWN) fn = ' [stack?]';
  else fn = '';
  if (!row.regular) fn += ' *';
  row.name = fn;
  return row;
}

export async function collectMems(d: ImageDir): Promise<TaskMems[]> {
  const out: TaskMems[] = [];
  const ids = new ShortIds();
  for (const t of await d.liveTasks()) {
    const mm = await d.first(`mm-${t.pid}.img`);
    const exe = await d.fileName('REG', num(mm.exe_file_id), true);
    const vmas: VmaRow[] = [];
    for (const v of (mm.vmas as CritEntry[] | undefined) ?? []) vmas.push(await vmaRow(d, v, ids));
    out.push({ pid: t.pid, exe, vmas });
  }
  return out;
}

export function renderMems(rows: TaskMems[]): string {
  let s = '';
  for (const t of rows) {
    s += `${t.pid}\n`;
    s += `\t${'exe'.padEnd(36)}    ${t.exe}\n`;
    for (const v of t.vmas) {
      const a = `${hex(v.start).padStart(8, '0')}-${hex(v.end).padStart(8, '0')}`;
      s += `\t${a.padEnd(36)}${v.prot}${v.name}\n`;
    }
  }
  return s;
}
