/**
 * The namespaces of a dumped tree, as CRIU 4.2 records them: every namespace met gets an id
 * (criu's own first, 1..8 in NS_KINDS order; then the root's own ones in the order CRIU looks
 * them up), each task's ids-<pid>.img names its namespaces by id, inventory's root_ids names
 * criu's own, and the namespaces of the root that are not criu's are carried in the images
 * (utsns-<id>.img, ipcns-var-<id>.img, the SysV objects in ipcns-shm/sem/msg-<id>.img, the
 * network namespace's devices, addresses, routes, rules, tables and sysctls: netns.ts; the
 * mount namespace's mounts in mountpoints-<id>.img with its tmpfs contents: mounts.ts; the time
 * namespace's clocks as its tasks read them in timens-<id>.img; the user namespace's uid and gid
 * maps in userns-<id>.img, the ids of the images then written as they are inside it) and made
 * again for the root at restore. A root in a pid namespace of its own must be its init (pid 1
 * there); the tasks are then written with the pids they have inside it (pidView). Every other
 * task must live in the root's namespaces or in criu's, but for its mount namespace: as CRIU 4.2,
 * each mount namespace a task below the root made (unshare) is dumped as the root's is, in its
 * own mountpoints-<id>.img (ids given as CRIU meets them: after the root's, in tree order); the
 * restore has the first task living in it unshare it from its parent's and shapes it. Each
 * network namespace a task below the root made or entered is dumped as the root's is
 * (netdev/netns/ifaddr...-<id>.img, ids in tree order), its sockets looked up there; the restore
 * makes them all and puts each task in its own. A task in a third namespace of another kind is
 * refused by name ("nested namespaces").
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import path from 'node:path';
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { msgPayload, semPayload, writeImageFile, type Entry } from '@crtools/images';
import { NS_KINDS, type NsKind } from '@crtools/images/facts';
import { type IdExtent, idInside, readGidMap, readUidMap, innermostIds, readTimensOffsets, timespecAdd, type Timespec, readStat, IPC_VAR_SYSCTLS, parseIpcSysctl, parseSysctlString, parseSysvipc, readMountinfo, readNamespaces, SYSVIPC_FILES, UTS_FILES, type SysvipcRecord, type HugetlbDev } from '@crtools/procfs';
import { clockNow, CLOCK_BOOTTIME, CLOCK_MONOTONIC, namespaceFiles, namespaceRelative, netnsIdOf, readSysvObjects, setSocketNamespace, SHM_HUGETLB, type SysvContents } from '@crtools/sys';
import { TreeMounts, type MountOptions } from './mounts.js';
import { NetNamespaceDump, type SavedNetTables } from './netns.js';
import type { TunLinks } from '@crtools/files/dump';

/** shm_perm.mode bit of a segment removed while still attached. */
const SHM_DEST = 0o1000;

/** The kinds of namespace of the root's own that a dump carries. */
export const CARRIED_NS: readonly NsKind[] = ['uts', 'ipc', 'pid', 'net', 'mnt', 'time', 'user', 'cgroup'];

/**
 * The kinds a root in a user namespace of its own has of its own only with a pid namespace of its
 * own too: the restore makes the user namespace first, the network and time ones in it, and sets
 * the pids from inside it (restorer userns.ts), which it may only in a pid namespace it owns.
 */
const WITH_PIDNS_UNDER_USERNS: readonly NsKind[] = ['net', 'time'];

/** The uid and gid maps of the root's user namespace, as criu's user namespace sees them. */
export interface UserMaps {
  uid: IdExtent[];
  gid: IdExtent[];
}

/**
 * The order CRIU 4.2 meets the root's namespaces in: pid with the tree, then user, mnt and net
 * (collect_namespaces), then the others with the tasks' ids.
 */
const LOOKUP_ORDER: readonly NsKind[] = ['pid', 'user', 'mnt', 'net', 'ipc', 'uts', 'time', 'cgroup'];

/** The inode of each namespace of a task, by CRIU's namespace name. */
export function nsInodes(pid: number): Map<string, bigint> {
  return new Map(readNamespaces(pid).map((l) => [l.name, l.ino]));
}

/** The kinds of namespace (NS_KINDS) a task lives in that are not criu's own. */
export function foreignNamespaces(pid: number, own: Map<string, bigint> = nsInodes(process.pid)): NsKind[] {
  const theirs = nsInodes(pid);
  return NS_KINDS.filter((n) => theirs.get(n) !== own.get(n));
}

const NS_WHAT: Record<NsKind, string> = {
  pid: 'pid', net: 'network', ipc: 'IPC', uts: 'UTS', time: 'time', mnt: 'mount', user: 'user', cgroup: 'cgroup',
};

/** The refusal of the root's namespaces that are not carried (null: all of them are). */
export function refuseRootNamespaces(pid: number, foreign: readonly NsKind[]): CrtoolsError | null {
  if (foreign.includes('pid')) {
    // as CRIU: the root of a tree in a pid namespace of its own is that namespace's init
    const inner = innermostIds(pid).pid;
    if (inner !== 1) {
      return new CrtoolsError('UNSUPPORTED_NS', `the tree's root ${pid} lives in a pid namespace of its own but is not its init (its pid there is ${inner}): only a tree whose root is the init (pid 1) of its pid namespace can be dumped (as CRIU)`, {
        context: { pid, namespaces: 'pid' }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
  }
  if (foreign.includes('user')) {
    const e = refuseUserNamespace(pid, foreign);
    if (e) return e;
  }
  const off = foreign.filter((k) => !CARRIED_NS.includes(k));
  if (!off.length) return null;
  return new CrtoolsError('UNSUPPORTED_NS', `the tree's root ${pid} lives in ${off.map((k) => NS_WHAT[k]).join(', ')} namespace${off.length > 1 ? 's' : ''} of its own (${off.join(', ')}), not criu's: dumping ${off.length > 1 ? 'these namespaces is' : 'this namespace is'} not supported by crtools yet (crtools issue 17; carried: ${CARRIED_NS.join(', ')})`, {
    context: { pid, namespaces: off.join(',') }, exitCode: ExitCode.UNSUPPORTED,
  });
}

/**
 * A root in a user namespace of its own: that namespace must be a child of criu's (its maps are
 * read, and written again, from criu's), and the root's other namespaces of its own must be owned
 * by it (as CRIU checks: the restore makes them inside it), the network and time ones not yet.
 */
function refuseUserNamespace(pid: number, foreign: readonly NsKind[]): CrtoolsError | null {
  const refuse = (why: string, kinds: string) => new CrtoolsError('UNSUPPORTED_NS', `the tree's root ${pid} lives in a user namespace of its own ${why}`, {
    context: { pid, namespaces: kinds }, exitCode: ExitCode.UNSUPPORTED,
  });
  const user = nsInodes(pid).get('user');
  const mine = nsInodes(process.pid).get('user');
  let parent: bigint | undefined;
  try {
    parent = namespaceRelative(`/proc/${pid}/ns/user`, true);
  } catch {
    parent = undefined;
  }
  if (parent !== mine) return refuse(`that is not a child of criu's (nested user namespaces), which is not supported by crtools yet (crtools issue 17)`, 'user');
  const under = foreign.filter((k) => WITH_PIDNS_UNDER_USERNS.includes(k));
  if (under.length && !foreign.includes('pid')) return refuse(`and ${under.map((k) => NS_WHAT[k]).join(' and ')} namespace${under.length > 1 ? 's' : ''} of its own (${under.join(', ')}) but not a pid namespace of its own: this is not supported by crtools yet (crtools issue 17)`, ['user', ...under].join(','));
  const foreignOwned = foreign.filter((k) => k !== 'user' && k !== 'cgroup' && namespaceRelative(`/proc/${pid}/ns/${k}`) !== user);
  if (foreignOwned.length) return refuse(`but its ${foreignOwned.join(', ')} namespace${foreignOwned.length > 1 ? 's are' : ' is'} not owned by it, which is not supported (as CRIU)`, ['user', ...foreignOwned].join(','));
  return null;
}

/** A network namespace of the tree below the root's (Namespaces.nestedNet). */
export interface NestedNet {
  /** its id in the images (netns-<id>.img, ids' net_ns_id, the sockets' ns_id) */
  id: number;
  /** the first task living in it, in tree order */
  pid: number;
  /** where it is opened (that task's /proc/PID/ns/net) */
  path: string;
  dump?: NetNamespaceDump;
}

/** The namespace ids of a dump, and the namespaces of the root it carries. */
export class Namespaces {
  private readonly own: Map<string, bigint>;
  private readonly root: Map<string, bigint>;
  /** criu's namespaces' ids (inventory's root_ids) */
  readonly ownIds: Record<string, number> = {};
  /** the root's namespaces that are not criu's, by kind → id */
  readonly rootOwn = new Map<NsKind, number>();

  /** netTables: the root's network namespace's tables, saved before the dump locked it (saveNetTables) */
  constructor(readonly rootPid: number, private readonly refusals: Refusals, private readonly opts: MountOptions = { extMnt: [], emptyNet: false }, netTables?: SavedNetTables) {
    this.own = nsInodes(process.pid);
    this.root = nsInodes(rootPid);
    NS_KINDS.forEach((n, i) => (this.ownIds[`${n}_ns_id`] = i + 1));
    let next = NS_KINDS.length + 1;
    for (const k of LOOKUP_ORDER) if (this.root.get(k) !== this.own.get(k)) this.rootOwn.set(k, next++);
    this.nextId = next;
    if (this.rootOwn.has('user')) this.userMaps = { uid: readUidMap(rootPid), gid: readGidMap(rootPid) };
    const net = this.rootOwn.get('net');
    // --external net[INO]:KEY: the caller's namespace, written as its key for the restore to join
    if (net !== undefined) this.netExtKey = opts.extNet?.get(Number(this.root.get('net')));
    // --empty-ns net: the namespace is made empty at restore, its contents are not dumped
    if (net !== undefined && !opts.emptyNet && this.netExtKey === undefined) this.net = new NetNamespaceDump(rootPid, net, refusals, undefined, netTables);
  }

  /** the next namespace id to give */
  private nextId: number;

  /** each task's namespace inodes, read once: the tree is frozen (no task enters or makes one meanwhile) */
  private readonly inodes = new Map<number, Map<string, bigint>>();

  private inodesOf(pid: number): Map<string, bigint> {
    let m = this.inodes.get(pid);
    if (!m) this.inodes.set(pid, (m = nsInodes(pid)));
    return m;
  }

  /**
   * The mount namespaces of the tree below the root's (neither criu's nor the root's), by inode:
   * the id the images give it, the first task living in it (which made it: the restore has it
   * unshare the namespace from its parent's) and that task's parent, and its mounts once read.
   */
  readonly nestedMnt = new Map<bigint, { id: number; pid: number; parentPid: number; mounts?: TreeMounts }>();

  /**
   * The network namespaces of the tree below the root's (neither criu's nor the root's), by
   * inode: the id the images give it, the first task living in it (tree order: the one that made
   * it, or the first to enter it) and its dump once read by check().
   */
  readonly nestedNet = new Map<bigint, NestedNet>();

  /**
   * The tree's tasks (pstree order, parents first): the network and mount namespaces below the
   * root's get their ids, as CRIU 4.2 meets them (a task's network namespace after its pid one,
   * its mount namespace after its IPC, UTS and time ones, which are the root's or criu's here).
   * A task may live in another network namespace than its parent's, one of the tree's (the
   * restore makes them all first and puts each task in its own: setns); a task living in a
   * nested mount namespace whose parent does not was put there (setns), which the restore does
   * not do: refused by name.
   */
  collectNested(tasks: readonly { pid: number; ppid: number; zombie?: boolean }[]): void {
    const rootMnt = this.root.get('mnt');
    const ownMnt = this.own.get('mnt');
    const rootNet = this.root.get('net');
    const ownNet = this.own.get('net');
    const mntOf = new Map<number, bigint | undefined>();
    for (const t of tasks) {
      if (t.zombie) continue;
      const inos = this.inodesOf(t.pid);
      const net = inos.get('net');
      // (a task in criu's namespace while the root has its own is refused by idsOf)
      if (net !== undefined && net !== rootNet && net !== ownNet && !this.nestedNet.has(net)) {
        this.nestedNet.set(net, { id: this.nextId++, pid: t.pid, path: `/proc/${t.pid}/ns/net` });
      }
      const ino = inos.get('mnt');
      mntOf.set(t.pid, ino);
      const refuse = (why: string) => this.refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `task ${t.pid} lives in ${ino === rootMnt ? 'the root\'s' : ino === ownMnt ? 'criu\'s' : 'a nested'} mount namespace (mnt:[${ino}]) ${why}`, {
        context: { pid: t.pid, namespaces: 'mnt' }, exitCode: ExitCode.UNSUPPORTED,
      }));
      const parentMnt = t === tasks[0] ? undefined : mntOf.get(t.ppid);
      if (ino === undefined || ino === rootMnt || ino === ownMnt) {
        // (a task forked before its parent unshared one, or one that went back: setns)
        if (parentMnt !== undefined && parentMnt !== ino && ino === rootMnt) refuse(`but its parent ${t.ppid} lives in another, which the restore does not do (a task is born in its parent's, or makes one below it)`);
        continue;
      }
      const known = this.nestedMnt.get(ino);
      if (!known) {
        this.nestedMnt.set(ino, { id: this.nextId++, pid: t.pid, parentPid: t.ppid });
      } else if (mntOf.get(t.ppid) !== ino) {
        refuse(`that task ${known.pid} lives in too, but its parent ${t.ppid} does not (it entered it: setns), which the restore does not do (it has the first task of a namespace make it, its children inherit it)`);
      }
    }
  }

  /** Does task pid live in one of the mount namespaces below the root's? */
  livesNested(pid: number): boolean {
    const ino = this.inodesOf(pid).get('mnt');
    return ino !== undefined && this.nestedMnt.has(ino);
  }

  /** the maps of the root's own user namespace (undefined: it lives in criu's) */
  readonly userMaps?: UserMaps;

  /** A uid as the root's user namespace sees it (crtools sees `id`; unchanged in criu's), as CRIU writes owners. */
  uidInside(id: number): number {
    return this.userMaps ? idInside(this.userMaps.uid, id) : id;
  }

  /** A gid as the root's user namespace sees it. */
  gidInside(id: number): number {
    return this.userMaps ? idInside(this.userMaps.gid, id) : id;
  }

  /** the key of the root's network namespace when the caller named it external (net[INO]:KEY) */
  private readonly netExtKey?: string;

  /** the root's own network namespace, dumped (undefined: it lives in criu's, or --empty-ns net) */
  private readonly net?: NetNamespaceDump;

  /**
   * The root's own network namespace is where the tree's sockets are looked up (sock_diag) from
   * now on, until release().
   */
  socketsInside(): void {
    if (this.rootOwn.has('net')) setSocketNamespace(`/proc/${this.rootPid}/ns/net`);
  }

  /**
   * The network namespace below the root's a socket was made in (its inode, SIOCGSKNS), or
   * undefined for any other (the root's: where sockets are looked up by default).
   */
  nestedNetOf(ino: bigint): NestedNet | undefined {
    return this.nestedNet.get(ino);
  }

  /**
   * The tree's network namespaces each knows the others by (RTM_GETNSID with the other's file:
   * the ids its devices' IFLA_LINK_NETNSID use), then the links whose peer or lower device is in
   * another namespace: a veth whose peer is in another of the tree's (the veth there at the index
   * IFLA_LINK names, naming this one back) is carried, as CRIU 4.2 carries it (peer_nsid); a
   * macvlan on a device of another of the tree's, and a veth of a nested namespace whose peer is
   * outside the tree (the restore names such a peer only for the root's namespace: --veth-pair),
   * are refused by name.
   */
  private checkVethPeers(): void {
    const all: { what: string; pid: number; id: number; dump: NetNamespaceDump; nested: boolean }[] = [
      ...(this.net ? [{ what: `the tree's network namespace (root ${this.rootPid})`, pid: this.rootPid, id: this.rootOwn.get('net')!, dump: this.net, nested: false }] : []),
      ...[...this.nestedNet.values()].flatMap((n) => (n.dump ? [{ what: `the network namespace task ${n.pid} lives in`, pid: n.pid, id: n.id, dump: n.dump, nested: true }] : [])),
    ];
    if (all.length > 1) {
      const fds = all.map((b) => openSync(b.dump.path, 'r'));
      try {
        for (const a of all) {
          const peers = new Map<number, number>();
          all.forEach((b, k) => {
            if (b === a) return;
            const nsid = netnsIdOf(a.dump.path, fds[k]!);
            if (nsid !== undefined) peers.set(nsid, b.id);
          });
          a.dump.setPeers(peers);
        }
      } finally {
        for (const fd of fds) closeSync(fd);
      }
    }
    for (const a of all) {
      for (const l of a.dump.crossLinks()) {
        const peerId = a.dump.peerId(l.linkNetnsid!);
        const peer = all.find((b) => b.id === peerId);
        let why: string | undefined;
        if (peer && l.kind !== 'veth') why = `${l.kind ?? 'device'} ${l.name} on a device of ${peer.what}`;
        else if (peer && !peer.dump.crossLinks().some((m) => m.kind === 'veth' && m.ifindex === l.link && m.link === l.ifindex)) why = `veth ${l.name} whose peer (index ${l.link} in ${peer.what}) is not found there`;
        else if (!peer && a.nested) why = `${l.kind ?? 'device'} ${l.name} whose peer or lower device is outside the tree (named at restore only for the root's namespace)`;
        if (why) {
          this.refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `${a.what} holds ${why}, which crtools does not carry (crtools issue 17)`, {
            context: { pid: a.pid, namespaces: 'net' }, exitCode: ExitCode.UNSUPPORTED,
          }));
        }
      }
    }
  }

  /** The sockets' namespace back to criu's. */
  release(): void {
    if (this.rootOwn.has('net')) setSocketNamespace(undefined);
  }

  /**
   * The id the images give namespace `ino` of `kind` (a namespace file's): one of the root's own
   * or one of criu's; undefined for any other. (Whether a task of the tree lives in it is the
   * caller's to ask.)
   */
  idOf(kind: NsKind, ino: bigint): number | undefined {
    const rootId = this.rootOwn.get(kind);
    if (rootId !== undefined && ino === this.root.get(kind)) return rootId;
    if (kind === 'net' && this.nestedNet.has(ino)) return this.nestedNet.get(ino)!.id;
    return ino === this.own.get(kind) ? this.ownIds[`${kind}_ns_id`] : undefined;
  }

  /** ids-<pid>.img's namespace ids of task pid; a task in a namespace neither criu's nor the root's is refused. */
  idsOf(pid: number): Record<string, number> {
    const theirs = this.inodesOf(pid);
    const ids: Record<string, number> = {};
    const nested: NsKind[] = [];
    // a task whose children would be born in another time namespace (it unshared one and has
    // not forked since) holds a namespace nothing would make again (as CRIU: refused)
    if (theirs.has('time_for_children') && theirs.get('time_for_children') !== theirs.get('time')) {
      this.refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `task ${pid} made a time namespace for its children (time_for_children is not its own time namespace), which is not supported (as CRIU: nested time namespaces)`, {
        context: { pid, namespaces: 'time' }, exitCode: ExitCode.UNSUPPORTED,
      }));
    }
    for (const k of NS_KINDS) {
      const ino = theirs.get(k);
      const rootId = this.rootOwn.get(k);
      const sub = ino === undefined ? undefined : k === 'mnt' ? this.nestedMnt.get(ino) : k === 'net' ? this.nestedNet.get(ino) : undefined;
      if (rootId !== undefined && ino === this.root.get(k)) ids[`${k}_ns_id`] = rootId;
      else if (sub) ids[`${k}_ns_id`] = sub.id;
      else {
        if (ino !== this.own.get(k)) nested.push(k);
        ids[`${k}_ns_id`] = this.ownIds[`${k}_ns_id`]!;
      }
    }
    if (nested.length) {
      this.refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `task ${pid} lives in nested namespaces (${nested.join(', ')}: neither criu's nor the root's), which are not supported (as CRIU)`, {
        context: { pid, namespaces: nested.join(',') }, exitCode: ExitCode.UNSUPPORTED,
      }));
    }
    return ids;
  }

  /** The mounts of the root's mount namespace, read by check(). */
  private mounts: TreeMounts | undefined;

  /** the mounts of the mount namespaces below the root's, read by check() */
  private nestedMounts(): TreeMounts[] {
    return [...this.nestedMnt.values()].flatMap((n) => (n.mounts ? [n.mounts] : []));
  }

  /** the mounts of the root's own mount namespace and of those below it */
  private allMounts(): TreeMounts[] {
    return [...(this.mounts ? [this.mounts] : []), ...this.nestedMounts()];
  }

  /** The mount ids of the root's own mount namespace and of those below it (undefined: the tree has none but criu's). */
  treeMountIds(): Set<number> | undefined {
    const all = this.allMounts();
    return all.length ? new Set(all.flatMap((t) => t.list.map((m) => m.mntId))) : undefined;
  }

  /** The mount ids of the mount namespaces below the root's (a file there is opened through a task living in it). */
  nestedMountIds(): Set<number> {
    return new Set(this.nestedMounts().flatMap((t) => t.list.map((m) => m.mntId)));
  }

  /**
   * The mounts of filesystem `sdev` (the kernel's encoding: major << 20 | minor) in the mount
   * namespaces below the root's, whole-filesystem ones first: each reached through a task living
   * there (/proc/PID/root/MOUNTPOINT), with its mount id.
   */
  nestedMountsOf(sdev: number): { dir: string; mntId: number }[] {
    const [major, minor] = [sdev >>> 20, sdev & 0xfffff];
    return this.nestedMounts()
      .flatMap((t) => t.list.filter((m) => m.devMajor === major && m.devMinor === minor).map((m) => ({ m, pid: t.rootPid })))
      .sort((a, b) => Number(b.m.root === '/') - Number(a.m.root === '/'))
      .map(({ m, pid }) => ({ dir: `/proc/${pid}/root${m.mountPoint}`, mntId: m.mntId }));
  }

  /** The mount ids of the tree's own read-only mounts the restore makes anew (undefined: the tree has no namespace but criu's). */
  readOnlyOwnMountIds(): Set<number> | undefined {
    const all = this.allMounts();
    return all.length ? new Set(all.flatMap((t) => [...t.readOnlyOwn()])) : undefined;
  }

  /** The SysV objects of the root's IPC namespace with their contents, read by check(). */
  private sysv: { kind: 'shm' | 'sem' | 'msg'; r: SysvipcRecord; c: SysvContents }[] = [];
  /** SysV segments on huge pages: id → ipc_shm_entry hugetlb_flag */
  private shmHugetlb = new Map<number, number>();

  /**
   * What the carried namespaces hold that is not carried yet, refused by name: SysV shared
   * memory on a device neither the shmem one (`shmemDev`) nor one of huge pages (`hugetlbDevs`:
   * SHM_HUGETLB segments are carried, with their page size), network devices other than
   * loopback. The objects of the root's IPC namespace and the state of its network namespace
   * are read here, on the frozen tree, and written by write().
   */
  check(shmemDev?: { major: number; minor: number }, hugetlbDevs: readonly HugetlbDev[] = []): void {
    this.net?.check();
    for (const n of this.nestedNet.values()) {
      n.dump = new NetNamespaceDump(n.pid, n.id, this.refusals, `the network namespace task ${n.pid} lives in (below the root's)`);
      n.dump.check();
    }
    this.checkVethPeers();
    if (this.rootOwn.has('mnt')) {
      this.mounts = new TreeMounts(this.rootPid, this.refusals, this.opts);
      this.mounts.check();
    }
    // the nested ones, each against the namespace it was made from (parents' first: tree order)
    const devs = (l: readonly { devMajor: number; devMinor: number }[]) => l.map((m) => `${m.devMajor}:${m.devMinor}`);
    if (this.nestedMnt.size) {
      // (criu's and the root's devices, read once; each nested namespace's are added as it is read)
      const before = [...devs(readMountinfo(process.pid)), ...devs(this.mounts?.list ?? [])];
      const externalAt = new Set((this.mounts?.list ?? []).filter((m) => this.mounts!.external.has(m.mntId)).map((m) => m.mountPoint));
      for (const n of this.nestedMnt.values()) {
        const elsewhere = new Set([...before, ...this.nestedMounts().flatMap((t) => devs(t.list))]);
        n.mounts = new TreeMounts(n.pid, this.refusals, { ...this.opts, extMnt: [], autoExt: undefined }, { parentPid: n.parentPid, elsewhere, externalAt });
        n.mounts.check();
      }
    }
    if (!this.rootOwn.has('ipc')) return;
    const kinds = ['shm', 'sem', 'msg'] as const;
    const lists = namespaceFiles(this.rootPid, 'ipc', { reads: kinds.map((k) => SYSVIPC_FILES[k]) }).map(parseSysvipc);
    const objs = kinds.flatMap((kind, i) => lists[i]!.map((r) => ({ kind, r })));
    const contents = objs.length ? readSysvObjects(this.rootPid, objs.map(({ kind, r }) => ({ kind, id: r.id }))) : [];
    this.sysv = objs.map((o, i) => ({ ...o, c: contents[i]! }));
    for (const { kind, r, c } of this.sysv) {
      // removed while attached: it would come back as a segment anyone may still find
      if (kind === 'shm' && r.mode & SHM_DEST) {
        this.refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `the tree's IPC namespace (root ${this.rootPid}) holds SysV shared memory ${r.id} removed (IPC_RMID) while attached, which is not supported by crtools yet (crtools issue 17)`, {
          context: { pid: this.rootPid, namespaces: 'ipc' }, exitCode: ExitCode.UNSUPPORTED,
        }));
      }
      const huge = kind === 'shm' ? hugetlbDevs.find((d) => d.major === c.devMajor && d.minor === c.devMinor) : undefined;
      // as CRIU 4.2 records it: SHM_HUGETLB with the page size's bits
      if (huge) this.shmHugetlb.set(r.id, SHM_HUGETLB | huge.sizeFlag);
      else if (kind === 'shm' && shmemDev && (c.devMajor !== shmemDev.major || c.devMinor !== shmemDev.minor)) {
        this.refusals.refuse(new CrtoolsError('UNSUPPORTED_NS', `the tree's IPC namespace (root ${this.rootPid}) holds SysV shared memory ${r.id} (key 0x${r.key.toString(16)}) on a device that is neither shared memory's nor one of huge pages, which is not supported by crtools`, {
          context: { pid: this.rootPid, namespaces: 'ipc' }, exitCode: ExitCode.UNSUPPORTED,
        }));
      }
    }
  }

  /**
   * The SysV segments of the root's own IPC namespace, id → the length an attach of it spans (its
   * size rounded up to its pages: huge ones for SHM_HUGETLB); undefined: the IPC namespace is criu's.
   */
  sysvAttachLengths(hugetlbDevs: readonly HugetlbDev[] = []): Map<number, bigint> | undefined {
    if (!this.rootOwn.has('ipc')) return undefined;
    return new Map(this.sysv.filter((o) => o.kind === 'shm').map((o) => {
      const huge = hugetlbDevs.find((d) => d.major === o.c.devMajor && d.minor === o.c.devMinor);
      const unit = huge ? 1n << BigInt(huge.sizeFlag >>> 26) : 4096n;
      return [o.r.id, (BigInt(o.c.size!) + unit - 1n) & ~(unit - 1n)];
    }));
  }

  /**
   * The images of the root's carried namespaces: utsns-<id>.img, ipcns-var-<id>.img and the
   * IPC namespace's SysV objects (ipcns-shm/sem/msg-<id>.img; a segment's contents go to
   * `shmPages(shmid, contents)`, as CRIU 4.2 keeps them: pagemap-shmem-<shmid>.img + pages).
   */
  async write(dir: string, shmPages: (shmid: number, contents: Buffer) => Promise<void>, tunLinks?: TunLinks): Promise<string[]> {
    const written: string[] = [];
    const user = this.rootOwn.get('user');
    if (user !== undefined && this.userMaps) {
      const ext = (m: IdExtent[]) => m.map((e) => ({ first: e.first, lower_first: e.lowerFirst, count: e.count }));
      const f = `userns-${user}.img`;
      await writeImageFile(path.join(dir, f), { magic: 'USERNS', entries: [{ uid_map: ext(this.userMaps.uid), gid_map: ext(this.userMaps.gid) }] });
      written.push(f);
    }
    const uts = this.rootOwn.get('uts');
    if (uts !== undefined) {
      const [nodename, domainname] = namespaceFiles(this.rootPid, 'uts', { reads: [UTS_FILES.nodename, UTS_FILES.domainname] }).map(parseSysctlString);
      const f = `utsns-${uts}.img`;
      await writeImageFile(path.join(dir, f), { magic: 'UTSNS', entries: [{ nodename, domainname }] });
      written.push(f);
    }
    const mnt = this.rootOwn.get('mnt');
    const tmpfsDone = new Set<string>();
    if (mnt !== undefined && this.mounts) written.push(...(await this.mounts.write(dir, mnt, tmpfsDone)));
    for (const n of this.nestedMnt.values()) if (n.mounts) written.push(...(await n.mounts.write(dir, n.id, tmpfsDone)));
    const ipc = this.rootOwn.get('ipc');
    if (ipc !== undefined) {
      // a sysctl this kernel does not have is not kept (auto_msgmni: 0, as CRIU writes it)
      const present = IPC_VAR_SYSCTLS.filter((s) => existsSync(s.path));
      const texts = namespaceFiles(this.rootPid, 'ipc', { reads: present.map((s) => s.path) });
      const e: Record<string, unknown> = { auto_msgmni: 0 };
      present.forEach((s, i) => {
        const v = parseIpcSysctl(s.type, texts[i]!);
        // the *_next_id files read -1 until set, which cannot be written back: not kept
        if (s.field.endsWith('_next_id') && v === 0xffffffff) return;
        e[s.field] = v;
      });
      const f = `ipcns-var-${ipc}.img`;
      await writeImageFile(path.join(dir, f), { magic: 'IPC_VAR', entries: [e] });
      written.push(f);
      written.push(...(await this.writeSysv(dir, ipc, shmPages)));
    }
    if (this.net) written.push(...(await this.net.write(dir, tunLinks)));
    for (const n of this.nestedNet.values()) if (n.dump) written.push(...(await n.dump.write(dir, tunLinks)));
    const net = this.rootOwn.get('net');
    if (net !== undefined && this.netExtKey !== undefined) {
      // as CRIU: the namespace's image holds only the key the restore looks the namespace up by
      const f = `netns-${net}.img`;
      await writeImageFile(path.join(dir, f), { magic: 'NETNS', entries: [{ ext_key: this.netExtKey }] });
      written.push(f);
    }
    return written;
  }

  /**
   * The clocks of the dump as CRIU 4.2 writes them: CLOCK_MONOTONIC and CLOCK_BOOTTIME as the
   * tree's tasks read them, in timens-<id>.img when the root lives in a time namespace of its own
   * (the host's clocks plus that namespace's offsets), else criu's own in timens-0.img.
   */
  async writeClocks(dir: string): Promise<string> {
    const id = this.rootOwn.get('time');
    const f = `timens-${id ?? 0}.img`;
    let monotonic: Timespec = this.clock(CLOCK_MONOTONIC);
    let boottime: Timespec = this.clock(CLOCK_BOOTTIME);
    if (id !== undefined) {
      // crtools may itself live in a time namespace: its clocks less its offsets are the host's
      const mine = readTimensOffsets(process.pid);
      const theirs = readTimensOffsets(this.rootPid);
      monotonic = timespecAdd(monotonic, theirs.monotonic, mine.monotonic);
      boottime = timespecAdd(boottime, theirs.boottime, mine.boottime);
    }
    const ts = (t: Timespec) => ({ tv_sec: t.sec, tv_nsec: t.nsec });
    await writeImageFile(path.join(dir, f), { magic: 'TIMENS', entries: [{ monotonic: ts(monotonic), boottime: ts(boottime) }] });
    return f;
  }

  private clock(id: number): Timespec {
    const c = clockNow(id);
    return { sec: c.tv_sec, nsec: c.tv_nsec };
  }

  /** The SysV objects of the root's IPC namespace (with their contents, values, messages). */
  private async writeSysv(dir: string, ipc: number, shmPages: (shmid: number, contents: Buffer) => Promise<void>): Promise<string[]> {
    const kinds = ['shm', 'sem', 'msg'] as const;
    // owners as the namespace's tasks see them (as CRIU: userns_uid)
    const desc = (r: SysvipcRecord) => ({ key: r.key, uid: this.uidInside(r.uid), gid: this.gidInside(r.gid), cuid: this.uidInside(r.cuid), cgid: this.gidInside(r.cgid), mode: r.mode, id: r.id });
    const entries: Record<string, Entry[]> = { shm: [], sem: [], msg: [] };
    for (const { kind, r, c } of this.sysv) {
      if (kind === 'shm') {
        await shmPages(r.id, c.data!);
        const hugetlb = this.shmHugetlb.get(r.id);
        entries.shm!.push({ desc: desc(r), size: BigInt(c.size!), ...(hugetlb !== undefined ? { hugetlb_flag: hugetlb } : {}), in_pagemaps: true });
      } else if (kind === 'sem') {
        entries.sem!.push({ desc: desc(r), nsems: c.values!.length, extra: semPayload(c.values!) });
      } else {
        const msgs = c.msgs!.map(([mtype, data]) => ({ msg: { mtype, msize: data.length }, data }));
        entries.msg!.push({ desc: desc(r), qbytes: c.qbytes!, qnum: msgs.length, extra: msgPayload(msgs) });
      }
    }
    const magic = { shm: 'IPCNS_SHM', sem: 'IPCNS_SEM', msg: 'IPCNS_MSG' } as const;
    const written: string[] = [];
    for (const kind of kinds) {
      const f = `ipcns-${kind}-${ipc}.img`;
      await writeImageFile(path.join(dir, f), { magic: magic[kind], entries: entries[kind]! });
      written.push(f);
    }
    return written;
  }
}

/**
 * The pids a dump writes: a tree in criu's pid namespace is written with the pids crtools sees;
 * a tree whose root is the init of a pid namespace of its own, with the pids, groups and
 * sessions its tasks have inside it (as CRIU 4.2 writes pstree.img and the per-task images).
 */
export class PidView {
  private readonly map = new Map<number, { pid: number; pgid: number; sid: number }>();
  /** process groups of the tree: as crtools sees them → inside */
  private readonly groups = new Map<number, number>();
  readonly own: boolean;

  constructor(rootPid: number, tids: readonly number[]) {
    this.own = nsInodes(rootPid).get('pid') !== nsInodes(process.pid).get('pid');
    if (!this.own) return;
    for (const t of tids) {
      const v = innermostIds({ pid: t, tid: t });
      this.map.set(t, v);
      this.groups.set(readStat(t).pgrp, v.pgid);
    }
  }

  /** The id written for a task or thread (or, group: a process group of the tree) crtools sees as `id`. */
  inner(id: number, group: boolean): number {
    if (!this.own) return id;
    return group ? (this.groups.get(id) ?? id) : this.pid(id);
  }

  /** The pid (or tid) written for the task crtools sees as `pid`. */
  pid(pid: number): number {
    if (!this.own) return pid;
    const v = this.map.get(pid) ?? innermostIds(pid);
    this.map.set(pid, v);
    return v.pid;
  }

  /** pstree.img's entry of a task (ppid 0 for the root). */
  entry(pid: number, ppid: number, pgid: number, sid: number, threads: readonly number[]): Entry {
    if (!this.own) return { pid, ppid, pgid, sid, threads: [...threads] };
    this.pid(pid);
    const v = this.map.get(pid)!;
    return { pid: v.pid, ppid: ppid ? this.pid(ppid) : 0, pgid: v.pgid, sid: v.sid, threads: threads.map((t) => this.pid(t)) };
  }
}
