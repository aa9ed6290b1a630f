/**
 * A tree whose root has a user namespace of its own and network or time namespaces of its own
 * too (zdtm's uns flavour, a rootless or user-namespaced container): those namespaces belong to
 * the tree's user namespace, and must again (a task that owns its network namespace may configure
 * it, bind low ports: one owned by criu's would take that away). The network namespace is set up
 * before the root is born (its devices, addresses, the TCP connections made in it in repair
 * mode), so the user namespace comes first here: made with its maps and, inside it, the network
 * namespace (sys createUserNamespace); the root is then born in both as in namespaces it joins
 * (launch.cc: a helper joins the user namespace, makes the time namespace there and starts the
 * root, whose pid, mount, UTS and IPC namespaces are then owned by it too).
 *
 * Joining a user namespace leaves the root's pid to set in a pid namespace the helper has no
 * privileges over unless it is the tree's own: a tree in criu's pid namespace is refused so, and
 * so is a restore as the restorer's sibling (the helper makes the root the launcher's child).
 */
import { CrtoolsError, ExitCode, type Logger } from '@crtools/common';
import { formatIdMap, idOutside, UNMAPPED_ID } from '@crtools/procfs';
import { createUserNamespace, NS_TYPE, type MadeUserNamespace } from '@crtools/sys';
import type { RestorePlan } from './plan.js';
import { RestoreErrorCode, restoreError } from './errors.js';
import { TreeNetNamespaces, treeNetNamespace, treeNets, type MadeNetNamespace } from './netns.js';

export interface OwnUserNamespace {
  /** the plan with the root born in the user namespace made (joined), not in a new one */
  plan: RestorePlan;
  /** the user namespace for the launcher to join */
  join: { fd: number; type: number; name: string };
  /** the network namespace made in it (the tree's own network namespace, to set up) */
  netFd?: number;
  close(): void;
}

/**
 * The owner the restorer (in criu's user namespace) gives a file it makes for the tree (an
 * unlinked file, a memfd): the images keep owners as the ids inside the tree's user namespace
 * when it has one (as CRIU writes them), given back here through its maps. `what` names the file
 * when an id is not mapped there (bad input: the dump refuses such an owner).
 */
export function hostOwner(plan: RestorePlan, uid: number, gid: number, what: string): { uid: number; gid: number } {
  const maps = plan.namespaces?.userns;
  if (!maps) return { uid, gid };
  const out = { uid: idOutside(maps.uid, uid), gid: idOutside(maps.gid, gid) };
  if (out.uid === UNMAPPED_ID || out.gid === UNMAPPED_ID) {
    throw restoreError(RestoreErrorCode.BAD_PLAN, `restore: ${what} is owned by ${out.uid === UNMAPPED_ID ? `uid ${uid}` : `gid ${gid}`}, which the tree's user namespace (userns-<id>.img) does not map`, {}, ExitCode.BAD_INPUT);
  }
  return out;
}

/** Does the plan's root need its user namespace made before it (it has network or time namespaces of its own too)? */
export function needsUserNamespaceFirst(plan: RestorePlan): boolean {
  const ns = plan.namespaces;
  return !!(ns?.userns && !ns.userJoined && (ns.net || ns.emptyNet || ns.extNet || ns.clocks || ns.nestedNets?.size));
}

/**
 * The tree's user namespace made first, with the network namespace it owns when the tree has one
 * to make; undefined when the plan does not need it (needsUserNamespaceFirst).
 */
export function ownUserNamespace(plan: RestorePlan, log: Logger, restoreSibling = false): OwnUserNamespace | undefined {
  if (!needsUserNamespaceFirst(plan)) return undefined;
  const ns = plan.namespaces!;
  if (restoreSibling) {
    throw new CrtoolsError('UNSUPPORTED_NS', 'restore: a tree with a user namespace and a network or time namespace of its own cannot be restored as a sibling of the restorer (--restore-sibling, as RPC callers ask) by crtools yet', {
      exitCode: ExitCode.UNSUPPORTED, context: { namespaces: 'user' },
    });
  }
  if (!((ns.cloneFlags ?? 0) & NS_TYPE.pid)) {
    throw new CrtoolsError('UNSUPPORTED_NS', 'restore: a tree with a user namespace and a network or time namespace of its own is restored by crtools only with a pid namespace of its own (the pids are set from inside the user namespace)', {
      exitCode: ExitCode.UNSUPPORTED, context: { namespaces: 'user' },
    });
  }
  let made: MadeUserNamespace;
  try {
    made = createUserNamespace(formatIdMap(ns.userns!.uid), formatIdMap(ns.userns!.gid), { net: !!(ns.net || ns.emptyNet) });
  } catch (e) {
    throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot make the tree's user namespace: ${(e as Error).message}`, {}, ExitCode.FAILED, e as Error);
  }
  log.info(`userns: the tree's user namespace made first${made.net !== undefined ? ', with its network namespace' : ''}`);
  return {
    plan: { ...plan, namespaces: { ...ns, cloneFlags: (ns.cloneFlags ?? 0) & ~NS_TYPE.user, userJoined: true } },
    join: { fd: made.user, type: NS_TYPE.user, name: 'user' },
    ...(made.net !== undefined ? { netFd: made.net } : {}),
    close: () => made.close(),
  };
}

/** What the tree's root is born in that is made before it (namespacesFirst). */
export interface MadeFirst {
  /** the plan the root is launched with (its user namespace joined when made here) */
  plan: RestorePlan;
  /** the tree's network namespace: the one given, or made here (set up as dumped) */
  net?: MadeNetNamespace;
  /** the namespaces made here that the launcher joins (the user one) */
  joins: OwnUserNamespace['join'][];
  /** the tree's network namespaces while they are made: those below the root's made ahead here (a veth pair across) are taken from it (nestedNetNamespaces) */
  nets?: TreeNetNamespaces;
  /** what was made here goes (the root holds it by then, or the restore failed) */
  close(): void;
}

/**
 * The namespaces a tree's root is born in that exist before it: its user namespace when it has
 * network or time namespaces of its own (ownUserNamespace), then its network namespace (netns.ts
 * treeNetNamespace; made in that user namespace), unless `net` is given (a joined one, or one the
 * caller made). Both the CLI's restore and restoreTree start so.
 */
export function namespacesFirst(plan: RestorePlan, log: { userns: Logger; net: Logger }, opts: { restoreSibling: boolean; net?: MadeNetNamespace }): MadeFirst {
  const user = ownUserNamespace(plan, log.userns, opts.restoreSibling);
  const born = user?.plan ?? plan;
  const ns = born.namespaces;
  let made: MadeNetNamespace | undefined;
  // (one given was made with the tree's others, ahead: a caller's namespacesFirst)
  const own = !opts.net?.tree && ns?.nestedNets?.size ? new TreeNetNamespaces(treeNets(born), user?.join.fd) : undefined;
  const nets = opts.net?.tree ?? own;
  if (!opts.net && (ns?.net || ns?.emptyNet || ns?.extNet)) {
    try {
      made = treeNetNamespace(ns, log.net, user?.netFd, nets);
      if (made && nets) made = { ...made, tree: nets };
    } catch (e) {
      own?.close();
      user?.close();
      throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot make the tree's network namespace: ${(e as Error).message}`, {}, ExitCode.FAILED, e as Error);
    }
  }
  const net = opts.net ?? made;
  return {
    plan: born,
    ...(net ? { net } : {}),
    joins: user ? [user.join] : [],
    ...(nets ? { nets } : {}),
    close: () => {
      own?.close();
      made?.close();
      user?.close();
    },
  };
}

const CLONE_NEWPID = 0x20000000;

/**
 * The first of the pids (one per task, at spare + the task's index) the tasks of a tree in a
 * user namespace and a pid namespace of its own give the short-lived threads that take other
 * ids for a step (the blob's ids.c: criu's ids, which the maps may leave unmapped, cannot be
 * come back to): above every pid of the tree (tasks, threads, helpers, dead pids), so that no
 * such thread takes a pid a task forked later needs, nor one the kernel hands a helper of any
 * pid (it picks from the bottom up). 0 (none) for any other tree, or when they would pass pidMax.
 */
export function spareTid(plan: RestorePlan, pidMax: number): number {
  const ns = plan.namespaces;
  if (!ns?.userns || !(ns.cloneFlags & CLONE_NEWPID)) return 0;
  let max = 1;
  for (const t of plan.tasks) {
    for (const p of [t.pid, ...(t.deadPids ?? [])]) max = Math.max(max, p);
    for (const th of t.threads) max = Math.max(max, th.tid);
  }
  for (const h of plan.helpers ?? []) max = Math.max(max, h.pid);
  const spare = max + 1;
  return spare + plan.tasks.length < pidMax ? spare : 0;
}
