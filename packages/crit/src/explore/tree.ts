/** `crit x DIR tree`: the process tree with what each task holds (crtools' own view). */
import { fdsOf, type FdRow } from './fds.js';
import { entryPages } from './rss.js';
import { comm, PAGE_SHIFT, PE_PARENT, PE_PRESENT, treeOrder } from './shared.js';
import { ImageDir, big, num, type CritEntry } from '../image-dir.js';

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
