/**
 * Unlinked files for a restore (removed directories are made again empty, at their own name
 * when it is free, and removed with rmdir; directories above one that were removed too are made
 * for the while and removed after it; unlinked FIFOs made again empty with mknod, unlinked
 * device nodes with mknod and their device number, unlinked symbolic links with what they held): each ghost of the plan is written out under a temporary name
 * beside its original one (its size, its contents copied from the image piece by piece at their
 * offsets so that holes stay holes, then owner, mode and times) and linked at the original name
 * when that is free, so the tasks reopen it by the name they had; both names are removed once
 * the tasks hold it (or the restore failed), leaving it unlinked again as dumped.
 *
 * Mapping or executing a file updates its access time (relatime: the new file's ctime is later
 * than the recorded atime), so the times are set once more when every task holds its files,
 * before they resume (`settle`).
 *
 * A tree with a mount namespace of its own has its unlinked files in its own mounts: one on a
 * mount the restorer reaches (the --root directory, an external mount, a bind of one) is made
 * there before the tree exists; one on a mount the restore makes anew (a tmpfs of the tree's) is
 * made once the tree's mounts are, through the root task's root (`inTree`), at its own name,
 * which the tasks open it by (a name taken there fails the restore).
 */
import { closeSync, constants, existsSync, fchmodSync, fchownSync, ftruncateSync, lchownSync, linkSync, mkdirSync, openSync, readSync, rmdirSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ExitCode } from '@crtools/common';
import { hostPathOf, madeMountpoints, readOnlyAt } from './mounts.js';
import { makeDeviceNode, makeFifo, setFileTimes, setLinkTimes } from '@crtools/sys';
import type { GhostPlan } from '@crtools/files/plan';
import type { RestorePlan } from './plan.js';
import { RestoreErrorCode, restoreError } from './errors.js';
import { hostOwner } from './userns.js';

/**
 * Where the unlinked files of a tree go: the name the tasks open a file of the tree's path `p`
 * by (below the new root under --root, until the pivot), and where the restorer makes it before
 * the tree's mounts exist (undefined: only once they do, below `inTree` of the root task).
 */
export interface GhostPlaces {
  task(p: string): string;
  now(p: string): string | undefined;
  /** the tree's root as the restorer reaches it through the root task, once its mounts are made */
  inTree(rootPid: number): string;
  /** is the tree's mount that holds `p` read-only (as dumped)? */
  readOnly(p: string): boolean;
}

const SAME: GhostPlaces = { task: (p) => p, now: (p) => p, inTree: () => '', readOnly: () => false };
const under = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);

/**
 * The places of a plan's unlinked files: the restorer's own paths for a tree in its mount
 * namespace; with a mount namespace of the tree's, the mounts made anew are reached from inside;
 * under --root (`mountRoot`) every path is the tree's, below the new root.
 */
export function ghostPlaces(plan: RestorePlan, mountRoot?: { root: string; ext: ReadonlyMap<string, string> }): GhostPlaces {
  const mounts = plan.namespaces?.mounts;
  if (!mounts || !plan.ghosts?.length) return SAME;
  if (mountRoot) {
    const { root, ext } = mountRoot;
    return {
      task: (p) => (p === '/' ? root : `${root}${p}`), now: (p) => hostPathOf(mounts, root, ext, p), inTree: (pid) => `/proc/${pid}/root${root}`,
      readOnly: (p) => readOnlyAt(mounts, p),
    };
  }
  const made = madeMountpoints(mounts);
  return {
    task: (p) => p, now: (p) => (made.some((d) => under(p, d)) ? undefined : p), inTree: (pid) => `/proc/${pid}/root`,
    readOnly: (p) => readOnlyAt(mounts, p),
  };
}

export interface GhostFiles {
  /** the name each task opens ghost i by */
  paths: string[];
  /** make those on mounts made anew, once the tree's mounts are (root task rootPid) */
  inTree(rootPid: number): void;
  /** set the recorded times again (the tasks hold their files now, nothing more will touch them) */
  settle(): void;
  /** unlink every name made, close what was kept open (idempotent) */
  release(): void;
}

/** Bytes copied at a time from an image into a ghost file. */
const PIECE = 1 << 20;

/** Write the contents of ghost g into fd (a new empty file): its size first, then each extent. */
function writeContents(fd: number, g: GhostPlan): void {
  ftruncateSync(fd, Number(g.size));
  if (g.contents.length === 0) return;
  const img = openSync(g.image, constants.O_RDONLY);
  try {
    const buf = Buffer.allocUnsafe(Math.min(PIECE, Math.max(...g.contents.map((c) => c.len))));
    for (const c of g.contents) {
      for (let done = 0; done < c.len; ) {
        const n = Math.min(buf.length, c.len - done);
        let got = 0;
        while (got < n) {
          const r = readSync(img, buf, got, n - got, c.at + done + got);
          if (r === 0) throw new Error(`${g.image} ends before the ${c.len} bytes at ${c.at}`);
          got += r;
        }
        for (let put = 0; put < n; ) put += writeSync(fd, buf, put, n - put, Number(c.off) + done + put);
        done += n;
      }
    }
  } finally {
    closeSync(img);
  }
}

/**
 * The directories above `path` that no longer exist (removed with what was in them), made again
 * (mode 0700, the restorer's) and listed in `dirs` so that they go again with the rest.
 */
function makeParents(path: string, dirs: string[]): void {
  const missing: string[] = [];
  for (let d = dirname(path); d !== '/' && !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    mkdirSync(d, 0o700);
    dirs.push(d);
  }
}

/**
 * A removed directory made again, empty, at its own name (`at`) when that is free (else at `tmp`),
 * with its owner, mode and times; kept open until the times are set for the last time.
 */
function makeDir(g: GhostPlan, at: string, tmp: string, dirs: string[], held: { fd: number; g: GhostPlan }[]): string {
  let name = at;
  try {
    try {
      makeParents(name, dirs);
      mkdirSync(name, 0o700);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      name = tmp;
      mkdirSync(name, 0o700);
    }
    dirs.push(name);
    const fd = openSync(name, constants.O_RDONLY | constants.O_DIRECTORY);
    held.push({ fd, g });
    fchownSync(fd, g.uid, g.gid);
    fchmodSync(fd, g.mode & 0o7777);
    if (g.times) setFileTimes(fd, g.times.atime, g.times.mtime);
  } catch (e) {
    throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot recreate the removed directory ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
  }
  return name;
}

/**
 * An unlinked symbolic link made again, holding what it held, with its owner and times (a
 * link's mode is always 0777); at `at` when that name is free, else at `tmp`. Nothing a task
 * does through an O_PATH descriptor changes its times: they are set once.
 */
function makeSymlink(g: GhostPlan, at: string, tmp: string, made: string[], dirs: string[]): string {
  try {
    makeParents(tmp, dirs);
    symlinkSync(g.symlink!, tmp);
    made.push(tmp);
    lchownSync(tmp, g.uid, g.gid);
    if (g.times) setLinkTimes(tmp, g.times.atime, g.times.mtime);
  } catch (e) {
    throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot recreate the unlinked symbolic link ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
  }
  try {
    linkSync(tmp, at); // (a hard link to the link itself: link(2) does not follow it)
    made.push(at);
    return at;
  } catch {
    /* the original name is taken again: the tasks get the temporary one */
    return tmp;
  }
}

export function createGhosts(plan: RestorePlan, places: GhostPlaces = SAME): GhostFiles {
  const made: string[] = [];
  /** directories made (removed ones, and the removed parents of an unlinked file or removed
   * directory), removed with rmdir after the files, the last made first */
  const dirs: string[] = [];
  const held: { fd: number; g: GhostPlan }[] = [];
  /** the tree's root, held open once its mounts are made (its name changes with the pivot of --root) */
  let treeRoot: number | undefined;
  const release = () => {
    // (in the order made: the name the tasks opened a ghost by goes after its temporary one. The
    // inode's last name unlinked from a dentry no one holds would end every inotify watch on it
    // — the kernel's inode-removal notice —, as it does after CRIU 4.2's restore)
    for (const p of made.splice(0)) {
      try {
        unlinkSync(p);
      } catch {
        /* gone already */
      }
    }
    for (const p of dirs.splice(0).reverse()) {
      try {
        rmdirSync(p);
      } catch {
        /* gone already */
      }
    }
    for (const h of held.splice(0)) closeSync(h.fd);
    if (treeRoot !== undefined) closeSync(treeRoot);
    treeRoot = undefined;
  };
  /** link_remap names (--link-remap) of files the tasks opened by their own: removed once the restore holds (settle) */
  const linkedNames: string[] = [];
  const settle = () => {
    for (const p of linkedNames.splice(0)) {
      try {
        unlinkSync(p);
      } catch {
        /* gone already */
      }
    }
    for (const { fd, g } of held) {
      try {
        if (g.times) setFileTimes(fd, g.times.atime, g.times.mtime);
      } catch (e) {
        throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot set the times of the unlinked file ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
      }
    }
  };
  /**
   * the ghosts a task maps or executes (which moves their access time): kept open here until the
   * times are set again (settle); any other regular file is closed once made, before any task
   * runs, so that nothing of the restorer's reaches a watch put on it (an inotify watch on a file
   * unlinked since: no IN_CLOSE_WRITE, no IN_ATTRIB but the unlinking's, as CRIU 4.2)
   */
  // (looked for only when there are ghosts: the areas of every task are walked, 60,000 of them at times)
  const touched = new Set<number>();
  if (plan.ghosts?.length) {
    for (const t of plan.tasks) {
      if (t.exeGhost !== undefined) touched.add(t.exeGhost);
      for (const v of t.vmas) if (v.ghost !== undefined) touched.add(v.ghost);
    }
  }
  /** ghost g made at `at` (its name as the restorer reaches it): the name it got, `at` or a temporary one beside it */
  const make = (g: GhostPlan, i: number, at: string): string => {
    const tmp = `${at}.cr.${(i + 1).toString(16)}.ghost`;
    if (g.linked !== undefined) return linkAgain(g, at);
    if (g.dir) return makeDir(g, at, tmp, dirs, held);
    if (g.symlink !== undefined) return makeSymlink(g, at, tmp, made, dirs);
    try {
      // an unlinked FIFO: made empty (its bytes are the FIFO kind's); opened read-write, which
      // does not wait for the other end, to set its owner, mode and times. An unlinked device
      // node (/dev/null-like: opening one does nothing to it) is made with its device number.
      const special = g.fifo || g.rdev !== undefined;
      makeParents(tmp, dirs);
      if (g.fifo) makeFifo(tmp, 0o600);
      if (g.rdev !== undefined) makeDeviceNode(tmp, (g.mode & ~0o7777) | 0o600, g.rdev);
      if (special) made.push(tmp);
      const fd = openSync(tmp, special ? constants.O_RDWR | constants.O_NONBLOCK : constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      if (!special) made.push(tmp);
      held.push({ fd, g });
      if (!special) writeContents(fd, g);
      // owner before mode (chown drops set-id bits), times last (as CRIU applies them)
      fchownSync(fd, g.uid, g.gid);
      fchmodSync(fd, g.mode & 0o7777);
      if (g.times) setFileTimes(fd, g.times.atime, g.times.mtime);
      if (!special && !touched.has(i)) closeSync(held.pop()!.fd);
    } catch (e) {
      throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot recreate the unlinked file ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
    }
    try {
      linkSync(tmp, at);
      made.push(at);
      return at;
    } catch {
      /* the original name is taken again: the tasks get the temporary one */
      return tmp;
    }
  };
  /**
   * A linked remap: the dump's link_remap name (beside `at`, or in a directory above it when
   * the dump found its own removed) linked again at `at`, the name the tasks open it by (its
   * removed directories made for the while); that one goes with the ghosts' names, the
   * link_remap one once the tasks hold the file (kept if the restore fails, for another try).
   */
  const linkAgain = (g: GhostPlan, at: string): string => {
    const from = `${at.slice(0, at.length - g.path.length)}${g.linked}`;
    if (!existsSync(from)) {
      throw restoreError(RestoreErrorCode.LAUNCH, `restore: ${g.linked}, the name the dump gave ${g.path} (--link-remap), is gone`, { path: g.linked! }, ExitCode.FAILED);
    }
    try {
      // (its directory removed too: made for the while, and removed again with the ghosts' names)
      makeParents(at, dirs);
      linkSync(from, at);
    } catch (e) {
      throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot link ${g.linked} at ${g.path} again, where the tasks open it: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
    }
    made.push(at);
    linkedNames.push(from);
    return at;
  };
  const paths: string[] = [];
  // (owners as the images keep them: inside the tree's user namespace when it has one)
  const outside = (g: GhostPlan): GhostPlan => ({ ...g, ...hostOwner(plan, g.uid, g.gid, `the unlinked file ${g.path}`) });
  /** ghosts on mounts made anew: made once they are */
  const later: number[] = [];
  try {
    (plan.ghosts ?? []).forEach((g, i) => {
      const at = places.now(g.path);
      // (one made inside the tree would have to be made, and its names removed once the tasks
      // hold it, while its mount is made writable for the while: not done yet)
      if (at === undefined && places.readOnly(g.path)) {
        throw restoreError(RestoreErrorCode.UNSUPPORTED, `restore: the unlinked file ${g.path} lies on a read-only mount the restore makes anew in the tree's mount namespace, where crtools does not make unlinked files yet`, { path: g.path }, ExitCode.UNSUPPORTED);
      }
      if (at === undefined) {
        later.push(i);
        paths.push(places.task(g.path));
        return;
      }
      // the temporary name lies beside the original one: the tasks reach it beside theirs
      const name = make(outside(g), i, at);
      paths.push(name === at ? places.task(g.path) : `${places.task(g.path)}${name.slice(at.length)}`);
    });
  } catch (e) {
    release();
    throw e;
  }
  const inTree = (rootPid: number) => {
    if (!later.length) return;
    try {
      treeRoot = openSync(places.inTree(rootPid), constants.O_RDONLY | constants.O_DIRECTORY);
      const base = `/proc/self/fd/${treeRoot}`;
      for (const i of later.splice(0)) {
        const g = plan.ghosts![i]!;
        if (make(outside(g), i, `${base}${g.path}`) !== `${base}${g.path}`) {
          throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot recreate the unlinked file ${g.path}: its name is taken in the tree's mount namespace, where the tasks open it by that name`, { path: g.path }, ExitCode.FAILED);
        }
      }
    } catch (e) {
      release();
      throw e;
    }
  };
  return { paths, inTree, settle, release };
}
