/**
 * Regular files opened again by path, checked to still be there with the recorded size;
 * unlinked ones (remap-fpath.img names each one's ghost-file-<id>.img) are made again from
 * the contents the dump kept.
 */
import { existsSync, lstatSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { locateEntries } from '@crtools/images';
import { decodeDev } from '@crtools/images/facts';
import { badImage, big, missingFile, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';

/** What every file of the plan has: its open(2) flags (O_ACCMODE, O_APPEND, O_NONBLOCK, O_ASYNC...) and offset. */
export interface FileBase {
  flags: number;
  pos: bigint;
  /** its I/O signal settings, when it has any (files.img fown_entry: an owner or a signal) */
  fown?: FownPlan;
  /**
   * a socket: the network namespace it was made in, by its id in the images (ns_id as written;
   * the restorer keeps it only for a namespace below the root's, where the socket is made)
   */
  netns?: number;
}

/**
 * Where the open file's I/O signals go (F_SETOWN_EX) and which signal (F_SETSIG), with the uids
 * the owner was recorded with (they decide whether the owner may be signalled).
 */
export interface FownPlan {
  /** F_SETSIG (0: SIGIO) */
  signum: number;
  /** F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2 */
  pidType: number;
  /** the owner (0: none) */
  pid: number;
  uid: number;
  euid: number;
}

/** A regular file (or directory, device) opened again by path; `ghost`: an unlinked one, index into the plan's ghosts. */
export interface RegFilePlan extends FileBase {
  kind: 'reg';
  path: string;
  size?: bigint;
  ghost?: number;
  /**
   * opened only once every task of the tree exists with its pid: a file under /proc/PID/ of a
   * task other than the root, a namespace's file (/proc/PID/ns/X), a file of a mount namespace
   * below the root's (/proc/PID/root/...)
   */
  late?: boolean;
  /** a file of a mount namespace below the root's: its name there and a task living there (`path` reaches it through that task's root) */
  inNs?: { pid: number; name: string };
}

/**
 * An unlinked file a task still had open or mapped, or a removed directory it held open or
 * was in: the restorer makes it again (at `path`
 * when that name is free, else beside it) and unlinks it once the tasks hold it. Its contents
 * stay in the image until then: `contents` says where.
 */
export interface GhostPlan {
  path: string;
  /** the ghost-file image holding the contents */
  image: string;
  /** the file's size (what lies outside `contents` is a hole) */
  size: bigint;
  /** bytes [at, at + len) of the image go to offset off of the file */
  contents: GhostExtent[];
  /** st_mode as dumped (a regular file, a directory or a FIFO) */
  mode: number;
  /** an unlinked FIFO: made again empty with mknod (what its pipe held is the FIFO kind's) */
  fifo?: boolean;
  /** an unlinked symbolic link (held by O_PATH|O_NOFOLLOW): made again holding this */
  symlink?: string;
  /** a removed directory (a descriptor's, a cwd or root): made again empty, removed with rmdir */
  dir?: boolean;
  /** an unlinked device node (a /dev/null-like character device): made again with mknod, its device number as stat(2) gave it */
  rdev?: number;
  /**
   * CRIU's linked remap (--link-remap): the file was not copied, it still exists under this
   * name (link_remap.N, made by the dump beside the removed one): linked again at `path`, opened
   * by the tasks, and both names removed once they hold it (only `path` if the restore fails:
   * the images need the other)
   */
  linked?: string;
  uid: number;
  gid: number;
  /** the unlinked inode as dumped (ghost_file_entry dev, the kernel's encoding, and ino), when the image has them: an inotify watch on it names it so */
  dev?: number;
  ino?: bigint;
  /** set last, when the image has them (to the microsecond, as CRIU keeps them) */
  times?: { atime: GhostTime; mtime: GhostTime };
}

export interface GhostExtent {
  off: bigint;
  len: number;
  at: number;
}

export interface GhostTime {
  sec: bigint;
  nsec: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFLNK = 0o120000;

function timeOf(t: Obj): GhostTime {
  return { sec: big(t.tv_sec), nsec: Number(big(t.tv_usec)) * 1000 };
}

/**
 * The plan of ghost image `name` of dir: its head, then either the contents up to the end of
 * the image (unchunked) or its chunks, each at its offset (located, not read).
 */
async function ghostPlan(dir: string, name: string, path: string): Promise<GhostPlan> {
  const image = join(dir, name);
  if (!existsSync(image)) throw badImage(`${image}: image missing`, { path: image, image });
  const located = await locateEntries(image);
  if (located.magic !== 'GHOST_FILE') throw badImage(`${image}: a ${located.magic} image where GHOST_FILE was expected`, { path: image, image });
  const [first, ...chunks] = located.entries;
  if (!first) throw badImage(`${image}: image has no entry`, { path: image, image });
  const head = first.entry as Obj;
  const mode = Number(head.mode);
  const type = mode & S_IFMT;
  // a device node: the devices a descriptor is carried on (char major 1: /dev/null, zero, full, random, urandom)
  const memDevice = type === S_IFCHR && head.rdev !== undefined && decodeDev(Number(head.rdev)).major === 1;
  if (type === S_IFLNK && typeof head.symlnk_target !== 'string') throw badImage(`${image}: an unlinked symbolic link without its target (symlnk_target)`, { path: image, image });
  if (type !== S_IFREG && type !== S_IFDIR && type !== S_IFIFO && type !== S_IFLNK && !memDevice) {
    const what = type === S_IFCHR || type === S_IFBLK ? `a device node other than /dev/null-like ones (${type === S_IFCHR ? 'char' : 'block'} ${head.rdev === undefined ? 'without its device number' : Object.values(decodeDev(Number(head.rdev))).join(':')})` : `neither a regular file, a directory, a FIFO, a symbolic link nor a device node (mode 0${mode.toString(8)})`;
    throw refuse(`${name}: the unlinked file ${path} is ${what}, which restore does not make`, { path, image });
  }
  const plan: GhostPlan = { path, image, size: 0n, contents: [], mode, uid: Number(head.uid), gid: Number(head.gid) };
  if (head.dev !== undefined && head.ino !== undefined) Object.assign(plan, { dev: Number(head.dev), ino: big(head.ino) });
  if (head.atim && head.mtim) plan.times = { atime: timeOf(head.atim), mtime: timeOf(head.mtim) };
  if (memDevice) {
    plan.rdev = Number(head.rdev);
    return plan;
  }
  if (type === S_IFLNK) {
    plan.symlink = head.symlnk_target as string;
    return plan;
  }
  if (type === S_IFDIR || type === S_IFIFO) {
    if (type === S_IFDIR) plan.dir = true;
    else plan.fifo = true;
    return plan;
  }
  if (!head.chunks) {
    const p = first.payload!;
    plan.size = BigInt(p.length);
    if (p.length > 0) plan.contents.push({ off: 0n, len: p.length, at: p.offset });
    return plan;
  }
  if (head.size === undefined) throw badImage(`${image}: a ghost file in chunks without its size`, { path: image, image });
  plan.size = big(head.size);
  for (const { entry, payload } of chunks) {
    const off = big(entry.off);
    if (off + big(entry.len) > plan.size) throw badImage(`${image}: a chunk of ${entry.len} bytes at ${off} runs past the file's size (${plan.size})`, { path: image, image });
    if (payload!.length > 0) plan.contents.push({ off, len: payload!.length, at: payload!.offset });
  }
  return plan;
}

/** O_TMPFILE (with its O_DIRECTORY bit): not asked again when an unlinked file is reopened */
const __O_TMPFILE = 0o20000000;
const O_TMPFILE = __O_TMPFILE | 0o200000;
const O_PATH = 0o10000000;
const O_NOFOLLOW = 0o400000;

export class RegPlans implements PlanKind<RegFilePlan> {
  /** mount points the restore mounts anew (a mount namespace of the tree's): files below them are not looked for before */
  madeAt: readonly string[] = [];
  /** --skip-file-rwx-check: a file's permission bits may differ from the recorded mode (its type and setuid/setgid/sticky bits may not) */
  skipRwxCheck = false;
  /**
   * the mounts of the tree's mount namespaces below the root's, mount id → a task living there:
   * a file reached through one is opened by its path in that namespace, through the task's root
   * (/proc/PID/root, the root task's /proc), once every task exists (late)
   */
  nestedMounts: ReadonlyMap<number, number> = new Map();

  /**
   * How a file named by reg-files.img differs from what the dump recorded, where the restore can
   * look before it runs: its size (a regular file's, when recorded) or its mode (type and
   * permission bits; CRIU's "has bad mode"); undefined when it is as recorded. `itself`: the
   * path names a symbolic link (O_PATH|O_NOFOLLOW), not where it leads.
   */
  changedSince(r: Obj, itself = false): string | undefined {
    if ((r.size === undefined && r.mode === undefined) || this.madeLater(r.name)) return undefined;
    const st = this.statOf(r.name, itself);
    if (!st) return undefined;
    if (r.size !== undefined && st.isFile() && BigInt(st.size) !== big(r.size)) return `changed size (${st.size}, recorded ${r.size})`;
    if (r.mode !== undefined) {
      const mask = this.skipRwxCheck ? ~0o777 : ~0;
      const [now, was] = [st.mode, Number(r.mode)];
      if ((now & mask) !== (was & mask)) return `has mode 0${now.toString(8)}, recorded 0${was.toString(8)}${this.skipRwxCheck ? '' : ' (--skip-file-rwx-check lets the rwx bits differ)'}`;
    }
    return undefined;
  }

  /** Is path below a mount the restore makes anew (so that it cannot be looked at before)? */
  madeLater(path: string): boolean {
    return this.madeAt.some((d) => path === d || path.startsWith(d.endsWith('/') ? d : `${d}/`));
  }

  /**
   * Is the file at path missing, where the restore can look before it runs? `itself`: the path
   * names the file (a symbolic link opened O_PATH|O_NOFOLLOW), not where it leads.
   */
  gone(path: string, itself = false): boolean {
    return !this.madeLater(path) && this.statOf(path, itself) === undefined;
  }

  /**
   * stat(2) (lstat(2) for `itself`) of a file the plan looks at, once per plan: every area of
   * every task mapping a library asks about the same few files (a tree of 100 processes: ~2,000
   * calls for three paths). The plan is made before the restore touches any file.
   */
  private statOf(path: string, itself: boolean): Stats | undefined {
    const key = itself ? `l${path}` : `s${path}`;
    if (this.stats.has(key)) return this.stats.get(key);
    let st: Stats | undefined;
    try {
      st = itself ? lstatSync(path, { throwIfNoEntry: false }) : statSync(path, { throwIfNoEntry: false });
    } catch {
      st = undefined; // (as existsSync: a path that cannot be looked at is not there)
    }
    this.stats.set(key, st);
    return st;
  }

  private readonly stats = new Map<string, Stats | undefined>();

  readonly type = 'REG';
  readonly field = 'reg';
  /** the unlinked files of the checkpoint */
  readonly ghosts: GhostPlan[] = [];
  /** files.img id → index of its ghost */
  readonly ghostOf = new Map<number, number>();
  /**
   * The ghost made of unlinked inode `ino` of device `dev` (the kernel's encoding), as CRIU 4.2's
   * restore finds the file a watch is on: its index, undefined when no ghost is that inode.
   */
  ghostByInode(dev: number, ino: bigint): number | undefined {
    const i = this.ghosts.findIndex((g) => g.dev === dev && g.ino === ino);
    return i < 0 ? undefined : i;
  }

  /** processes gone whose /proc files the checkpoint holds (remap-fpath.img PROCFS): each made again, with its pid, while the files are opened, then ended */
  readonly deadPids = new Set<number>();

  /** the root task's pid (pstree.img's first entry): the one task that exists when the files are opened */
  private rootPid: number | undefined;

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    const root = (await readImage(dir, 'pstree.img', 'PSTREE', true))?.[0];
    this.rootPid = root ? Number(root.pid) : undefined;
    const byImage = new Map<number, number>();
    const byLink = new Map<number, number>();
    for (const r of (await readImage(dir, 'remap-fpath.img', 'REMAP_FPATH', true)) ?? []) {
      const type = r.remap_type ?? 'LINKED';
      if (type === 'PROCFS' || type === 2) {
        // a /proc/PID file of a process gone (CRIU 4.2's dead pid): pid PID made again for the while its files are opened
        const orig = files.get(Number(r.orig_id));
        if (!orig?.reg || !new RegExp(`^/proc/${Number(r.remap_id)}(/|$)`).test(String(orig.reg.name))) throw badImage(`remap-fpath.img: file ${r.orig_id} is no /proc file of process ${r.remap_id}`, { image: 'remap-fpath.img' });
        this.deadPids.add(Number(r.remap_id));
        continue;
      }
      if (type === 'LINKED' || type === 0) {
        const orig = files.get(Number(r.orig_id));
        const link = files.get(Number(r.remap_id));
        if (!orig?.reg || !link?.reg) throw badImage(`remap-fpath.img: linked remap ${r.orig_id} -> ${r.remap_id} names no regular files of files.img`, { image: 'remap-fpath.img' });
        let gi = byLink.get(Number(r.remap_id));
        if (gi === undefined) {
          gi = this.ghosts.push({ path: String(orig.reg.name), linked: String(link.reg.name), image: '', size: 0n, contents: [], mode: 0, uid: 0, gid: 0 }) - 1;
          byLink.set(Number(r.remap_id), gi);
        }
        this.ghostOf.set(Number(r.orig_id), gi);
        continue;
      }
      if (type !== 'GHOST' && type !== 1) throw refuse(`remap-fpath.img: file ${r.orig_id} is remapped the ${type} way, which restore does not do yet`);
      const orig = files.get(Number(r.orig_id));
      if (!orig?.reg) throw badImage(`remap-fpath.img: file ${r.orig_id} is not a regular file of files.img`, { image: 'remap-fpath.img' });
      const gid = Number(r.remap_id);
      let gi = byImage.get(gid);
      if (gi === undefined) {
        const name = `ghost-file-${gid.toString(16)}.img`;
        gi = this.ghosts.push(await ghostPlan(dir, name, orig.reg.name)) - 1;
        byImage.set(gid, gi);
      }
      this.ghostOf.set(Number(r.orig_id), gi);
    }
  }

  plan(r: Obj, ctx: PlanContext): RegFilePlan {
    const ghost = this.ghostOf.get(ctx.id);
    // (a directory keeps its O_DIRECTORY: only a file opened O_TMPFILE loses both bits)
    const flags = Number(r.flags ?? 0);
    if (ghost !== undefined) return { kind: 'reg', path: r.name, flags: flags & __O_TMPFILE ? flags & ~O_TMPFILE : flags, pos: big(r.pos), ghost };
    const via = r.mnt_id === undefined || r.mnt_id === null ? undefined : this.nestedMounts.get(Number(r.mnt_id));
    if (via !== undefined) return { kind: 'reg', path: `/proc/${via}/root${r.name}`, flags, pos: big(r.pos), late: true, inNs: { pid: via, name: String(r.name) } };
    // a file of /proc/PID/ names a task of the tree (the dump carries no other), which does not
    // exist yet: it is opened once it does (the root's own at once, with the root's other files)
    // (and so is one of a thread's, /proc/PID/task/TID/, but the root's main thread's)
    const proc = /^\/proc\/(\d+)(?:\/task\/(\d+))?(?:\/|$)/.exec(String(r.name));
    if (proc) {
      const p: RegFilePlan = { kind: 'reg', path: r.name, flags: r.flags ?? 0, pos: big(r.pos) };
      // (one of a process gone is opened with the root's files, while a helper has its pid)
      if (this.deadPids.has(Number(proc[1]))) return p;
      if (Number(proc[1]) !== this.rootPid || (proc[2] !== undefined && proc[2] !== proc[1])) p.late = true;
      return p;
    }
    // (a symbolic link held by O_PATH|O_NOFOLLOW: the link itself is looked at, not where it leads)
    const itself = (flags & (O_PATH | O_NOFOLLOW)) === (O_PATH | O_NOFOLLOW);
    if (this.gone(r.name, itself)) throw missingFile(`${ctx.what}: file ${r.name} no longer exists`, r.name);
    const changed = this.changedSince(r, itself);
    if (changed) throw missingFile(`${ctx.what}: file ${r.name} ${changed}`, r.name);
    return { kind: 'reg', path: r.name, flags: r.flags ?? 0, pos: big(r.pos), size: r.size === undefined ? undefined : big(r.size) };
  }

  inheritKey(r: Obj): string {
    return String(r.name).replace(/^\//, '');
  }
}
