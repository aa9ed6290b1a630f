/**
 * The namespaces of a tree: which kinds the root has of its own (not the inspector's), the
 * state of those it has (UTS names, IPC sysctls and how many SysV objects each list holds, the
 * network namespace's links, addresses, routes and sysctls, the time namespace's clock offsets,
 * the mount namespace's mounts, the user namespace's maps and what it owns), and
 * the tasks that live in a namespace other than the root's. Namespaces are named by what they
 * hold, not by inode (a restore makes them anew).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { countSysvipc, IPC_VAR_SYSCTLS, readMountinfo, type MountInfo, NET_CONF4, NET_CONF6, NET_IPV4_SYSCTLS, NET_UNIX_CONF, netConfPath, parseSysctlString, parseSysvipc, readNamespaces, readTimensOffsets, SYSVIPC_FILES, UTS_FILES } from '@crtools/procfs';
import { namespaceFiles, namespaceFilesAt, namespaceRelative, netLinks, netnsTool, readSysvObjects } from '@crtools/sys';

export interface NamespacesPrint {
  /** the kinds of namespace the root has of its own (sorted) */
  own: string[];
  uts?: { nodename: string; domainname: string };
  /**
   * the IPC sysctls (file → content), the number of SysV objects of each kind, and each object
   * (kind, id, key, owner, mode, size, and a digest of its contents, values or messages)
   */
  ipc?: { sysctls: Record<string, string>; sysvipc: Record<string, number>; objects: SysvPrint[] };
  net?: NetPrint;
  /**
   * the time namespace's offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME from the host's clocks
   * ("seconds.nanoseconds", /proc/PID/timens_offsets): a restore keeps the tree's clocks going
   * on, so these move by the time the tree was away (compare.ts)
   */
  time?: { monotonic: string; boottime: string };
  /** the mount namespace as the root sees it (mountinfo, by content: see MountPrint) */
  mnt?: MountPrint[];
  /**
   * the root's own user namespace: its uid and gid maps as the inspector sees them
   * (/proc/PID/uid_map, gid_map lines, blanks collapsed), whether its parent is the inspector's
   * user namespace, and which of the root's other namespaces of its own it owns (sorted kinds;
   * the others' owners are elsewhere)
   */
  user?: { uidMap: string[]; gidMap: string[]; childOfOurs: boolean; owns: string[] };
  /** pid → the kinds in which the task's namespace is not the root's (only tasks that have any) */
  nested: Record<string, string[]>;
  /**
   * the network namespaces of the tree below the root's (neither the root's nor the inspector's),
   * each as `net` shows the root's, keyed by the first task (tree order) living in it (absent: none)
   */
  netBelow?: Record<string, NetPrint>;
}

/**
 * The root's own network namespace: its links (name, index, ARPHRD type, kind, flags, MTU,
 * link-layer address), addresses and
 * routes of every table as `ip -j` shows them (without lifetimes and counters), and the
 * sysctls CRIU keeps (file → value; those that cannot be read left out).
 */
export interface NetPrint {
  links: { name: string; ifindex: number; type: number; kind?: string; flags: string; mtu: number; address?: string }[];
  addresses: string[];
  routes: string[];
  sysctls: Record<string, string>;
}

function netOf(root: number): NetPrint {
  const ns = `/proc/${root}/ns/net`;
  const links = netLinks(ns).map((l) => ({
    name: l.name, ifindex: l.ifindex, type: l.type, ...(l.kind ? { kind: l.kind } : {}), flags: `0x${l.flags.toString(16)}`, mtu: l.mtu,
    ...(l.address ? { address: [...l.address].map((b) => b.toString(16).padStart(2, '0')).join(':') } : {}),
  }));
  const ip = (args: string[]): Record<string, unknown>[] => JSON.parse(netnsTool(ns, ['ip', '-j', ...args])!.toString() || '[]');
  const addresses = ip(['addr', 'show']).flatMap((l) => ((l.addr_info as Record<string, unknown>[]) ?? []).map((a) => `${String(l.ifname)} ${String(a.family)} ${String(a.local)}/${String(a.prefixlen)} scope ${String(a.scope)}`)).sort();
  const routes = [...ip(['-4', 'route', 'show', 'table', 'all']), ...ip(['-6', 'route', 'show', 'table', 'all'])]
    .map((r) => ['type', 'dst', 'gateway', 'dev', 'table', 'protocol', 'scope', 'prefsrc', 'metric'].filter((k) => r[k] !== undefined).map((k) => `${k} ${String(r[k])}`).join(' '))
    .sort();
  const files = [
    ...['all', 'default', ...links.map((l) => l.name)].flatMap((d) => [...NET_CONF4.map((n) => netConfPath('ipv4', d, n)), ...NET_CONF6.map((n) => netConfPath('ipv6', d, n))]),
    ...NET_UNIX_CONF, ...NET_IPV4_SYSCTLS,
  ];
  const texts = namespaceFilesAt(ns, 'net', { reads: files, optional: true }, { pid: root });
  const sysctls: Record<string, string> = {};
  files.forEach((f, i) => {
    if (texts[i] !== null) sysctls[f] = parseSysctlString(texts[i]!);
  });
  return { links, addresses, routes, sysctls };
}

/**
 * One mount of the root's mount namespace, as its mountinfo shows it, without what a restore
 * makes anew: mount ids become the parent's mount point, device numbers are left out (a
 * tmpfs made again has another), peer groups (shared:N, master:N) are numbered by first
 * appearance in this list. The list is sorted by mount point, a mount over another after it.
 */
export interface MountPrint {
  mountpoint: string;
  /** where the mount's parent is mounted ('' for the namespace's root mount) */
  parent: string;
  root: string;
  fstype: string;
  source: string;
  options: string;
  super: string;
  /** 'private', or the propagation fields: shared:N, master:N, propagate_from:N, unbindable */
  propagation: string;
}

function mountsOf(root: number): MountPrint[] {
  const all = readMountinfo(root);
  const byId = new Map(all.map((m) => [m.mntId, m]));
  const depth = (m: MountInfo): number => {
    let d = 0;
    for (let p = byId.get(m.parentId); p && d < all.length; p = byId.get(p.parentId)) d++;
    return d;
  };
  const sorted = all.map((m) => ({ m, d: depth(m) })).sort((a, b) => (a.m.mountPoint < b.m.mountPoint ? -1 : a.m.mountPoint > b.m.mountPoint ? 1 : a.d - b.d));
  const groups = new Map<number, number>();
  const group = (n: number) => {
    if (!groups.has(n)) groups.set(n, groups.size + 1);
    return groups.get(n)!;
  };
  return sorted.map(({ m }) => {
    const prop = [
      m.shared !== undefined && `shared:${group(m.shared)}`,
      m.master !== undefined && `master:${group(m.master)}`,
      m.propagateFrom !== undefined && `propagate_from:${group(m.propagateFrom)}`,
      m.unbindable && 'unbindable',
    ].filter(Boolean);
    return {
      mountpoint: m.mountPoint, parent: byId.get(m.parentId)?.mountPoint ?? '', root: m.root, fstype: m.fsType, source: m.source,
      options: m.mountOptions, super: m.superOptions, propagation: prop.length ? prop.join(' ') : 'private',
    };
  });
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

function userOf(root: number, own: readonly string[], mine: Map<string, bigint>): NonNullable<NamespacesPrint['user']> {
  const lines = (f: string) => readFileSync(`/proc/${root}/${f}`, 'utf8').split('\n').map((l) => l.trim().split(/\s+/).join(' ')).filter(Boolean);
  const user = inodes(root).get('user');
  const owns = own.filter((k) => k !== 'user' && !k.endsWith('_for_children') && namespaceRelative(`/proc/${root}/ns/${k}`) === user).sort();
  return { uidMap: lines('uid_map'), gidMap: lines('gid_map'), childOfOurs: namespaceRelative(`/proc/${root}/ns/user`, true) === mine.get('user'), owns };
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
  if (own.includes('net')) out.net = netOf(root);
  if (own.includes('mnt')) out.mnt = mountsOf(root);
  if (own.includes('user')) out.user = userOf(root, own, mine);
  if (own.includes('time')) {
    const o = readTimensOffsets(root);
    const secs = (t: { sec: bigint; nsec: bigint }) => `${t.sec}.${t.nsec.toString().padStart(9, '0')}`;
    out.time = { monotonic: secs(o.monotonic), boottime: secs(o.boottime) };
  }
  const seenNet = new Set<bigint>();
  for (const pid of pids.slice(1)) {
    let ns: Map<string, bigint>;
    try {
      ns = inodes(pid);
    } catch {
      continue; // gone meanwhile
    }
    const differ = [...ns.keys()].filter((k) => ns.get(k) !== theirs.get(k)).sort();
    if (differ.length) out.nested[String(pid)] = differ;
    const net = ns.get('net');
    if (net !== undefined && net !== theirs.get('net') && net !== mine.get('net') && !seenNet.has(net)) {
      seenNet.add(net);
      (out.netBelow ??= {})[String(pid)] = netOf(pid);
    }
  }
  return out;
}
