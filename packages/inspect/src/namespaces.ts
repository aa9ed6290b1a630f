/**
 * The namespaces of a tree: which kinds the root has of its own (not the inspector's), the
 * state of those it has (UTS names, IPC sysctls and how many SysV objects each list holds), and
 * the tasks that live in a namespace other than the root's. Namespaces are named by what they
 * hold, not by inode (a restore makes them anew).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { countSysvipc, IPC_VAR_SYSCTLS, parseSysctlString, parseSysvipc, readNamespaces, SYSVIPC_FILES, UTS_FILES } from '@crtools/procfs';
import { namespaceFiles, readSysvObjects } from '@crtools/sys';

export interface NamespacesPrint {
  /** the kinds of namespace the root has of its own (sorted) */
  own: string[];
  uts?: { nodename: string; domainname: string };
  /**
   * the IPC sysctls (file → content), the number of SysV objects of each kind, and each object
   * (kind, id, key, owner, mode, size, and a digest of its contents, values or messages)
   */
  ipc?: { sysctls: Record<string, string>; sysvipc: Record<string, number>; objects: SysvPrint[] };
  /** pid → the kinds in which the task's namespace is not the root's (only tasks that have any) */
  nested: Record<string, string[]>;
}

/** One SysV object of the tree's IPC namespace. */
export interface SysvPrint {
  kind: 'shm' | 'sem' | 'msg';
  id: number;
  key: number;
  mode: string;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** shm: bytes; sem: semaphores; msg: messages */
  size: number;
  /** sha256 of the segment's bytes, the set's values, or the queue's messages (type and text, in order) */
  digest: string;
}

function sysvObjects(root: number, lists: Record<SysvPrint['kind'], string>): SysvPrint[] {
  const kinds = ['shm', 'sem', 'msg'] as const;
  const objs = kinds.flatMap((kind) => parseSysvipc(lists[kind]).map((r) => ({ kind, r })));
  if (!objs.length) return [];
  const contents = readSysvObjects(root, objs.map(({ kind, r }) => ({ kind, id: r.id })));
  return objs.map(({ kind, r }, i) => {
    const c = contents[i]!;
    const h = createHash('sha256');
    if (kind === 'shm') h.update(c.data!);
    else if (kind === 'sem') h.update(JSON.stringify(c.values));
    else for (const [t, d] of c.msgs!) h.update(`${t}:${d.length}:`).update(d);
    const size = kind === 'shm' ? c.size! : kind === 'sem' ? c.values!.length : c.msgs!.length;
    return { kind, id: r.id, key: r.key, mode: r.mode.toString(8), uid: r.uid, gid: r.gid, cuid: r.cuid, cgid: r.cgid, size, digest: h.digest('hex') };
  });
}

function inodes(pid: number): Map<string, bigint> {
  return new Map(readNamespaces(pid).map((l) => [l.name, l.ino]));
}

export function namespacesOf(pids: number[]): NamespacesPrint {
  const root = pids[0]!;
  const mine = inodes(process.pid);
  const theirs = inodes(root);
  const own = [...theirs.keys()].filter((k) => k !== 'pid_for_children' && k !== 'time_for_children' && theirs.get(k) !== mine.get(k)).sort();
  const out: NamespacesPrint = { own, nested: {} };
  if (own.includes('uts')) {
    const [nodename, domainname] = namespaceFiles(root, 'uts', { reads: [UTS_FILES.nodename, UTS_FILES.domainname] }).map(parseSysctlString);
    out.uts = { nodename: nodename!, domainname: domainname! };
  }
  if (own.includes('ipc')) {
    const present = IPC_VAR_SYSCTLS.filter((s) => existsSync(s.path));
    const kinds = Object.keys(SYSVIPC_FILES) as (keyof typeof SYSVIPC_FILES)[];
    const texts = namespaceFiles(root, 'ipc', { reads: [...present.map((s) => s.path), ...kinds.map((k) => SYSVIPC_FILES[k])] });
    const sysctls: Record<string, string> = {};
    present.forEach((s, i) => (sysctls[s.path] = parseSysctlString(texts[i]!)));
    const sysvipc: Record<string, number> = {};
    kinds.forEach((k, i) => (sysvipc[k] = countSysvipc(texts[present.length + i]!)));
    const lists = Object.fromEntries(kinds.map((k, i) => [k, texts[present.length + i]!])) as Record<SysvPrint['kind'], string>;
    out.ipc = { sysctls, sysvipc, objects: sysvObjects(root, lists) };
  }
  for (const pid of pids.slice(1)) {
    let ns: Map<string, bigint>;
    try {
      ns = inodes(pid);
    } catch {
      continue; // gone meanwhile
    }
    const differ = [...ns.keys()].filter((k) => ns.get(k) !== theirs.get(k)).sort();
    if (differ.length) out.nested[String(pid)] = differ;
  }
  return out;
}
