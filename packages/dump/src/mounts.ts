/**
 * The mount namespace of a tree whose root has one of its own, as CRIU 4.2 dumps it: every
 * mount of /proc/<root>/mountinfo as an mnt_entry of mountpoints-<id>.img (last line first, as
 * CRIU writes them), and the contents of each tmpfs as tmpfs-dev-<dev>.tar.gz.img (a gzipped tar
 * of its files, made by tar(1) as CRIU does). A mount that criu's own namespace has too (same
 * mount point, root, device, file system and source: the namespace began as a copy of the one
 * it was unshared from) is inherited; the restore keeps the restorer's copy of it. The tree's
 * own mounts are carried when the restore can make them again: a new proc, sysfs, tmpfs,
 * devpts or mqueue, or a bind mount of a directory of a mount placed before it; any other is
 * refused by name (mount id, mount point, file system). A container's (runc's) mounts: its root
 * is its own (pivot_root) and is restored under the restore's --root when the dump is given
 * one; a mount at a mount point named by an --external mnt[KEY]:VAL (RPC ext_mnt) is external:
 * written with ext_key VAL as CRIU writes it, its contents the restore's to give (runc: the
 * cgroup mounts and the masked paths bound from /dev/null).
 */
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { CrtoolsError, ExitCode, type Refusals } from '@crtools/common';
import { writeImageFile, type Entry } from '@crtools/images';
import { AUTODETECTED_EXT_KEY, encodeKdev, fsEnabled, FSTYPE, FSTYPE_AUTO, mountFlagsOf, MNT_FLAG, MOUNTED_ANEW, superOptionsOf } from '@crtools/images/facts';
import { parseMountinfo, readMountinfo, type MountInfo } from '@crtools/procfs';
import { cloneMount, namespaceFiles } from '@crtools/sys';

/** How mountinfo shows the root of a mount whose root was removed since it was mounted. */
const DELETED_ROOT = '//deleted';

/**
 * File systems whose contents live in memory only: a new mount of one is empty. Mounted again
 * under --enable-fs only while they hold no file (CRIU 4.2 would drop the files).
 */
const MEMORY_FS: readonly string[] = ['ramfs', 'hugetlbfs'];

/** The options of an overlay mount that name directories of the mounter's namespace. */
const OVERLAY_DIRS = ['lowerdir', 'upperdir', 'workdir', 'datadir', 'lowerdir+', 'datadir+'];

/** What a dump is told of the mounts (--root, --external mnt[KEY]:VAL / ext_mnt, --empty-ns net). */
export interface MountOptions {
  /** --root: the restore puts the tree's root mount there (the dump does not read it) */
  root?: string;
  /** mount point inside the tree's namespace → the value written as ext_key */
  extMnt: readonly { key: string; val: string }[];
  /** --empty-ns net (namespaces.ts) */
  emptyNet: boolean;
  /** --external net[INO]:KEY: network namespace inode → key (namespaces.ts: such a namespace is the caller's, not dumped) */
  extNet?: ReadonlyMap<number, string>;
  /**
   * --external mnt[] (--ext-mount-map auto, RPC auto_ext_mnt): a mount showing a directory of a
   * mount of criu's namespace is found external by itself; a slave of it only with `masters`
   * (mnt[]:m, --enable-external-masters, RPC ext_masters), a shared one only with `sharing`
   * (mnt[]:s, --enable-external-sharing, RPC ext_sharing), as CRIU 4.2
   */
  autoExt?: { masters: boolean; sharing: boolean };
  /**
   * --enable-fs (RPC enable_fs): file systems CRIU has no code for that the tree's own mounts of
   * are mounted again from their source and options (fstype AUTO, fsname), names joined by ','
   * or "all", as CRIU 4.2 (a block device's file system: its files stay on the device)
   */
  enableFs?: readonly string[];
}

const keyOf = (m: MountInfo) => [m.mountPoint, m.root, `${m.devMajor}:${m.devMinor}`, m.fsType, m.source].join('\0');
const sameDev = (a: MountInfo, b: MountInfo) => a.devMajor === b.devMajor && a.devMinor === b.devMinor;
const isFuse = (fs: string) => fs === 'fuse' || fs === 'fuseblk' || fs.startsWith('fuse.');
const isCgroupFs = (m: MountInfo) => m.fsType === 'cgroup' || m.fsType === 'cgroup2';

/** Is `root` (a mount's root in its file system) `base` or below it? */
export function rootUnder(root: string, base: string): boolean {
  return base === '/' || root === base || root.startsWith(`${base}/`);
}

/** The tmpfs argument lists of tar(1), as CRIU 4.2 runs it. */
const TAR_CREATE = ['--create', '--gzip', '--no-unquote', '--no-wildcards', '--one-file-system', '--check-links', '--preserve-permissions', '--sparse', '--numeric-owner'];

export class TreeMounts {
  /** the tree's mounts, in mountinfo order */
  readonly list: MountInfo[];
  /** mount ids of the tree's mounts that criu's namespace has too */
  readonly inherited = new Set<number>();

  /** the device of criu's /dev/pts: a devpts of another is a new instance (CRIU writes newinstance) */
  private readonly hostPts: string | undefined;

  /** mount id → ext_key of the external mounts (--external mnt[KEY]:VAL, keyed by mount point; found by --external mnt[]) */
  readonly external = new Map<number, string>();
  /** mount id → what an external mount found by --external mnt[] shows of criu's namespace (its path there) */
  readonly autoSource = new Map<number, string>();
  /** mount id → why --external mnt[] did not take a mount showing one of criu's as external */
  private readonly notFound = new Map<number, string>();
  /**
   * The tree's own cgroup mounts in a cgroup namespace of the tree's own: their roots as the
   * namespace sees them (mount id → root; '/' the namespace's root, as a new mount there shows
   * it: CRIU writes cgroup mounts so), which replace criu's view in `list`
   */
  private readonly cgroupRooted = new Map<number, string>();
  /** of those, the ones whose namespace's root is not their hierarchy's: mount id → the root criu sees */
  private readonly cgroupBelow = new Map<number, string>();

  /**
   * `nested`: a mount namespace of the tree below the root's, `rootPid` the first task living in
   * it; its mounts are inherited when the namespace of `nested.parentPid` (the one it was
   * unshared from) has them too, and a tmpfs it mounts anew may not be one that `nested.elsewhere`
   * (the devices of the tree's other namespaces) shows: the restore would make another
   */
  constructor(readonly rootPid: number, private readonly refusals: Refusals, private readonly opts: MountOptions = { extMnt: [], emptyNet: false }, private readonly nested?: { parentPid: number; elsewhere: ReadonlySet<string>; externalAt?: ReadonlySet<string> }) {
    this.list = readMountinfo(rootPid);
    for (const m of this.list) {
      const ext = opts.extMnt.find((e) => e.key === m.mountPoint);
      if (ext) this.external.set(m.mntId, ext.val);
    }
    const have = new Map<string, number>();
    const mine = readMountinfo(process.pid);
    for (const m of nested ? readMountinfo(nested.parentPid) : mine) have.set(keyOf(m), (have.get(keyOf(m)) ?? 0) + 1);
    const pts = mine.find((m) => m.mountPoint === '/dev/pts' && m.fsType === 'devpts');
    this.hostPts = pts ? `${pts.devMajor}:${pts.devMinor}` : undefined;
    for (const m of this.list) {
      const n = have.get(keyOf(m)) ?? 0;
      if (n > 0) {
        this.inherited.add(m.mntId);
        have.set(keyOf(m), n - 1);
      }
    }
    if (opts.autoExt && !nested) this.detectExternal(mine, opts.autoExt);
    this.cgroupRoots();
  }

  /**
   * A cgroup mount the tree made in a cgroup namespace of its own shows, to criu, the
   * namespace's root as a path of the hierarchy; inside, '/' (a new mount there shows the same).
   * Its root is taken as the namespace sees it (mountinfo read by a thread that joins the
   * namespace), as CRIU 4.2 writes cgroup mounts (root '/' there); one whose namespace's root is
   * not the hierarchy's is refused by name (check: the restore mounts before it makes that
   * namespace), one whose namespace's root is the hierarchy's is mounted anew as any other.
   */
  private cgroupRoots(): void {
    const own = this.list.filter((m) => isCgroupFs(m) && !this.inherited.has(m.mntId) && !this.external.has(m.mntId));
    if (!own.length || readlinkSync(`/proc/${this.rootPid}/ns/cgroup`) === readlinkSync('/proc/self/ns/cgroup')) return;
    const [text] = namespaceFiles(this.rootPid, 'cgroup', { reads: [`/proc/${this.rootPid}/mountinfo`] });
    const inner = new Map(parseMountinfo(text ?? '').map((m) => [m.mntId, m.root]));
    for (const m of own) {
      const root = inner.get(m.mntId);
      if (root === undefined) continue;
      this.cgroupRooted.set(m.mntId, root);
      if (root !== m.root) this.cgroupBelow.set(m.mntId, m.root);
      this.list[this.list.indexOf(m)] = { ...m, root };
    }
  }

  /**
   * Could mount m be a bind of mount p placed before it (same file system, its root within p's)?
   * Not when a new mount of m's file system would show what m shows and p's source differs (a
   * bind keeps its source's name), nor between a cgroup mount rooted in the tree's cgroup
   * namespace and one rooted in criu's.
   */
  private bindOf(m: MountInfo, p: MountInfo): boolean {
    if (!sameDev(p, m) || !rootUnder(m.root, p.root)) return false;
    if (this.cgroupRooted.has(m.mntId) !== this.cgroupRooted.has(p.mntId)) return false;
    return this.external.has(p.mntId) || !(this.mountedAnew(m.fsType) && m.root === '/') || p.source === m.source;
  }

  /**
   * The mount ids of the tree's own mounts (neither criu's namespace's too nor external) that are
   * read-only, the mount or its super block: the restore makes them anew, read-only.
   */
  readOnlyOwn(): Set<number> {
    return new Set(this.list.filter((m) => !this.inherited.has(m.mntId) && !this.external.has(m.mntId)
      && ((mountFlagsOf(m.mountOptions) | superOptionsOf(m.superOptions).sbFlags) & MNT_FLAG.RDONLY)).map((m) => m.mntId));
  }

  /**
   * --external mnt[]: each mount of the tree's (not its root, not one criu's namespace has too,
   * not named external already) that shows a directory of a mount of criu's namespace (same
   * file system, its root at or below that mount's) is external, as CRIU 4.2's
   * resolve_external_mounts finds them: the mount of criu's whose peer group it shares or is a
   * slave of if there is one, else the last that fits; a shared one only with `sharing`, a slave
   * only with `masters` and when its master is that mount's group or master.
   */
  private detectExternal(mine: readonly MountInfo[], auto: { masters: boolean; sharing: boolean }): void {
    const root = this.list.find((m) => !this.list.some((o) => o.mntId === m.parentId));
    for (const m of this.list) {
      if (m === root || this.inherited.has(m.mntId) || this.external.has(m.mntId)) continue;
      let match: MountInfo | undefined;
      for (const it of mine) {
        if (!sameDev(m, it) || it.fsType !== m.fsType || !rootUnder(m.root, it.root)) continue;
        match = it;
        if ((m.shared && m.shared === it.shared) || (m.master && m.master === it.shared)) break;
      }
      if (!match) continue;
      if (m.shared && !auto.sharing) {
        this.notFound.set(m.mntId, `shows ${match.mountPoint} of criu's namespace but is shared: --external mnt[]:s (--enable-external-sharing) takes it as external`);
        continue;
      }
      if (m.master && !auto.masters) {
        this.notFound.set(m.mntId, `shows ${match.mountPoint} of criu's namespace but is a slave: --external mnt[]:m (--enable-external-masters) takes it as external`);
        continue;
      }
      if (m.master && m.master !== match.shared && m.master !== match.master) {
        this.notFound.set(m.mntId, `shows ${match.mountPoint} of criu's namespace but is a slave of peer group ${m.master}, neither that mount's group nor its master (as CRIU: not external)`);
        continue;
      }
      // (as CRIU writes it: the mount point of criu's, and the tree's mount's root below that mount's)
      const cut = match.root === '/' ? m.root.slice(1) : m.root.slice(match.root.length + 1);
      this.external.set(m.mntId, AUTODETECTED_EXT_KEY);
      this.autoSource.set(m.mntId, cut ? path.posix.join(match.mountPoint, cut) : match.mountPoint);
    }
  }

  /** The mounts that hide mount m (after it at its mount point, or over a directory above it), in mount order. */
  private covering(m: MountInfo): MountInfo[] {
    return this.list.slice(this.list.indexOf(m) + 1).filter((o) => o.mountPoint === m.mountPoint || m.mountPoint.startsWith(o.mountPoint === '/' ? '/' : `${o.mountPoint}/`));
  }

  private hidden(m: MountInfo): boolean {
    return this.covering(m).length > 0;
  }

  /**
   * Can a hidden mount's files be read (through a copy of the namespace with the mounts over it
   * unmounted)? Not when the namespace belongs to another user namespace: the copy's mounts
   * would be locked, none could be unmounted.
   */
  private uncoverable(): boolean {
    return readlinkSync(`/proc/${this.rootPid}/ns/user`) === readlinkSync('/proc/self/ns/user');
  }

  /** Is a new mount of file system `fs` what the restore makes of the tree's own (a code CRIU names, or --enable-fs)? */
  private mountedAnew(fs: string): boolean {
    // (FUSE by any name, fuse.SUBTYPE and fuseblk too: never, as CRIU)
    return MOUNTED_ANEW.has(fs) || (!(fs in FSTYPE) && !isFuse(fs) && fsEnabled(this.opts.enableFs ?? [], fs));
  }

  /** mnt_entry.fstype (and fsname for AUTO), as CRIU 4.2 names file system `fs`. */
  private fstypeOf(fs: string): { fstype: number; fsname?: string } {
    if (fs in FSTYPE) return { fstype: FSTYPE[fs]! };
    return this.mountedAnew(fs) ? { fstype: FSTYPE_AUTO, fsname: fs } : { fstype: 0 };
  }

  /** The names in a directory of the tree's mount m as its namespace shows it (undefined: it cannot be read so: hidden) */
  private listing(m: MountInfo): string[] | undefined {
    if (this.hidden(m)) return undefined;
    try {
      return readdirSync(`/proc/${this.rootPid}/root${m.mountPoint}`);
    } catch {
      return undefined;
    }
  }

  /**
   * Why a new mount of the tree's own mount m (of a file system mounted anew, at its root) would
   * not be what the tree had; undefined when it would.
   */
  private notAnew(m: MountInfo): string | undefined {
    if (MEMORY_FS.includes(m.fsType)) {
      const names = this.listing(m);
      if (names === undefined || names.length) return `holds files in memory only (${names === undefined ? 'hidden under another mount: they cannot be read' : names.slice(0, 3).join(', ')}), which a new mount of it would not have (crtools issue 17)`;
    }
    if (m.fsType === 'binfmt_misc' && readlinkSync(`/proc/${this.rootPid}/ns/user`) !== readlinkSync('/proc/self/ns/user')) {
      // (Linux 6.7+: an instance per user namespace; CRIU 4.2 dumps no entry)
      const names = this.listing(m);
      if (names === undefined || names.some((n) => n !== 'register' && n !== 'status')) return 'holds binfmt_misc entries of the tree\'s user namespace, which a new mount in the restored namespace would not have (not carried by CRIU 4.2 either; crtools issue 17)';
    }
    if (m.fsType === 'overlay') {
      // the directories its options name, as the namespace shows them: an upper layer on a tmpfs
      // of the tree's own would come back through tar(1), without the overlay's xattrs (opaque
      // directories, redirects)
      for (const o of superOptionsOf(m.superOptions).options.split(',')) {
        const eq = o.indexOf('=');
        const key = o.slice(0, eq);
        if (eq < 0 || !OVERLAY_DIRS.includes(key)) continue;
        for (const dir of o.slice(eq + 1).split(/(?<!\\):/)) {
          if (!dir.startsWith('/')) return `names ${key} ${dir}, not an absolute path of the namespace (crtools issue 17)`;
          const holder = [...this.list.slice(0, this.list.indexOf(m))].reverse().find((h) => h.mountPoint === '/' || dir === h.mountPoint || dir.startsWith(`${h.mountPoint}/`));
          if (key === 'upperdir' && holder?.fsType === 'tmpfs' && !this.inherited.has(holder.mntId)) return `has its upper layer ${dir} on a tmpfs of the tree's own, whose files come back without the overlay's extended attributes (crtools issue 17)`;
        }
      }
    }
    return undefined;
  }

  /** The tree's own mounts the restore cannot make, refused by name. */
  check(): void {
    const ns = this.nested ? `a nested mount namespace of the tree (task ${this.rootPid})` : `the tree's mount namespace (root ${this.rootPid})`;
    const refuse = (m: MountInfo, why: string) => this.refusals.refuse(new CrtoolsError('UNSUPPORTED_MOUNT', `mount ${m.mntId} at ${m.mountPoint} (${m.fsType}, source ${m.source || '-'}) of ${ns} ${why}`, {
      context: { pid: this.rootPid, mntId: m.mntId, path: m.mountPoint, fstype: m.fsType }, exitCode: ExitCode.UNSUPPORTED,
    }));
    const root = this.list.find((m) => m.mountPoint === '/' && !this.list.some((o) => o.mntId === m.parentId));
    if (this.nested && (!root || !this.inherited.has(root.mntId))) {
      refuse(root ?? this.list[0]!, 'is its root and not the one of the namespace it was made from (pivot_root into a mount of its own), which is not supported by crtools yet (crtools issue 17)');
    } else if (!root || (!this.inherited.has(root.mntId) && !this.opts.root)) {
      const m = root ?? this.list[0]!;
      refuse(m, 'is its root and not the one of criu\'s namespace (pivot_root, chroot into a mount of its own): dump with --root (where the restore puts it)');
    }
    const placed: MountInfo[] = [];
    for (const m of this.list) {
      // (the root: the restore's --root; an external one: the restore's to give)
      if (!this.inherited.has(m.mntId) && m !== root && !this.external.has(m.mntId)) {
        const bind = placed.some((p) => this.bindOf(m, p));
        const anew = this.mountedAnew(m.fsType);
        if (!bind && this.cgroupRooted.get(m.mntId)?.startsWith('/..')) {
          refuse(m, `shows ${this.cgroupRooted.get(m.mntId)} of its hierarchy as the tree's cgroup namespace sees it, above that namespace's root: not supported by crtools yet (crtools issue 17)`);
        } else if (!bind && this.cgroupBelow.has(m.mntId)) {
          // (the restore makes the tree's mounts before its cgroup namespace: a new mount then
          // would show the hierarchy's root)
          refuse(m, `was made in the tree's cgroup namespace, whose root is ${this.cgroupBelow.get(m.mntId)} of the hierarchy: the restore mounts it before that namespace is made again, which is not supported by crtools yet (crtools issue 17)`);
        } else if (!bind && !(anew && m.root === '/') && this.notFound.has(m.mntId)) {
          refuse(m, this.notFound.get(m.mntId)!);
        } else if (!bind && !(anew && m.root === '/')) {
          refuse(m, anew
            ? `shows only ${m.root} of a file system mounted nowhere else in the namespace, which is not supported by crtools yet (crtools issue 17)`
            : isFuse(m.fsType)
              ? 'is a FUSE mount made by the tree: its files come from a process, a new mount would serve none (refused, as CRIU 4.2 refuses it)'
              : MOUNTED_ANEW.has(m.fsType) || ['autofs', 'aufs', 'simfs'].includes(m.fsType)
                ? 'is the tree\'s own and of a file system crtools does not mount again (crtools issue 17)'
                : `is the tree's own and of a file system CRIU 4.2 names no code for: dump with --enable-fs ${m.fsType} to have it mounted again from its source and options (its files are then the caller's to keep, as a block device keeps them)`);
        } else if (m.fsType === 'tmpfs' && !bind && this.hidden(m) && !this.uncoverable() && !this.list.some((o) => sameDev(o, m) && o.root === '/' && !this.hidden(o))) {
          refuse(m, 'is the tree\'s own tmpfs, hidden under another mount, and its namespace belongs to another user namespace: its files cannot be read (crtools issue 17)');
        } else if (!bind) {
          const why = this.notAnew(m);
          if (why) refuse(m, why);
        }
        // in place of the copy of an external mount of the root's namespace (zdtm
        // mnt_ext_collision: its files were not there after the restore)
        if (this.nested?.externalAt?.has(m.mountPoint)) refuse(m, 'is mounted where the root\'s namespace has an external mount (--external mnt[]), in place of its copy: not supported by crtools yet (crtools issue 17)');
        // a tmpfs another namespace of the tree shows too, mounted anew here, would be another one
        if (this.nested && !bind && m.fsType === 'tmpfs' && this.nested.elsewhere.has(`${m.devMajor}:${m.devMinor}`)) {
          refuse(m, 'is a tmpfs another mount namespace of the tree shows too, and no mount of this one it could be bound from comes before it: the restore would make a second file system (crtools issue 17)');
        }
        if (m.unbindable) refuse(m, 'is unbindable, which is not supported by crtools yet (crtools issue 17)');
      }
      placed.push(m);
    }
  }

  /** mountpoints-<id>.img and the tmpfs contents (tmpfs-dev-<dev>.tar.gz.img), read while the tree is frozen. */
  async write(dir: string, id: number, done = new Set<string>()): Promise<string[]> {
    const entries: Entry[] = [...this.list].reverse().map((m) => {
      const sb = superOptionsOf(m.superOptions);
      let flags = mountFlagsOf(m.mountOptions);
      if (m.shared) flags |= MNT_FLAG.SHARED;
      if (m.master) flags |= MNT_FLAG.SLAVE;
      if (m.unbindable) flags |= MNT_FLAG.UNBINDABLE;
      // (as CRIU: the kernel does not show newinstance, a devpts that is not criu's is one)
      const options = m.fsType === 'devpts' && `${m.devMajor}:${m.devMinor}` !== this.hostPts ? [sb.options, 'newinstance'].filter(Boolean).join(',') : sb.options;
      // a bind mount whose root was removed since (mountinfo's root ends in "//deleted"): its
      // root without the mark and `deleted`, as CRIU 4.2 writes it
      const deleted = m.root.endsWith(DELETED_ROOT);
      return {
        ...this.fstypeOf(m.fsType), mnt_id: m.mntId, root_dev: Number(encodeKdev(m.devMajor, m.devMinor)), parent_mnt_id: m.parentId,
        flags, root: deleted ? m.root.slice(0, -DELETED_ROOT.length) || '/' : m.root, ...(deleted ? { deleted: true } : {}), mountpoint: m.mountPoint, source: this.autoSource.get(m.mntId) ?? m.source, options,
        shared_id: m.shared ?? 0, master_id: m.master ?? 0, sb_flags: sb.sbFlags,
        ...(this.external.has(m.mntId) ? { ext_key: this.external.get(m.mntId) } : {}),
      };
    });
    const f = `mountpoints-${id}.img`;
    await writeImageFile(path.join(dir, f), { magic: 'MNTS', entries });
    const written = [f];
    // each tmpfs once (CRIU restores every one it mounts from these): through a mount of it that
    // shows all of it, one not hidden first; a hidden one through a copy of the namespace with
    // the mounts over it unmounted; an inherited one hidden under another is kept empty (the
    // restore keeps the restorer's copy of an inherited mount; CRIU would make it empty); `done`:
    // the devices of the tmpfs written already (by another namespace of the tree's)
    for (const m of this.list) {
      const dev = `${m.devMajor}:${m.devMinor}`;
      if (m.fsType !== 'tmpfs' || done.has(dev) || this.external.has(m.mntId)) continue;
      const whole = this.list.filter((o) => sameDev(o, m) && o.root === '/' && !this.external.has(o.mntId));
      const shown = whole.find((o) => !this.hidden(o)) ?? whole.find((o) => !this.inherited.has(o.mntId));
      done.add(dev);
      const t = `tmpfs-dev-${encodeKdev(m.devMajor, m.devMinor)}.tar.gz.img`;
      this.tar(path.join(dir, t), shown?.mountPoint, shown ? this.covering(shown).reverse().map((o) => o.mountPoint) : []);
      written.push(t);
    }
    return written;
  }

  /**
   * A gzipped tar of the tmpfs mounted at `mountPoint` of the tree's namespace (an empty one when
   * undefined) into file `to`, read through a detached copy of that one mount: the files that
   * mounts on top of it hide (a directory of it another mount covers) are in it too. A mount
   * that others cover is reached with `uncover` (their mount points, last mounted first).
   */
  private tar(to: string, mountPoint: string | undefined, uncover: readonly string[]): void {
    const fd = openSync(to, 'w', 0o600);
    let tree: number | undefined;
    try {
      if (mountPoint !== undefined) {
        try {
          tree = cloneMount(this.rootPid, mountPoint, uncover);
        } catch (e) {
          // the kernel copies no mount alone that has locked mounts on it (a namespace owned by
          // another user namespace, its mounts inherited): read through the mount point, as the
          // tree sees it (what those mounts hide, the tree could not see either); a covered one
          // cannot be read so (check refused the tree's own)
          if ((e as NodeJS.ErrnoException).code !== 'EINVAL' || uncover.length) throw e;
        }
      }
      const from = tree !== undefined ? '/proc/self/fd/3' : mountPoint !== undefined ? `/proc/${this.rootPid}/root${mountPoint}` : undefined;
      const r = process.getBuiltinModule('node:child_process').spawnSync('tar', [...TAR_CREATE, '--directory', from ?? '/', ...(from !== undefined ? ['.'] : ['--files-from', '/dev/null'])], {
        stdio: ['ignore', fd, 'pipe', ...(tree !== undefined ? [tree] : [])],
      });
      if (r.error || r.status !== 0) {
        throw new CrtoolsError('DUMP_FAILED', `tar of the tmpfs at ${mountPoint}: ${r.error?.message ?? r.stderr.toString().trim()}`, { context: { path: mountPoint }, exitCode: ExitCode.FAILED });
      }
    } finally {
      if (tree !== undefined) closeSync(tree);
      closeSync(fd);
    }
  }
}
