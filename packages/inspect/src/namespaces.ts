/**
 * The namespaces of a tree: which kinds the root has of its own (not the inspector's), the
 * state of those it has (UTS names, IPC sysctls and how many SysV objects each list holds), and
 * the tasks that live in a namespace other than the root's. Namespaces are named by what they
 * hold, not by inode (a restore makes them anew).
 */
import { existsSync } from 'node:fs';
import { countSysvipc, IPC_VAR_SYSCTLS, parseSysctlString, readNamespaces, SYSVIPC_FILES, UTS_FILES } from '@crtools/procfs';
import { namespaceFiles } from '@crtools/sys';

export interface NamespacesPrint {
  /** the kinds of namespace the root has of its own (sorted) */
  own: string[];
  uts?: { nodename: string; domainname: string };
  /** the IPC sysctls (file → content) and the number of SysV objects of each kind */
  ipc?: { sysctls: Record<string, string>; sysvipc: Record<string, number> };
  /** pid → the kinds in which the task's namespace is not the root's (only tasks that have any) */
  nested: Record<string, string[]>;
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
    out.ipc = { sysctls, sysvipc };
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
