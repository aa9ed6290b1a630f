/**
 * The state fingerprint of a live process tree: per task what /proc shows (task.ts), its
 * address space (memory.ts) and its descriptors (fds.ts), and across the tree which anonymous
 * pages are one physical page. Plain JSON; two fingerprints compare field by field (compare.ts).
 * The tree is read as it runs: freeze it (or let it idle) for a stable picture.
 */
import { listTasks, readChildren } from '@crtools/procfs';
import { KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_VM, sameKernelObject } from '@crtools/sys';
import { areasOf, pageDigests, sharingCollector, sharingGroups, type AreaPrint } from './memory.js';
import { fdsOf, InodeIds, linksOf, openFiles, type FdPrint } from './fds.js';
import { taskPrint, type TaskPrint } from './task.js';
import { namespacesOf, type NamespacesPrint } from './namespaces.js';

export const FINGERPRINT_SCHEMA = 1;

export interface TaskFingerprint extends TaskPrint {
  areas: AreaPrint[];
  fds: Record<string, FdPrint>;
  /**
   * what the task shares with another process of the tree (kcmp): per kind, the first task in
   * tree order with the same object — its own pid when it has its own
   */
  shares: { files: number; fs: number; vm: number; sighand: number };
}

const SHARED_KINDS = { files: KCMP_FILES, fs: KCMP_FS, vm: KCMP_VM, sighand: KCMP_SIGHAND } as const;

/** per task of the tree, the first task (tree order) holding the same descriptor table, fs, memory, handlers */
function sharesOf(pids: number[]): TaskFingerprint['shares'][] {
  const same = (a: number, b: number, kind: number): boolean => {
    try {
      return sameKernelObject(a, b, kind);
    } catch {
      return false; // gone meanwhile
    }
  };
  return pids.map((pid, i) => {
    const out = { files: pid, fs: pid, vm: pid, sighand: pid };
    for (const [k, kind] of Object.entries(SHARED_KINDS) as [keyof typeof out, number][]) {
      const first = pids.slice(0, i).find((o) => same(o, pid, kind));
      if (first !== undefined) out[k] = first;
    }
    return out;
  });
}

export interface Fingerprint {
  schema: number;
  root: number;
  /** every task of the tree (thread-group leaders), by pid */
  tasks: TaskFingerprint[];
  /** groups of "pid:vaddr" (hex) that are one physical anonymous page */
  sharedPages: string[][];
  /** the same of private huge pages (areas on hugetlbfs), when any are shared */
  sharedHugePages?: string[][];
  /**
   * "pid:vaddr" → content digest of the anonymous pages at addresses where the tree's tasks have
   * different physical pages (see pageDigests): what lets a comparison accept pages that became
   * one by their equal contents. Not a field of its own (contents are not compared).
   */
  pageDigests?: Record<string, string>;
  /** the namespaces the tree has of its own and what they hold (by content, not inode) */
  namespaces?: NamespacesPrint;
}

/** procfs' reader, or [] once the process is gone */
function orNone(read: () => number[]): number[] {
  try {
    return read();
  } catch {
    return [];
  }
}

/** The tree under root: [pid, its threads], parents before children, pid order among siblings. */
export function treeOf(root: number): { pid: number; tids: number[] }[] {
  const out: { pid: number; tids: number[] }[] = [];
  const walk = (pid: number): void => {
    const tids = orNone(() => listTasks(pid));
    if (!tids.length) return;
    out.push({ pid, tids });
    for (const k of orNone(() => readChildren(pid)).sort((a, b) => a - b)) walk(k);
  };
  walk(root);
  return out;
}

/** The fingerprint of the tree rooted at `root`. */
export function fingerprint(root: number): Fingerprint {
  const tree = treeOf(root);
  if (!tree.length) throw Object.assign(new Error(`no such process: ${root}`), { code: 'ESRCH' });
  const ids = new InodeIds();
  // every descriptor's target first, so that fdinfo lines naming another's inode get its id
  const links = tree.map(({ pid }) => linksOf(pid));
  for (const l of links) for (const t of l.values()) ids.of(t.target, t.ino);
  const sharing = sharingCollector();
  const shares = sharesOf(tree.map((t) => t.pid));
  const files = openFiles();
  const tasks = tree.map(({ pid, tids }, i) => ({ ...taskPrint(pid, tids), areas: areasOf(pid, sharing), fds: fdsOf(pid, links[i]!, ids, files, i), shares: shares[i]! }));
  const huge = sharingGroups(sharing, true);
  return {
    schema: FINGERPRINT_SCHEMA, root, tasks, sharedPages: sharingGroups(sharing), ...(huge.length ? { sharedHugePages: huge } : {}),
    pageDigests: pageDigests(sharing), namespaces: namespacesOf(tree.map((t) => t.pid)),
  };
}
