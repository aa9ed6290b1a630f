/**
 * The `crit x DIR VIEW` explorers. Each view collects plain data from an image directory
 * (collect*), and renders it as text (exactly as CRIU's crit prints ps/fds/mems/rss) or JSON.
 * JSON follows the crtools convention: addresses and other 64-bit values as "0x…" strings.
 */
import { PAGE_SHIFT as SHIFT, toHex } from '@crtools/common';
import { ImageDir, big, num, type CritEntry, type Task } from './image-dir.js';
import type { JsonValue } from './_images.js';
import { describeSocketEntry, SOCKET_FILE_TYPES, type SocketView } from '@crtools/files/view';
import { PE, VMA_ANON_SHARED, VMA_AREA_REGULAR, VMA_AREA_SOCKET, VMA_AREA_STACK, VMA_AREA_SYSVIPC, VMA_AREA_VDSO, VMA_AREA_VSYSCALL, VMA_FILE_PRIVATE, VMA_FILE_SHARED } from './_images.js';

export const VIEWS = ['ps', 'fds', 'mems', 'rss', 'sk', 'tree'] as const;
export type View = (typeof VIEWS)[number];

const PAGE_SHIFT = BigInt(SHIFT);
const hex = (v: bigint): string => v.toString(16);

const MAP_GROWSDOWN = 0x0100;
const PE_PARENT = PE.PARENT;
const PE_PRESENT = PE.PRESENT;

// ---------------------------------------------------------------- ps

export interface PsRow {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
  depth: number;
  threads: number[];
}

async function comm(d: ImageDir, pid: number): Promise<string> {
  const core = await d.first(`core-${pid}.img`, false);
  const tc = core.tc as CritEntry | undefined;
  return tc ? String(tc.comm) : '';
}

/** Tasks in tree order (parent, then its children depth-first), like crit's show_ps. */
async function treeOrder(d: ImageDir): Promise<{ task: Task; depth: number }[]> {
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

// ---------------------------------------------------------------- fds

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

async function fdsOf(d: ImageDir, pid: number): Promise<FdRow[]> {
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

// ---------------------------------------------------------------- mems

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

// ---------------------------------------------------------------- rss

export interface RssVma {
  start: bigint;
  pages: bigint;
  file?: string;
  /** The same VMA as on the previous line (crit prints "~"). */
  continued: boolean;
}
export interface RssRow {
  vaddr: bigint;
  nr_pages: bigint;
  vmas: RssVma[];
}
export interface TaskRss {
  pid: number;
  entries: RssRow[];
}

/** Pages of a pagemap entry: nr_pages (u64, CRIU ≥ 3.x) or the old 32-bit field. */
function entryPages(pm: CritEntry): bigint {
  return pm.nr_pages !== undefined ? big(pm.nr_pages) : big(pm.compat_nr_pages);
}

export async function collectRss(d: ImageDir): Promise<TaskRss[]> {
  const out: TaskRss[] = [];
  for (const t of await d.liveTasks()) {
    const mm = await d.first(`mm-${t.pid}.img`);
    const vmas = (mm.vmas as CritEntry[] | undefined) ?? [];
    const pms = (await d.load(`pagemap-${t.pid}.img`)).entries;
    const entries: RssRow[] = [];
    // walk pagemap entries and VMAs together, as crit's explore_rss does
    let vmi = 0;
    let pvmi = -1;
    for (const pm of pms.slice(1)) {
      const vaddr = big(pm.vaddr);
      const nr = entryPages(pm);
      while (vmi < vmas.length && big(vmas[vmi]!.end) <= vaddr) vmi++;
      const pme = vaddr + (nr << PAGE_SHIFT);
      const row: RssRow = { vaddr, nr_pages: nr, vmas: [] };
      while (vmi < vmas.length && big(vmas[vmi]!.start) < pme) {
        const vma = vmas[vmi]!;
        if (vmi === pvmi) row.vmas.push({ start: big(vma.start), pages: (big(vma.end) - big(vma.start)) >> PAGE_SHIFT, continued: true });
        else {
          const r: RssVma = { start: big(vma.start), pages: (big(vma.end) - big(vma.start)) >> PAGE_SHIFT, continued: false };
          if (num(vma.status) & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) r.file = await d.fileName('REG', num(vma.shmid), true);
          row.vmas.push(r);
          pvmi = vmi;
        }
        vmi++;
      }
      vmi--;
      if (vmi < 0) vmi = 0;
      entries.push(row);
    }
    out.push({ pid: t.pid, entries });
  }
  return out;
}

export function renderRss(rows: TaskRss[]): string {
  let s = '';
  for (const t of rows) {
    s += `${t.pid}\n`;
    for (const e of t.entries) {
      const pstr = `\t${hex(e.vaddr)} / ${String(e.nr_pages).padEnd(8)}`;
      let vstr = '';
      for (const v of e.vmas) {
        if (v.continued) vstr += ' ~';
        else {
          vstr += ` ${hex(v.start).padStart(8, '0')} / ${String(v.pages).padEnd(8)}`;
          if (v.file !== undefined) vstr += ' ' + v.file;
        }
        vstr += '\n\t' + ' '.repeat(23);
      }
      s += pstr.padEnd(24) + vstr + '\n';
    }
  }
  return s;
}

// ---------------------------------------------------------------- sk

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

// ---------------------------------------------------------------- tree

export interface TreeNode {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
  threads: number[];
  exe: string;
  memory: { vmas: number; mapped_bytes: bigint; dumped_pages: bigint; dumped_bytes: bigint };
  cwd: string;
  root: string;
  files: FdRow[];
  children: TreeNode[];
}

async function dumpedPages(d: ImageDir, pid: number): Promise<bigint> {
  const pm = await d.tryLoad(`pagemap-${pid}.img`);
  let n = 0n;
  for (const e of pm?.entries.slice(1) ?? []) {
    const flags = e.flags;
    let inImage: boolean;
    if (flags === undefined) inImage = !e.in_parent;
    else {
      const f = num(flags);
      inImage = !!(f & PE_PRESENT) && !(f & PE_PARENT);
    }
    if (inImage) n += entryPages(e);
  }
  return n;
}

export async function collectTree(d: ImageDir): Promise<TreeNode[]> {
  const nodes = new Map<number, TreeNode>();
  const roots: TreeNode[] = [];
  const live = new Set((await d.liveTasks()).map((t) => t.pid));
  for (const { task } of await treeOrder(d)) {
    if (!live.has(task.pid)) continue; // zombies: ps lists them
    const mm = await d.first(`mm-${task.pid}.img`);
    const vmas = (mm.vmas as CritEntry[] | undefined) ?? [];
    let mapped = 0n;
    for (const v of vmas) mapped += big(v.end) - big(v.start);
    const pages = await dumpedPages(d, task.pid);
    const fs = await d.first(`fs-${task.pid}.img`);
    const node: TreeNode = {
      pid: task.pid,
      ppid: task.ppid,
      pgid: task.pgid,
      sid: task.sid,
      comm: await comm(d, task.pid),
      threads: task.threads,
      exe: await d.fileName('REG', num(mm.exe_file_id), true),
      memory: { vmas: vmas.length, mapped_bytes: mapped, dumped_pages: pages, dumped_bytes: pages << PAGE_SHIFT },
      cwd: await d.fileName('REG', num(fs.cwd_id)),
      root: await d.fileName('REG', num(fs.root_id)),
      files: await fdsOf(d, task.pid),
      children: [],
    };
    nodes.set(node.pid, node);
    const parent = nodes.get(task.ppid);
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  return roots;
}

/** 1536 → "1.5 KiB", like `ls -h` but with binary units spelled out. */
export function humanBytes(n: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function renderTree(roots: TreeNode[]): string {
  let s = '';
  const node = (n: TreeNode, prefix: string, head: string, childPrefix: string): void => {
    const th = n.threads.length;
    s += `${prefix}${head}${n.comm} (pid ${n.pid}, pgid ${n.pgid}, sid ${n.sid}, ${th} thread${th === 1 ? '' : 's'})\n`;
    const items: ((p: string, last: boolean) => void)[] = [];
    const line = (text: string) => (p: string, last: boolean) => {
      s += `${p}${last ? '└── ' : '├── '}${text}\n`;
    };
    items.push(line(`exe: ${n.exe}`));
    const m = n.memory;
    items.push(line(`memory: ${humanBytes(m.mapped_bytes)} mapped in ${m.vmas} VMAs, ${m.dumped_pages} pages dumped (${humanBytes(m.dumped_bytes)})`));
    items.push((p, last) => {
      s += `${p}${last ? '└── ' : '├── '}files: ${n.files.length} open, cwd ${n.cwd}, root ${n.root}\n`;
      const fp = p + (last ? '    ' : '│   ');
      n.files.forEach((f, i) => {
        s += `${fp}${i === n.files.length - 1 ? '└── ' : '├── '}${f.fd}: ${f.file}\n`;
      });
    });
    for (const c of n.children) {
      items.push((p, last) => node(c, p, last ? '└── ' : '├── ', p + (last ? '    ' : '│   ')));
    }
    items.forEach((it, i) => it(childPrefix, i === items.length - 1));
  };
  for (const r of roots) node(r, '', '', '');
  return s;
}

// ---------------------------------------------------------------- dispatch

export async function collectView(d: ImageDir, view: View): Promise<unknown> {
  switch (view) {
    case 'ps':
      return collectPs(d);
    case 'fds':
      return collectFds(d);
    case 'mems':
      return collectMems(d);
    case 'rss':
      return collectRss(d);
    case 'sk':
      return collectSk(d);
    case 'tree':
      return collectTree(d);
  }
}

export function renderView(view: View, data: unknown): string {
  switch (view) {
    case 'ps':
      return renderPs(data as PsRow[]);
    case 'fds':
      return renderFds(data as TaskFds[]);
    case 'mems':
      return renderMems(data as TaskMems[]);
    case 'rss':
      return renderRss(data as TaskRss[]);
    case 'sk':
      return renderSk(data as TaskSocks[]);
    case 'tree':
      return renderTree(data as TreeNode[]);
  }
}

const HEX_KEYS = new Set(['start', 'end', 'vaddr', 'pgoff']);

/** JSON for `--format json`: addresses as "0x…" hex strings, counts and sizes as numbers. */
export function viewJson(data: unknown): string {
  return (
    JSON.stringify(
      data,
      (k, v) => {
        if (typeof v !== 'bigint') return v;
        return HEX_KEYS.has(k) ? toHex(v) : Number(v);
      },
      2,
    ) + '\n'
  );
}
