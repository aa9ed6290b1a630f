/**
 * --join-ns NS:{PID|NS_FILE}[,EXTRA] (criu.8; RPC join_ns): the tree is restored inside namespaces
 * that exist already, the kinds CRIU 4.2 takes: net, uts, ipc, time, user and mnt (pid is refused
 * as CRIU refuses it: --external and --inherit-fd give the caller's). The root is born in them
 * instead of in new ones: the network, UTS and IPC ones the launching thread joins across its
 * clone3; mount, time and user ones, which only a single-threaded process may join, a helper the
 * launcher forks joins before it starts the root (the user one last, taking the UID,GID the
 * option gives inside it, as CRIU; its other new namespaces are then owned by it).
 *
 * What the checkpoint holds of a joined namespace: a UTS or IPC namespace's hostname and SysV
 * objects are put into it, as CRIU does. What cannot be put into a namespace that exists is
 * checked against it, and the restore refused by name (exit 4) where the tasks would find it
 * changed: a network namespace's devices and addresses (the joined one must be the one dumped:
 * its devices and addresses the same; the dump's lock of it, CRIU 4.2's whole-namespace one, is
 * lifted once the tasks are restored, as CRIU lifts it in the root's namespace); a user
 * namespace's maps (the joined one must map the same ids: maps are written once); a time
 * namespace's clocks (those of the joined one must not read earlier than the tasks read at dump
 * time: a tree restored in criu's time namespace sees its clocks go on the same way); a mount
 * namespace's mounts (the joined one must be the one dumped, its mounts with their ids: a tree
 * dumped while it lived in the namespace it joins again). A joined user namespace needs the
 * tree's pids set inside a pid namespace it owns (the tree's own): in criu's, clone3(set_tid)
 * needs privileges there that a task of the joined namespace does not have.
 */
import { closeSync, fstatSync, openSync, readlinkSync, statSync } from 'node:fs';
import { CrtoolsError, ExitCode, type JoinNamespace } from '@crtools/common';
import { ARPHRD_LOOPBACK, clockNow, CLOCK_BOOTTIME, CLOCK_MONOTONIC, IFF_UP, netLinks, netnsTool, NS_TYPE } from '@crtools/sys';
import { formatIdMap, readGidMap, readMountinfo, readTimensOffsets, readUidMap, timespecAdd, type Timespec } from '@crtools/procfs';
import { savedAddresses, type MadeNetNamespace } from './netns.js';
import type { NetPlan, RestorePlan } from './plan.js';

/** A namespace of another process the root is born in: its descriptor, its setns(2) type and its /proc/PID/ns name (a user one: the ids taken inside it). */
export interface JoinedFd {
  fd: number;
  type: number;
  name: string;
  uid?: number;
  gid?: number;
}

export interface JoinedNamespaces {
  /** CLONE_NEW* of the kinds joined (the root is not born in new ones of these) */
  flags: number;
  /** the network namespace joined, as the tree's */
  net?: MadeNetNamespace;
  /** the other namespaces joined, for the launcher */
  fds: JoinedFd[];
  /** each joined namespace as the option gave it (--join-ns KIND:FILE), by kind */
  given: Record<string, string>;
  /** kinds joined that need no setns: the restorer is in that namespace and starts its children in it */
  inPlace: string[];
  close(): void;
}

const CARRIED = ['net', 'uts', 'ipc', 'time', 'user', 'mnt'] as const;
const KNOWN = [...CARRIED, 'pid'];

function usage(msg: string, option: string): CrtoolsError {
  return new CrtoolsError('USAGE', msg, { exitCode: ExitCode.USAGE, context: { option: 'join_ns', value: option } });
}

/** Checks each joined namespace and opens it; undefined when none is asked. */
export function joinNamespaces(list: readonly JoinNamespace[], emptyNs: number, log: { info(l: string): void }): JoinedNamespaces | undefined {
  if (!list.length) return undefined;
  const opened: JoinedFd[] = [];
  const close = () => {
    for (const j of opened.splice(0)) {
      try {
        closeSync(j.fd);
      } catch {
        /* closed */
      }
    }
  };
  const given: Record<string, string> = {};
  const inPlace: string[] = [];
  try {
    let flags = 0;
    for (const j of list) {
      const what = `--join-ns ${j.ns}:${j.file}`;
      if (!KNOWN.includes(j.ns)) throw usage(`${what}: no such namespace kind (${KNOWN.join(', ')})`, j.ns);
      if (j.ns === 'pid') throw usage(`${what}: joining a pid namespace is not supported (as CRIU: --external and --inherit-fd give the caller's)`, j.ns);
      const type = NS_TYPE[j.ns as (typeof CARRIED)[number]];
      if (flags & type) throw usage(`${what}: a ${j.ns} namespace is joined twice`, j.ns);
      if (j.ns === 'net' && emptyNs & type) throw usage(`${what}: conflicting options --join-ns net and --empty-ns net`, j.ns);
      const file = /^\d+$/.test(j.file) ? `/proc/${j.file}/ns/${j.ns}` : j.file;
      let fd: number;
      try {
        fd = openSync(file, 'r');
      } catch (e) {
        throw usage(`${what}: cannot open ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, j.ns);
      }
      opened.push({ fd, type, name: j.ns, ...(j.ns === 'user' ? userIds(j, what) : {}) });
      const link = namespaceOf(fd, j.ns, file);
      if (!link.startsWith(`${j.ns}:[`)) throw usage(`${what}: ${file} is not a ${j.ns} namespace (${link})`, j.ns);
      if (j.ns === 'user' && link === readlinkSync('/proc/self/ns/user')) {
        // (as CRIU: a process cannot enter its own user namespace again, nor need it)
        log.info(`join-ns: ${link} (${file}) is the restorer's own user namespace: nothing to join`);
        closeSync(opened.pop()!.fd);
        continue;
      }
      log.info(`join-ns: the tree is restored in ${link} (${file})`);
      flags |= type;
      given[j.ns] = `--join-ns ${j.ns}:${j.file}`;
      if (j.ns === 'time' && link === readlinkSync('/proc/self/ns/time') && link === readlinkSync('/proc/self/ns/time_for_children')) {
        // (the time namespace the restorer's children are born in: the root is, without a setns;
        // so no helper joins it, and a sibling restore, as RPC asks, takes it. CRIU's libcriu
        // test_join_ns joins this one)
        log.info(`join-ns: ${link} is the restorer's own time namespace, its children's too: the root is born in it`);
        closeSync(opened.pop()!.fd);
        inPlace.push(j.ns);
      }
    }
    const net = opened.find((j) => j.name === 'net');
    return {
      flags,
      ...(net ? { net: { fd: net.fd, path: `/proc/${process.pid}/fd/${net.fd}`, close: () => undefined } } : {}),
      fds: opened.filter((j) => j.name !== 'net'),
      given,
      inPlace,
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

/** A user namespace's extra options UID,GID (either may be empty: the restorer's own), each 0…65535 as CRIU takes them. */
function userIds(j: JoinNamespace, what: string): { uid?: number; gid?: number } {
  if (j.extra === undefined) return {};
  const parts = j.extra.split(',');
  const id = (s: string | undefined): number | undefined => {
    if (s === undefined || s === '') return undefined;
    if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw usage(`${what}: invalid user namespace extra options ${j.extra} (UID,GID: 0 to 65535 each)`, j.ns);
    return Number(s);
  };
  if (parts.length > 2) throw usage(`${what}: invalid user namespace extra options ${j.extra} (UID,GID: 0 to 65535 each)`, j.ns);
  const uid = id(parts[0]);
  const gid = id(parts[1]);
  return { ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
}

/**
 * The namespace an opened namespace file is, as /proc/PID/ns/* links name it (`net:[4026532]`),
 * or what the file is when it is none. A namespace file bound elsewhere (`ip netns add`'s
 * /run/netns/NAME, a container's) reads back as its own path: it is an nsfs inode, whose kind
 * is checked by entering it (nsenter: setns fails on another kind).
 */
function namespaceOf(fd: number, kind: string, file: string): string {
  const link = readlinkSync(`/proc/self/fd/${fd}`);
  if (/^[a-z_]+:\[\d+\]$/.test(link)) return link;
  const st = fstatSync(fd);
  if (st.dev !== statSync('/proc/self/ns/net').dev) return link;
  const ino = `${kind}:[${st.ino}]`;
  // (a process does not enter its own user namespace again: it is the one of that inode)
  if (kind === 'user' && ino === readlinkSync('/proc/self/ns/user')) return ino;
  // (node:child_process loaded here, where it is used: at the top it cost every restore ~10 ms
  // of start-up, loading net and stream with it)
  const r = process.getBuiltinModule('node:child_process').spawnSync('nsenter', [`--${kind === 'mnt' ? 'mount' : kind}=${file}`, '--', 'true'], { stdio: 'ignore', timeout: 10_000 });
  return !r.error && r.status === 0 ? ino : `${link}: an nsfs file of another kind`;
}

function refuse(msg: string, ns: string): CrtoolsError {
  return new CrtoolsError('UNSUPPORTED_OPTION', `restore: ${msg}`, { exitCode: ExitCode.UNSUPPORTED, context: { option: 'join_ns', value: ns } });
}

/**
 * The plan with the joined namespaces taken out of what the root is born in new, and the check of
 * what the checkpoint holds of them against the joined ones, run once the root is born in them
 * (it throws the refusal; the caller kills the tree). What cannot be known before is refused here.
 */
export function joinedPlan(plan: RestorePlan, joined: JoinedNamespaces, opts: { root?: string; restoreSibling?: boolean }): { plan: RestorePlan; check: (rootPid: number) => void } {
  const ns = plan.namespaces;
  const g = joined.given;
  if (joined.net && ns?.extNet) {
    throw refuse(`${g.net}: the checkpoint holds an external network namespace (${ns.extNet.key}), which --inherit-fd gives: joining another one is not supported by crtools`, 'net');
  }
  if (joined.net && ns?.net) {
    // (as CRIU 4.2 the tree is restored in the joined namespace as it is; crtools also checks
    // that it is the one dumped, which the tasks would otherwise find changed)
    const differs = netNamespaceDiffers(joined.net.path, ns.net);
    if (differs) throw refuse(`${g.net}: the checkpoint holds a network namespace of its own and the joined one is not it (${differs}): its devices and addresses would change under the tasks`, 'net');
  }
  const byHelper = (['time', 'user', 'mnt'] as const).filter((k) => g[k] && !joined.inPlace.includes(k));
  if (byHelper.length && opts.restoreSibling) {
    throw refuse(`${g[byHelper[0]!]}: a tree that joins a ${byHelper[0]} namespace cannot be restored as a sibling of the restorer (--restore-sibling, as RPC callers ask) by crtools yet`, byHelper[0]!);
  }
  if (g.user && !((ns?.cloneFlags ?? 0) & NS_TYPE.pid)) {
    throw refuse(`${g.user}: the tree's pids are in criu's pid namespace, which a task of the joined user namespace cannot set them in (clone3 set_tid needs CAP_CHECKPOINT_RESTORE there): carried for a tree with a pid namespace of its own`, 'user');
  }
  if (g.mnt && opts.root) throw refuse(`${g.mnt}: --root with a joined mount namespace: not supported by crtools (the joined namespace is the tree's root)`, 'mnt');
  if (!ns) return { plan, check: () => undefined };
  const { clocks, mounts, userns } = ns;
  const out: RestorePlan = {
    ...plan,
    namespaces: {
      ...ns,
      cloneFlags: ns.cloneFlags & ~joined.flags,
      ...(joined.net ? { net: undefined } : {}),
      ...(g.time ? { clocks: undefined } : {}),
      ...(g.mnt ? { mounts: undefined } : {}),
      ...(g.user && userns ? { userJoined: true } : {}),
    },
  };
  const check = (rootPid: number) => {
    if (g.user && userns) {
      for (const [kind, mine, read] of [['uid', userns.uid, readUidMap], ['gid', userns.gid, readGidMap]] as const) {
        const theirs = formatIdMap(read(rootPid)).trim();
        const dumped = formatIdMap(mine).trim();
        if (theirs !== dumped) {
          throw refuse(`${g.user}: the joined user namespace maps ${kind}s "${theirs.replace(/\n/g, '; ')}", the checkpoint's "${dumped.replace(/\n/g, '; ')}" (maps are written once): the tasks' ids would change`, 'user');
        }
      }
    }
    if (g.time && clocks) {
      const theirs = readTimensOffsets(rootPid);
      const mine = readTimensOffsets(process.pid);
      for (const [kind, id] of [['monotonic', CLOCK_MONOTONIC], ['boottime', CLOCK_BOOTTIME]] as const) {
        const c = clockNow(id);
        // (the joined namespace's clock now: the host's plus its offset)
        const now = timespecAdd({ sec: c.tv_sec, nsec: c.tv_nsec }, theirs[kind], mine[kind]);
        const back = timespecAdd(clocks[kind], { sec: 0n, nsec: 0n }, now);
        if (back.sec > 0n || (back.sec === 0n && back.nsec > 0n)) {
          throw refuse(`${g.time}: CLOCK_${kind.toUpperCase()} of the joined time namespace reads ${seconds(now)} s, ${seconds(back)} s earlier than the tasks read it at dump time: their clocks would go back`, 'time');
        }
      }
    }
    if (g.mnt && mounts) {
      const key = (id: number, parent: number) => `${id}<${parent}`;
      const theirs = new Set(readMountinfo(rootPid).map((m) => key(m.mntId, m.parentId)));
      const dumped = mounts.map((m) => key(m.id, m.parent));
      const missing = dumped.filter((k) => !theirs.has(k)).length;
      if (missing || theirs.size !== dumped.length) {
        throw refuse(`${g.mnt}: the checkpoint holds a mount namespace of its own (${dumped.length} mounts) and the joined one is not it (${theirs.size} mounts, ${missing} of the dumped ones not there): its mounts would be made again in the joined namespace: not supported by crtools`, 'mnt');
      }
    }
  };
  return { plan: out, check };
}

/**
 * How the network namespace at `path` differs from the dumped one (its devices: index, name,
 * kind, MTU, link-layer address, up or down; its addresses as `ip addr save` prints them), or
 * undefined when it does not: the namespace the tree was dumped in, joined again.
 */
export function netNamespaceDiffers(path: string, net: NetPlan): string | undefined {
  const links = netLinks(path);
  for (const l of net.links) {
    const j = links.find((x) => x.ifindex === l.ifindex);
    const kind = j ? (j.type === ARPHRD_LOOPBACK && !j.kind ? 'loopback' : j.kind) : undefined;
    if (!j || j.name !== l.name || kind !== l.kind) return `no ${l.kind} ${l.name} at index ${l.ifindex}${j ? `: ${j.kind ?? 'device'} ${j.name} is` : ''}`;
    if (j.mtu !== l.mtu) return `${l.name}'s MTU is ${j.mtu}, was ${l.mtu}`;
    if ((j.flags & IFF_UP) !== (l.flags & IFF_UP)) return `${l.name} is ${j.flags & IFF_UP ? 'up' : 'down'}, was ${l.flags & IFF_UP ? 'up' : 'down'}`;
    if (l.address && !(j.address && j.address.equals(l.address))) return `${l.name}'s address is ${j.address?.toString('hex') ?? 'none'}, was ${l.address.toString('hex')}`;
  }
  const extra = links.find((x) => !net.links.some((l) => l.ifindex === x.ifindex));
  if (extra) return `it has ${extra.kind ?? 'device'} ${extra.name} (index ${extra.ifindex}) beside the dumped ones`;
  const theirs = savedAddresses(netnsTool(path, ['ip', 'addr', 'save']) ?? undefined);
  const mine = savedAddresses(net.raw.ifaddr);
  const missing = mine.find((a) => !theirs.includes(a));
  if (missing) return `address ${missing} is not there`;
  const more = theirs.find((a) => !mine.includes(a));
  if (more) return `address ${more} was not there`;
  return undefined;
}

function seconds(t: Timespec): string {
  return `${t.sec}.${String(t.nsec).padStart(9, '0').slice(0, 3)}`;
}
