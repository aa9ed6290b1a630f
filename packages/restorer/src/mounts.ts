/**
 * The mount namespace of a restored tree, brought to its dumped shape. The root is born with
 * CLONE_NEWNS, in a copy of the restorer's own mount tree (the one the dumped namespace was
 * unshared from, when restored where it was dumped). Then, from inside that namespace:
 *  - a dumped mount the copy has too (same mount point, root, device, file system and source) is
 *    kept, its per-mount flags and propagation set as dumped;
 *  - a mount of the copy that the dump lacks is unmounted (last mounted first), but one below a
 *    kept mount that stays a peer of the restorer's (received since the dump, as the tree's
 *    namespace would have); nothing unmounted reaches the restorer's namespace (a shared mount
 *    below which mounts go is made a slave first), nor anything mounted (the tree's own mount
 *    below a mount that is a peer of the restorer's is refused by name);
 *  - the tree's own mounts are made in the order they were mounted: a bind mount from a mount
 *    placed before it with the same file system whose root holds its root (a member of its peer
 *    group, or of its master's, first), else a new mount of its file system with its options
 *    (a tmpfs gets its files back from its tar image; a proc is of the tree's pid namespace:
 *    pidns=, Linux 6.16+), then its propagation as dumped.
 * What cannot be made so is refused by name (exit 4) before any task runs.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { judge, loadKerndat } from '@crtools/kerndat';
import { AUTODETECTED_EXT_KEY, encodeKdev, FSTYPE, FSTYPE_AUTO, mountFlagsOf, MNT_FLAG, MOUNTED_ANEW } from '@crtools/images/facts';
import { readMountinfo, type MountInfo } from '@crtools/procfs';
import { cloneMount, MNT_DETACH, MS, mountSteps, type MountOp } from '@crtools/sys';
import type { MountPlan } from './plan.js';

/** The per-mount flags a remount sets (propagation aside). */
const PER_MOUNT = MNT_FLAG.RDONLY | MNT_FLAG.NOSUID | MNT_FLAG.NODEV | MNT_FLAG.NOEXEC | MNT_FLAG.NOATIME | MNT_FLAG.NODIRATIME | MNT_FLAG.RELATIME | MNT_FLAG.STRICTATIME;

/** Is m of a file system the restore mounts anew (one CRIU names and mounts again, or AUTO: --enable-fs at dump)? */
const mountedAnew = (m: MountPlan) => !!m.fsname && (MOUNTED_ANEW.has(m.fsname) || m.fstype === FSTYPE_AUTO);

/**
 * The options a new mount of m is given: its super-block options, but a cgroup v1 hierarchy
 * that has no controller (named only: mountinfo shows `name=X`) with `none` too, which the
 * kernel wants for one (without it, it takes every controller).
 */
function fsOptions(m: MountPlan): string {
  if (m.fsname !== 'cgroup') return m.options;
  const controllers = new Set(readFileSync('/proc/cgroups', 'utf8').split('\n').slice(1).map((l) => l.split('\t')[0]).filter(Boolean));
  const opts = m.options.split(',');
  return opts.includes('none') || opts.some((o) => controllers.has(o)) ? m.options : ['none', ...opts].filter(Boolean).join(',');
}

function refuse(m: MountPlan, why: string): CrtoolsError {
  return new CrtoolsError('UNSUPPORTED_MOUNT', `mount ${m.id} at ${m.mountpoint} (${m.fsname ?? `fstype ${m.fstype}`}) ${why}`, {
    context: { mntId: m.id, path: m.mountpoint }, exitCode: ExitCode.UNSUPPORTED,
  });
}

const rootUnder = (root: string, base: string) => base === '/' || root === base || root.startsWith(`${base}/`);

/**
 * Could m be a bind of p, placed before it (same file system, its root within p's)? When a new
 * mount of m's file system would show what m shows, only from a mount of the same source (a bind
 * keeps its source's name; the dump took another for a new mount), as the dump decided.
 */
function bindOf(m: MountPlan, p: MountPlan): boolean {
  return p.dev === m.dev && rootUnder(m.root, p.root) && (p.extKey !== undefined || !(mountedAnew(m) && m.root === '/') || p.source === m.source);
}

const under = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);

function sameMount(m: MountPlan, h: MountInfo): boolean {
  return m.mountpoint === h.mountPoint && m.root === h.root && m.source === h.source && m.dev === Number(encodeKdev(h.devMajor, h.devMinor))
    && (m.fstype === (FSTYPE[h.fsType] ?? 0) || (m.fstype === FSTYPE_AUTO && m.fsname === h.fsType));
}

/** The mount points of `mounts` that this process's namespace lacks (the restore mounts them anew). */
export function madeMountpoints(mounts: readonly MountPlan[]): string[] {
  const have = readMountinfo(process.pid);
  return mounts.filter((m) => !have.some((h) => sameMount(m, h))).map((m) => m.mountpoint);
}

/** A mount of the restored namespace, as dumped, with what it is now. */
interface Placed {
  m: MountPlan;
  /** the copy's mount kept for it */
  kept?: MountInfo;
  /** a peer of a mount of the restorer's namespace (what is mounted below it reaches there too) */
  host: boolean;
}

/**
 * Bring task pid's mount namespace (a copy of this process's) to the dumped mounts `mounts`.
 * `scope` (--root): only the mounts at and below that directory are the namespace's (the
 * dumped ones given there), the mount there stands for its root.
 */
export function shapeMounts(pid: number, mounts: readonly MountPlan[], scope?: string): void {
  const all = readMountinfo(pid);
  // (under --root, the mount on top at that directory: those it covers are the restorer's)
  const topLive = scope ? [...all].reverse().find((h) => h.mountPoint === scope) : undefined;
  const have = scope ? all.filter((h) => under(h.mountPoint, scope) && (h.mountPoint !== scope || h === topLive)) : all;
  const used = new Map<number, MountPlan>();
  const keep = new Map<number, MountInfo>();
  const top = scope ? mounts.find((m) => m.mountpoint === scope && !mounts.some((o) => o.id === m.parent)) : undefined;
  if (top && topLive) {
    used.set(topLive.mntId, top);
    keep.set(top.id, topLive);
  }
  for (const m of mounts) {
    if (m === top) continue;
    const h = have.find((x) => !used.has(x.mntId) && sameMount(m, x));
    if (h) {
      used.set(h.mntId, m);
      keep.set(m.id, h);
    }
  }
  const root = mounts.find((m) => m.mountpoint === (scope ?? '/') && !mounts.some((o) => o.id === m.parent));
  if (!root || !keep.has(root.id)) throw refuse(root ?? mounts[0]!, 'is the root of the dumped mount namespace and not the one of the restorer\'s: restoring under another root (--root) is not supported by crtools yet (crtools issue 17)');

  // The copy's mounts are peers of the restorer's where those are shared: what is mounted or
  // unmounted below such a mount here happens there too. A kept mount that the dump had in the
  // peer group it has here stays a peer, as the tree's namespace was: a mount below it that the
  // dump lacks came since (and would have reached the tree too): it stays ("received").
  const byId = new Map(have.map((h) => [h.mntId, h]));
  const peerKept = (h: MountInfo) => {
    const m = used.get(h.mntId);
    return !!m && !!m.shared && m.shared === h.shared;
  };
  const received = new Set<number>();
  for (const h of have) {
    const p = byId.get(h.parentId);
    if (!used.has(h.mntId) && p && (received.has(p.mntId) || peerKept(p))) received.add(h.mntId);
  }
  // every other mount the dump lacks goes, last mounted first; a kept mount below one that goes
  // would go too. Before, a shared mount that one that goes lies on is made a slave (it still
  // receives, it no longer sends), so that no unmount reaches the restorer's namespace.
  const now = new Map(have.map((h) => [h.mntId, { shared: h.shared ?? 0, master: h.master ?? 0 }]));
  const gone = new Set(have.filter((h) => !used.has(h.mntId) && !received.has(h.mntId)).map((h) => h.mntId));
  const quiet: MountOp[] = [];
  for (const [i, h] of have.entries()) {
    const st = now.get(h.mntId)!;
    if (!st.shared || !have.some((g) => gone.has(g.mntId) && g.parentId === h.mntId)) continue;
    if (have.slice(i + 1).some((o) => o.mountPoint === h.mountPoint)) {
      throw new CrtoolsError('UNSUPPORTED_MOUNT', `the restorer's mount ${h.mntId} at ${h.mountPoint} is shared, hidden under another mount and has mounts below it that the dumped namespace lacks: unmounting them would unmount them in the restorer's namespace too (not supported by crtools yet)`, {
        context: { mntId: h.mntId, path: h.mountPoint }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
    quiet.push({ target: h.mountPoint, flags: MS.SLAVE });
    now.set(h.mntId, { shared: 0, master: st.shared });
  }
  if (quiet.length) mountSteps(pid, quiet);
  const drop: MountOp[] = [];
  for (const h of [...have].reverse()) {
    if (!gone.has(h.mntId)) continue;
    const above = have.slice(have.indexOf(h) + 1).find((o) => o.mountPoint === h.mountPoint && used.has(o.mntId) && !gone.has(o.mntId));
    if (above) throw refuse(used.get(above.mntId)!, `lies over ${h.mountPoint} (${h.fsType}) of the restorer's namespace, which the dumped namespace lacks: not supported by crtools yet`);
    drop.push({ umount: true, target: h.mountPoint, flags: MNT_DETACH });
  }
  for (const [id, h] of keep) {
    for (let p = byId.get(h.parentId); p; p = byId.get(p.parentId)) {
      if (gone.has(p.mntId)) throw refuse(mounts.find((m) => m.id === id)!, `lies below ${p.mountPoint} (${p.fsType}) of the restorer's namespace, which the dumped namespace lacks: not supported by crtools yet`);
    }
  }
  if (drop.length) mountSteps(pid, drop);

  const placed: Placed[] = [];
  const copies = new Copies(pid, mounts, (live) => live);
  const held = new Held(pid, mounts);
  try {
    for (const m of propagationOrder(mounts)) {
      shape(m);
      held.add(m, m.mountpoint, keep.get(m.id)?.mntId);
    }
  } finally {
    held.close();
  }
  function shape(m: MountPlan): void {
    const h = keep.get(m.id);
    const ops: MountOp[] = [];
    if (h && m === top) {
      // (--root: the mount that becomes the namespace's root gets its propagation as dumped now
      // (a copy of the root's, it may stay its peer), kept through the pivot (pivotInto); its
      // flags once pivoted into: shapeNestedMounts' afterPivot)
      const st = now.get(h.mntId)!;
      const prop = propagation(m, st.shared, st.master);
      if (prop.length) mountSteps(pid, prop);
      placed.push({ m, kept: h, host: false });
      copies.placed(m, m.mountpoint);
      return;
    }
    if (h) {
      // kept: its flags and propagation as dumped
      if ((mountFlagsOf(h.mountOptions) & PER_MOUNT) !== (m.flags & PER_MOUNT)) ops.push({ target: m.mountpoint, flags: MS.REMOUNT | MS.BIND | (m.flags & PER_MOUNT) });
      const st = now.get(h.mntId)!;
      ops.push(...propagation(m, st.shared, st.master));
      const hidden = have.slice(have.indexOf(h) + 1).some((o) => !gone.has(o.mntId) && (o.mountPoint === m.mountpoint || (o.mountPoint !== '/' && under(m.mountpoint, o.mountPoint))));
      if (ops.length && hidden) {
        throw refuse(m, 'is hidden under another mount and its flags or propagation differ from the restorer\'s copy: not supported by crtools yet');
      }
      if (ops.length) mountSteps(pid, ops);
      placed.push({ m, kept: h, host: peerKept(h) });
      copies.placed(m, m.mountpoint);
      return;
    }
    // the tree's own, never below a peer of the restorer's mounts: it would be mounted there too
    if (placed.find((p) => p.m.id === m.parent)?.host) {
      throw refuse(m, 'lies below a mount that is a peer of one of the restorer\'s namespace (shared): making it would mount it there too; not supported by crtools yet');
    }
    const copy = copies.of(m);
    if (copy) {
      // made by the kernel already (a copy of a mount made on a peer or master of its parent's)
      const live = copies.made(m, m.mountpoint, copy);
      mountSteps(pid, [{ target: m.mountpoint, flags: MS.REMOUNT | MS.BIND | (m.flags & PER_MOUNT) }, ...propagation(m, live.shared, live.master)]);
      copies.placed(m, m.mountpoint);
      placed.push({ m, host: false });
      return;
    }
    // the tree's own: a bind from a mount of its file system placed before it, best one of its peer group or its master's
    const from = [...placed].reverse().filter((p) => bindOf(m, p.m));
    const src = from.find((p) => m.shared && p.m.shared === m.shared) ?? from.find((p) => m.master && p.m.shared === m.master) ?? from[0];
    let shared = 0;
    let master = 0;
    if (src) {
      const rel = src.m.root === '/' ? m.root : m.root.slice(src.m.root.length);
      const fd = held.covered(src.m);
      if (fd !== undefined) ops.push({ bindFd: fd, source: rel === '/' ? '' : rel, target: m.mountpoint, flags: 0 });
      else ops.push({ source: `${src.m.mountpoint === '/' ? '' : src.m.mountpoint}${rel === '/' ? '' : rel}` || '/', target: m.mountpoint, flags: MS.BIND });
      ops.push({ target: m.mountpoint, flags: MS.REMOUNT | MS.BIND | (m.flags & PER_MOUNT) });
      // a bind of a shared mount joins its peer group; of a slave, is a slave of the same master
      shared = src.m.shared;
      master = src.m.master;
    } else if (mountedAnew(m) && m.root === '/') {
      ops.push(freshMount(pid, m, m.mountpoint, true));
    } else if (m.extKey !== undefined) {
      throw refuse(m, `is external (mnt[${m.extKey}]): external mounts are restored under --root only`);
    } else {
      throw refuse(m, `is neither in the restorer's mount namespace nor one crtools mounts again (carried: bind mounts, ${[...MOUNTED_ANEW].join(', ')}, --enable-fs ones)`);
    }
    const removedRoot = m.deleted && ops[0]?.source !== undefined && ops[0].bindFd === undefined && ops[0].flags & MS.BIND ? `/proc/${pid}/root${ops[0].source}` : undefined;
    const remove = removedRoot ? makeDeletedRoot(m, removedRoot, `/proc/${pid}/root${m.mountpoint}`) : undefined;
    try {
      mountSteps(pid, ops);
    } finally {
      remove?.();
    }
    if (!src && m.tar) untar(pid, m);
    // its propagation as the kernel left it (a mount made below a shared one is shared), in the
    // dump's group ids; the copies made with it matched
    const live = copies.made(m, m.mountpoint, undefined);
    const prop = src ? propagation(m, shared, master) : propagation(m, live.shared, live.master);
    if (prop.length) mountSteps(pid, prop);
    copies.placed(m, m.mountpoint);
    // a bind joins its source's peer group, which may hold the restorer's mounts
    placed.push({ m, host: !!src?.host && !!m.shared && m.shared === src.m.shared });
  }
}

/**
 * What a shaped mount namespace's mounts are now, in the dump's terms: each dumped device
 * number and peer group id → the live one (a tmpfs made anew has another device, a group made
 * anew another id), matched by mount point and root, in the order they were made.
 */
export interface LiveIds {
  dev: Map<number, number>;
  group: Map<number, number>;
}

/** The live ids of task pid's mount namespace, shaped into the dumped `mounts` (under `scope`: --root). */
export function liveIdsOf(pid: number, mounts: readonly MountPlan[], scope?: string): LiveIds {
  const live = readMountinfo(pid);
  const at = (p: string) => (!scope ? p : p === '/' ? scope : `${scope}${p}`);
  const used = new Set<number>();
  const ids: LiveIds = { dev: new Map(), group: new Map() };
  for (const m of propagationOrder(mounts)) {
    const h = live.find((x) => !used.has(x.mntId) && x.mountPoint === at(m.mountpoint) && (x.root === m.root || (scope !== undefined && m.mountpoint === '/')) && (m.fsname === undefined || x.fsType === m.fsname));
    if (!h) continue;
    used.add(h.mntId);
    if (!ids.dev.has(m.dev)) ids.dev.set(m.dev, Number(encodeKdev(h.devMajor, h.devMinor)));
    if (m.shared && h.shared && !ids.group.has(m.shared)) ids.group.set(m.shared, h.shared);
    if (m.master && h.master && !ids.group.has(m.master)) ids.group.set(m.master, h.master);
  }
  return ids;
}

/**
 * A mount namespace below the root's (a task made it: unshare), a copy of the one it was made
 * from (its parent's, shaped already: `from`, that one's live ids; undefined: the restorer's
 * own, whose ids are the dump's), brought to the dumped `mounts` as shapeMounts brings the
 * root's: its mounts' devices and peer groups as they are now where the namespace it was made
 * from has them (the copies are kept, peers where they were). `scope` (--root): the namespace
 * is made under that directory, as the root's is (pivotInto once every task is restored).
 * Returns its own live ids.
 */
export function shapeNestedMounts(pid: number, mounts: readonly MountPlan[], from: LiveIds | undefined, scope?: string): { ids: LiveIds; afterPivot: MountOp[] } {
  // a device or group the namespace it was made from has not got is its own: given a number no
  // live one has (a new tmpfs may have got the dumped number of this one's: it would be taken
  // for a bind of it)
  const group = (g: number) => (g ? (from?.group.get(g) ?? -2 - g) : 0);
  const dev = (d: number) => from?.dev.get(d) ?? -1 - d;
  const at = (p: string) => (!scope ? p : p === '/' ? scope : `${scope}${p}`);
  const given = mounts.map((m) => ({ ...m, mountpoint: at(m.mountpoint), ...(from ? { dev: dev(m.dev), shared: group(m.shared), master: group(m.master) } : {}) }));
  // (--root: the root mount's flags once pivoted into; its propagation kept through the pivot)
  const top = scope ? given.find((m) => m.mountpoint === scope && !given.some((o) => o.id === m.parent)) : undefined;
  const afterPivot = top ? [{ target: '/', flags: MS.REMOUNT | MS.BIND | (top.flags & PER_MOUNT) }] : [];
  shapeMounts(pid, given, scope);
  return { ids: liveIdsOf(pid, mounts, scope), afterPivot };
}

/** The steps that turn a mount that is `shared`/`master` (peer group ids, 0 none, -1 a group of no mount placed) into what m was. */
function propagation(m: MountPlan, shared: number, master: number): MountOp[] {
  const t = m.mountpoint;
  if (shared === m.shared && master === m.master) return [];
  // shared in a new group of its own (-1: no mount placed before is in it), as m is to be: that
  // group is m's from now on (a MS_PRIVATE first would cut the slaves the kernel gave it)
  if (shared === -1 && m.shared && !m.master && !master) return [];
  const ops: MountOp[] = [];
  if (m.master) {
    if (shared === m.master) ops.push({ target: t, flags: MS.SLAVE });
    else if (master !== m.master) throw refuse(m, `is a slave of peer group ${m.master}, which no mount placed before it belongs to: not supported by crtools yet`);
  } else if (shared || master) {
    ops.push({ target: t, flags: MS.PRIVATE });
  }
  if (m.shared) {
    if (m.shared !== shared || ops.length) ops.push({ target: t, flags: MS.SHARED });
  }
  return ops;
}

/** A tmpfs's files back from its tar image (tar(1), as CRIU 4.2 extracts them), through the task's root (at `base` under it). */
function untar(pid: number, m: MountPlan, base = ''): void {
  const fd = openSync(m.tar!, 'r');
  try {
    const r = process.getBuiltinModule('node:child_process').spawnSync('tar', ['--extract', '--gzip', '--no-unquote', '--no-wildcards', '--directory', `/proc/${pid}/root${base}${m.mountpoint}`], { stdio: [fd, 'ignore', 'pipe'] });
    if (r.error || r.status !== 0) {
      throw new CrtoolsError('RESTORE_FAILED', `the files of the tmpfs at ${m.mountpoint} (${m.tar}): tar: ${r.error?.message ?? r.stderr.toString().trim()}`, { context: { mntId: m.id, path: m.mountpoint }, exitCode: ExitCode.FAILED });
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A new mount of m's file system (one mountedAnew) at target: read-only as dumped with `ro`, else
 * writable (ro comes after its files).
 */
function freshMount(pid: number, m: MountPlan, target: string, ro = false): MountOp {
  // a proc shows the pid namespace of who mounts it: the tree's, named (pidns=, Linux 6.16+)
  // when it is not this process's
  const pidns = m.fsname === 'proc' && readlinkSync(`/proc/${pid}/ns/pid`) !== readlinkSync('/proc/self/ns/pid') ? `pidns=/proc/${pid}/ns/pid` : '';
  const rdonly = ro ? MNT_FLAG.RDONLY : 0;
  const data = [fsOptions(m), m.sbFlags & rdonly ? 'ro' : '', pidns].filter(Boolean).join(',');
  return { source: m.source, target, fstype: m.fsname!, flags: (m.flags & PER_MOUNT & (ro ? ~0 : ~MNT_FLAG.RDONLY)) | (m.sbFlags & (rdonly | MNT_FLAG.SYNCHRONOUS | MNT_FLAG.DIRSYNC)), ...(data ? { data } : {}) };
}

/**
 * --root: the dumped mount namespace made under `root` (a directory of the restorer's, runc's
 * criu-root) inside task pid's new mount namespace, a copy of the restorer's made private
 * first (nothing of it reaches the restorer's): the root mount is a bind of `root`, each other
 * mount in the order it was mounted is a bind of what `ext` maps its key to (an external one), a
 * bind from a mount placed before it (same file system, its root within), or a new mount of its
 * file system (a tmpfs with its files back; sysfs and mqueue mounted from inside the tree's
 * network and IPC namespaces, whose objects they show), each then read-only as dumped and with
 * its propagation; a slave of a peer group of the host's (an external master) is given that
 * group from the restorer's mount its source lies on (hostMasters). pivotInto makes `root` the
 * namespace's root once the tasks are restored.
 */
/**
 * How --root makes each mount but the root one (`top`), in the order they were mounted: a bind of
 * what `ext` maps an external one's key to, a bind of `rel` within a mount placed before it
 * (`src`; the root mount's: `rel` within the --root directory), or a new mount of its file system.
 */
type RootedSource =
  | { m: MountPlan; ext: string }
  | { m: MountPlan; src: MountPlan; rel: string }
  | { m: MountPlan; fresh: true };

/**
 * What the restore binds an external mount from: the path `ext` maps its key to; for one the dump
 * found by itself (--external mnt[], CRIU's AUTOGENERATED key), where it was found (its source,
 * a path of criu's namespace) when the restore is given --external mnt[] too (`ext` holds the key);
 * undefined: nothing.
 */
function externalSource(m: MountPlan, ext: ReadonlyMap<string, string>): string | undefined {
  if (m.extKey === AUTODETECTED_EXT_KEY) return ext.has(AUTODETECTED_EXT_KEY) ? path.posix.join('/', m.source) : undefined;
  return m.extKey === undefined ? undefined : ext.get(m.extKey);
}

/** The refusal of an external mount the restore has no source for. */
function unmapped(m: MountPlan): CrtoolsError {
  return m.extKey === AUTODETECTED_EXT_KEY
    ? refuse(m, `is external, found so by the dump (--external mnt[]: it showed ${path.posix.join('/', m.source)} of criu's namespace): restore with --external mnt[] (--ext-mount-map auto, RPC auto_ext_mnt) to bind it from there`)
    : refuse(m, `is external (mnt[${m.extKey}]) and the restore maps nothing to it (--ext-mount-map ${m.extKey}:PATH, RPC ext_mnt)`);
}

function rootedSources(mounts: readonly MountPlan[], ext: ReadonlyMap<string, string>): { top: MountPlan; made: RootedSource[] } {
  const top = mounts.find((m) => m.mountpoint === '/' && !mounts.some((o) => o.id === m.parent));
  if (!top) throw refuse(mounts[0]!, 'is the first mount of a namespace without a root mount');
  const placed: MountPlan[] = [top];
  const made: RootedSource[] = [];
  for (const m of propagationOrder(mounts)) {
    if (m === top) continue;
    if (m.extKey !== undefined) {
      const val = externalSource(m, ext);
      if (val === undefined) throw unmapped(m);
      made.push({ m, ext: val });
    } else {
      // (an external mount too: what it is bound from stands for its root in the tree's file system)
      const from: MountPlan[] = [...placed].reverse().filter((p) => bindOf(m, p));
      const src: MountPlan | undefined = from.find((p) => m.shared && p.shared === m.shared) ?? from.find((p) => m.master && p.shared === m.master) ?? from[0];
      if (src && (src !== top || m.root !== top.root)) {
        const rel = src.root === '/' ? m.root : m.root.slice(src.root.length);
        made.push({ m, src, rel: rel === '/' ? '' : rel });
      } else if (m.fsname === 'overlay' && m.root === '/') {
        // (its options name its layers by the tree's paths, which lie below --root until the pivot)
        throw refuse(m, 'is an overlay made by the tree: made again under --root, its layers\' paths would not be the tree\'s; not supported by crtools yet (crtools issue 17)');
      } else if (mountedAnew(m) && m.root === '/') {
        made.push({ m, fresh: true });
      } else {
        throw refuse(m, `is neither external (--external mnt[]), a bind of a mount before it, nor one crtools mounts again (carried: ${[...MOUNTED_ANEW].join(', ')}, --enable-fs ones)`);
      }
    }
    placed.push(m);
  }
  return { top, made };
}

/**
 * --root: where the restorer reaches the tree's path `p` (absolute, as the tree sees it) before
 * the tree's mount namespace exists: below `root` for the root mount's files, below what `ext`
 * maps an external mount's key to, and so on through bind mounts; undefined when the mount
 * that holds it is one the restore makes anew (a tmpfs...), reached only from inside the tree's
 * mount namespace once it is made. Mounts are searched last mounted first (a later mount over a
 * path hides what lay there).
 */
export function hostPathOf(mounts: readonly MountPlan[], root: string, ext: ReadonlyMap<string, string>, p: string): string | undefined {
  const { top, made } = rootedSources(mounts, ext);
  const within = reach(top, made, root);
  const holder = [...made].reverse().find((s) => under(p, s.m.mountpoint))?.m ?? top;
  return within(holder, holder.mountpoint === '/' ? (p === '/' ? '' : p) : p.slice(holder.mountpoint.length));
}

/**
 * --root: where the restorer reaches `rel` within mount m's own file system (below `root` for the
 * root mount, below what an external one is bound from, through bind mounts); undefined for a
 * mount made anew.
 */
function reach(top: MountPlan, made: readonly RootedSource[], root: string): (m: MountPlan, rel: string) => string | undefined {
  const by = new Map(made.map((s) => [s.m, s]));
  const within = (m: MountPlan, rel: string): string | undefined => {
    if (m === top) return `${root}${rel}`;
    const s = by.get(m)!;
    if ('ext' in s) return `${s.ext}${rel}`;
    if ('fresh' in s) return undefined;
    return within(s.src, `${s.rel}${rel}`);
  };
  return within;
}

/** Is m a slave of a peer group no dumped mount is in (a group of the host's: an external master)? */
const externalMaster = (mounts: readonly MountPlan[], m: MountPlan) => !!m.master && !mounts.some((o) => o.shared === m.master);

/**
 * The removed root of a bind mount, made again at `source` for the while of the bind: a
 * directory or an empty file as the mount point `target` is (both paths as the restorer reaches
 * them in the tree's namespace). One that is there already, or of another kind, is refused.
 */
function makeDeletedRoot(m: MountPlan, source: string, target: string): () => void {
  let dir: boolean;
  try {
    dir = statSync(target).isDirectory();
  } catch (e) {
    throw refuse(m, `is bound from ${m.root}, removed since, and its mount point cannot be seen (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    if (dir) mkdirSync(source, 0o700);
    else closeSync(openSync(source, 'wx', 0o600));
  } catch (e) {
    throw refuse(m, `is bound from ${m.root}, removed since, which cannot be made again for the bind at ${source} (${(e as NodeJS.ErrnoException).code})`);
  }
  return () => (dir ? rmdirSync(source) : unlinkSync(source));
}

/** O_PATH (open(2)): a descriptor on a path, not on the file's contents */
const O_PATH = 0o10000000;

/** The mount id a descriptor of this process is on (its fdinfo). */
function mntIdOf(fd: number): number {
  return Number(/^mnt_id:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? -1);
}

/**
 * The mount of the restorer's namespace that holds `p` (a relative path is taken from the root,
 * as the restore binds it): its mountinfo line and, with `open`, a descriptor on its root (the
 * caller closes it); undefined when p is not reachable or that mount's root is covered here.
 */
function hostMountOf(p: string, open: boolean): { info: MountInfo; fd?: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path.resolve('/', p), O_PATH);
  } catch {
    return undefined;
  }
  let rootFd: number | undefined;
  try {
    const id = mntIdOf(fd);
    const info = readMountinfo(process.pid).find((h) => h.mntId === id);
    if (!info) return undefined;
    rootFd = openSync(info.mountPoint, O_PATH);
    if (mntIdOf(rootFd) !== id) return undefined;
    const out = { info, ...(open ? { fd: rootFd } : {}) };
    if (open) rootFd = undefined;
    return out;
  } finally {
    closeSync(fd);
    if (rootFd !== undefined) closeSync(rootFd);
  }
}

/**
 * --root: the mounts that are slaves of a peer group of the host (no dumped mount in it: a
 * mount of the restorer's namespace given as an external one's source, or holding --root, is in
 * it or is its slave), with the path of the restorer's their group is taken from (CRIU 4.2's
 * external slavery, mount-v2). Each is refused by name when it cannot be restored so: neither
 * external nor of the root mount's files, a kernel without MOVE_MOUNT_SET_GROUP (Linux 5.15),
 * or a source whose mount is private here (it has no group to give).
 */
function hostMasters(mounts: readonly MountPlan[], root: string, ext: ReadonlyMap<string, string>): Map<MountPlan, string> {
  const { top, made } = rootedSources(mounts, ext);
  const within = reach(top, made, root);
  const out = new Map<MountPlan, string>();
  for (const m of [top, ...made.map((s) => s.m)]) {
    if (!externalMaster(mounts, m)) continue;
    const src = made.find((s) => s.m === m);
    // a bind of a mount with the same master is its slave already (a bind of a slave is one)
    if (src && 'src' in src && src.src.master === m.master) continue;
    const at = within(m, '');
    if (at === undefined) throw refuse(m, `is a slave of peer group ${m.master}, which is outside the dumped namespace, and is made anew: only an external mount (--external mnt[]) or one of the --root directory's files can be given the host's group`);
    if (!judgeHas('move_mount_set_group')) throw refuse(m, `is a slave of peer group ${m.master}, which is outside the dumped namespace: restoring it needs move_mount(2) MOVE_MOUNT_SET_GROUP (Linux 5.15), which this kernel lacks`);
    const h = hostMountOf(at, false);
    if (!h) throw refuse(m, `is a slave of peer group ${m.master}, which is outside the dumped namespace, and its source ${at} is not the root of a mount of the restorer's or below one whose root is reachable`);
    if (!h.info.shared && !h.info.master) throw refuse(m, `is a slave of peer group ${m.master}, which is outside the dumped namespace, and its source ${at} lies on mount ${h.info.mntId} at ${h.info.mountPoint} of the restorer's, which is private: it has no group to give (make it shared or a slave)`);
    out.set(m, at);
  }
  return out;
}

/** Is the kernel feature (criu check --feature NAME) there? */
function judgeHas(feature: string): boolean {
  return judge(loadKerndat().kerndat, { feature }).exitCode === 0;
}

/** The steps that make the private mount at `target` a slave of the group of the restorer's mount `fd` is on (its peer or a fellow slave), then shared if m is. */
function slaveOfHost(m: MountPlan, target: string, fd: number): MountOp[] {
  return [{ target, flags: 0, groupFrom: fd }, { target, flags: MS.SLAVE }, ...(m.shared ? [{ target, flags: MS.SHARED }] : [])];
}

/** Is the mount that holds the tree's path `p` (the last mounted over it) read-only as dumped? */
export function readOnlyAt(mounts: readonly MountPlan[], p: string): boolean {
  const m = [...mounts].reverse().find((x) => under(p, x.mountpoint));
  return !!m && !!((m.flags | m.sbFlags) & MNT_FLAG.RDONLY);
}

export function mountTreeUnder(pid: number, mounts: readonly MountPlan[], root: string, ext: ReadonlyMap<string, string>): void {
  const { top, made } = rootedSources(mounts, ext);
  const masters = hostMasters(mounts, root, ext);
  rootPropagation(top);
  const at = (mp: string) => (mp === '/' ? root : `${root}${mp}`);
  mountSteps(pid, [{ target: '/', flags: MS.REC | MS.PRIVATE }, { source: root, target: root, flags: MS.BIND }]);
  const copies = new Copies(pid, mounts, (live) => (live === root ? '/' : live.startsWith(`${root}/`) ? live.slice(root.length) : undefined));
  // the root's propagation first: a bind of it made below joins its peer group (or is a slave
  // of its master) as it did, and receives what is mounted below it since
  const topHost = masters.get(top);
  if (topHost !== undefined) withHostMount(top, topHost, (fd) => mountSteps(pid, slaveOfHost(top, root, fd)));
  else {
    const prop = propagation({ ...top, mountpoint: root }, 0, 0);
    if (prop.length) mountSteps(pid, prop);
  }
  copies.placed(top, root);
  const join = (m: MountPlan): ('net' | 'ipc')[] => (m.fsname === 'sysfs' ? ['net'] : m.fsname === 'mqueue' ? ['ipc'] : []);
  const held = new Held(pid, mounts);
  held.add(top, undefined);
  try {
    for (const s of made) {
      madeUnder(s);
      held.add(s.m, at(s.m.mountpoint));
    }
  } finally {
    held.close();
  }
  function madeUnder(s: RootedSource): void {
    const m = s.m;
    const target = at(m.mountpoint);
    const ops: MountOp[] = [];
    const copy = copies.of(m);
    if (copy) {
      // made by the kernel already (a copy of a mount made on a peer or master of its parent's)
    } else if ('ext' in s) {
      ops.push({ source: s.ext, target, flags: MS.BIND });
    } else if ('fresh' in s) {
      ops.push(freshMount(pid, m, target));
    } else if (s.src !== top && held.covered(s.src) !== undefined) {
      ops.push({ bindFd: held.covered(s.src)!, source: s.rel, target, flags: 0 });
    } else if (s.src !== top) {
      ops.push({ source: `${at(s.src.mountpoint)}${s.rel}`, target, flags: MS.BIND });
    } else {
      // (of the --root directory itself, which stands for the root mount's root)
      ops.push({ source: `${root}${s.rel}`, target, flags: MS.BIND });
    }
    // a root removed since it was bound (mnt_entry.deleted): made again for the bind, as a
    // directory or a file as the mount point is, and removed once it is bound (as CRIU 4.2)
    const removedRoot = m.deleted && ops[0]?.source !== undefined && ops[0].bindFd === undefined && ops[0].flags & MS.BIND ? `/proc/${pid}/root${ops[0].source}` : undefined;
    const remove = removedRoot ? makeDeletedRoot(m, removedRoot, `/proc/${pid}/root${target}`) : undefined;
    try {
      if (ops.length) mountSteps(pid, ops, join(m));
    } finally {
      remove?.();
    }
    if (ops[0]?.fstype && m.tar) untar(pid, m, root);
    const ro: MountOp[] = [];
    if (ops[0]?.fstype && m.sbFlags & MNT_FLAG.RDONLY) ro.push({ target, flags: MS.REMOUNT | MS.RDONLY | (m.flags & PER_MOUNT), ...(m.options ? { data: m.options } : {}) });
    else ro.push({ target, flags: MS.REMOUNT | MS.BIND | (m.flags & PER_MOUNT) });
    // its propagation as the kernel left it (a mount made below a shared one is shared, a bind
    // joins its source's group), in the dump's group ids, brought to the dumped one
    const now = copies.made(m, target, copy);
    const host = masters.get(m);
    if (host !== undefined) withHostMount(m, host, (fd) => mountSteps(pid, [...ro, ...(now.shared || now.master ? [{ target, flags: MS.PRIVATE }] : []), ...slaveOfHost(m, target, fd)]));
    else mountSteps(pid, [...ro, ...propagation({ ...m, mountpoint: target }, now.shared, now.master)]);
    copies.placed(m, target);
  }
  // the root's own flags last (a read-only root takes its mounts first)
  mountSteps(pid, [{ target: root, flags: MS.REMOUNT | MS.BIND | (top.flags & PER_MOUNT) }]);
}

/** f with a descriptor on the root of the restorer's mount holding `host` (m's group source, checked by hostMasters). */
function withHostMount(m: MountPlan, host: string, f: (fd: number) => void): void {
  const h = hostMountOf(host, true);
  if (h?.fd === undefined) throw refuse(m, `is a slave of peer group ${m.master}, which is outside the dumped namespace, and its source ${host} is gone from the restorer's mounts`);
  try {
    f(h.fd);
  } finally {
    closeSync(h.fd);
  }
}

/**
 * The mounts the kernel makes itself while a namespace is being made: a mount made below a
 * shared mount is copied to that mount's peers and slaves, as it was when the tree mounted it
 * (the dump has those copies too, later in the list). Each new mount beside the one made is
 * matched to a dumped mount not placed yet (its mount point, device and root) and stands for
 * it; one the dump lacks is refused by name (unmounting it would unmount the original too).
 * Peer groups are told in the dump's ids: a live group is known by the placed mount that is in it.
 */
/**
 * The dumped mounts in an order the kernel's propagation keeps: a mount below a slave whose
 * twin (same file system, root and place) lies below a mount of its master's peer group is a
 * copy the kernel made when the twin was mounted; the dump may list it first (the kernel adds
 * the copies before the mount itself): it goes right after its twin, whose mount makes it.
 */
export function propagationOrder(mounts: readonly MountPlan[]): MountPlan[] {
  const byId = new Map(mounts.map((m) => [m.id, m]));
  const rel = (m: MountPlan) => {
    const p = byId.get(m.parent);
    if (!p) return undefined;
    if (p.mountpoint === m.mountpoint) return '';
    return p.mountpoint === '/' ? m.mountpoint : m.mountpoint.startsWith(`${p.mountpoint}/`) ? m.mountpoint.slice(p.mountpoint.length) : undefined;
  };
  const out = parentsFirst(mounts);
  for (const x of mounts) {
    const px = byId.get(x.parent);
    if (!px?.master) continue;
    const r = rel(x);
    const twin = mounts.find((y) => y !== x && y.dev === x.dev && y.root === x.root && byId.get(y.parent)?.shared === px.master && rel(y) === r);
    if (!twin || out.indexOf(twin) < out.indexOf(x)) continue;
    out.splice(out.indexOf(x), 1);
    out.splice(out.indexOf(twin) + 1, 0, x);
  }
  return out;
}

/**
 * The mounts in the order they were mounted, but each after its parent: a mount moved (MS_MOVE)
 * below one mounted after it is listed before its parent (mountinfo lists mounts by id).
 */
function parentsFirst(mounts: readonly MountPlan[]): MountPlan[] {
  const ids = new Set(mounts.map((m) => m.id));
  const done = new Set<number>();
  const out: MountPlan[] = [];
  let left = [...mounts];
  while (left.length) {
    const ready = left.filter((m) => m.parent === m.id || !ids.has(m.parent) || done.has(m.parent));
    // (a loop of parents cannot be: keep the rest as listed)
    const take = ready.length ? [ready[0]!] : left;
    for (const m of take) {
      out.push(m);
      done.add(m.id);
    }
    left = left.filter((m) => !done.has(m.id));
  }
  return out;
}

/**
 * Descriptors on the roots of the mounts placed so far, each taken while it was on top at its
 * mount point: a bind of a mount that one placed since covers (at its mount point or over a
 * directory above it) is made through it, its path leading to the mount on top now.
 */
class Held {
  private readonly fds = new Map<MountPlan, number>();
  private readonly order: MountPlan[] = [];
  /** the mounts another one may be bound from (same file system, its root within): only these are held */
  private readonly sources: Set<MountPlan>;

  constructor(private readonly pid: number, mounts: readonly MountPlan[]) {
    this.sources = new Set(mounts.filter((m) => mounts.some((o) => o !== m && o.dev === m.dev && rootUnder(o.root, m.root))));
  }

  /** m is placed at `target` (the tree's path as the restorer reaches it below the task's root; undefined: none held); `live`: the mount id that must be there (a kept one may be covered already) */
  add(m: MountPlan, target: string | undefined, live?: number): void {
    this.order.push(m);
    if (target === undefined || !this.sources.has(m)) return;
    const fd = openSync(`/proc/${this.pid}/root${target}`, O_PATH);
    if (live !== undefined && mntIdOf(fd) !== live) closeSync(fd);
    else this.fds.set(m, fd);
  }

  /** a descriptor on src's root when a mount placed since covers it (undefined: not covered, or none held) */
  covered(src: MountPlan): number | undefined {
    const cover = this.order.slice(this.order.indexOf(src) + 1).some((o) => o.mountpoint === src.mountpoint || (o.mountpoint !== '/' && under(src.mountpoint, o.mountpoint)));
    return cover ? this.fds.get(src) : undefined;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

class Copies {
  private readonly known: Set<number>;
  private readonly copy = new Map<number, MountInfo>();
  private readonly groups = new Map<number, number>();
  private readonly done = new Set<number>();

  constructor(private readonly pid: number, private readonly mounts: readonly MountPlan[], private readonly dumpedPath: (live: string) => string | undefined) {
    this.known = new Set(readMountinfo(pid).map((h) => h.mntId));
  }

  /** the copy the kernel made for dumped mount m, if it did */
  of(m: MountPlan): MountInfo | undefined {
    return this.copy.get(m.id);
  }

  private group(live: number | undefined): number {
    return live ? (this.groups.get(live) ?? -1) : 0;
  }

  /**
   * m was just made at live path `target` (or stands as the kernel's copy): the copies that
   * came with it are matched; its peer group and master now, in the dump's ids (-1: a group
   * no placed mount is in).
   */
  made(m: MountPlan, target: string, copy: MountInfo | undefined): { shared: number; master: number } {
    const all = readMountinfo(this.pid);
    const fresh = all.filter((h) => !this.known.has(h.mntId));
    for (const h of fresh) this.known.add(h.mntId);
    const own = copy ? all.find((h) => h.mntId === copy.mntId) : [...all].reverse().find((h) => h.mountPoint === target);
    for (const c of fresh) {
      if (c === own) continue;
      const mp = this.dumpedPath(c.mountPoint);
      // (a copy is a clone of m: its file system and root, whatever device the new mount got)
      const x = mp === undefined ? undefined : this.mounts.find((d) => d !== m && !this.done.has(d.id) && !this.copy.has(d.id) && d.mountpoint === mp && d.root === m.root && d.dev === m.dev);
      if (!x) throw refuse(m, `was copied by mount propagation to ${c.mountPoint}, which the dumped namespace lacks: not supported by crtools yet`);
      this.copy.set(x.id, c);
    }
    return { shared: this.group(own?.shared), master: this.group(own?.master) };
  }

  /** m is in place with its dumped propagation: its live group is the dump's m.shared */
  placed(m: MountPlan, target: string): void {
    this.done.add(m.id);
    if (!m.shared && !m.master) return;
    const copy = this.copy.get(m.id);
    const all = readMountinfo(this.pid);
    const live = (copy && all.find((h) => h.mntId === copy.mntId)) || [...all].reverse().find((h) => h.mountPoint === target);
    if (m.shared && live?.shared) this.groups.set(live.shared, m.shared);
    // (a master of the host's: known by the mounts made its slaves)
    if (m.master && live?.master && !this.groups.has(live.master)) this.groups.set(live.master, m.master);
  }
}

/**
 * --root, before any task is made: every external mount has a path mapped to its key (CRIU
 * fails on the first without one once it is building the tree; crtools refuses before), and
 * every slave of a group of the host's can be given it (hostMasters).
 */
export function checkExternalMounts(mounts: readonly MountPlan[], root: string, ext: ReadonlyMap<string, string>): void {
  const m = mounts.find((x) => x.extKey !== undefined && externalSource(x, ext) === undefined);
  if (m) throw unmapped(m);
  hostMasters(mounts, root, ext);
}

/**
 * --root: `root` (its mounts made by mountTreeUnder) becomes the root of task pid's mount
 * namespace, the old one detached, then `after`. pivot_root(2) takes no shared new root: one in
 * a peer group (or a slave of one) has that propagation held by a detached copy of it (a peer of
 * its group, a slave of its master) while it is made private and pivoted into, then given back
 * (move_mount MOVE_MOUNT_SET_GROUP), so that its peers in the tree's other namespaces stay its
 * peers (checked before: rootPropagation).
 */
export function pivotInto(pid: number, root: string, after: readonly MountOp[] = []): void {
  const pivot: MountOp = { pivot: true, target: root, flags: 0 };
  const top = [...readMountinfo(pid)].reverse().find((h) => h.mountPoint === root);
  if (!top?.shared && !top?.master) return mountSteps(pid, [pivot, ...after]);
  const hold = cloneMount(pid, root);
  try {
    mountSteps(pid, [{ target: root, flags: MS.PRIVATE }, pivot, { target: '/', flags: 0, groupFrom: hold }, ...after]);
  } finally {
    closeSync(hold);
  }
}

/**
 * --root, before anything is made: a root mount dumped shared or a slave keeps that propagation
 * through the pivot with move_mount(2) MOVE_MOUNT_SET_GROUP (Linux 5.15): refused by name
 * without it.
 */
function rootPropagation(top: MountPlan): void {
  if ((top.shared || top.master) && !judgeHas('move_mount_set_group')) {
    throw refuse(top, `is the root mount and ${top.shared ? `shared (peer group ${top.shared})` : `a slave of peer group ${top.master}`}: pivoting into it under --root keeps that with move_mount(2) MOVE_MOUNT_SET_GROUP (Linux 5.15), which this kernel lacks`);
  }
}
