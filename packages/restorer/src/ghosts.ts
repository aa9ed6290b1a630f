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
 */
import { closeSync, constants, existsSync, fchmodSync, fchownSync, ftruncateSync, lchownSync, linkSync, mkdirSync, openSync, readSync, rmdirSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ExitCode } from '@crtools/common';
import { makeDeviceNode, makeFifo, setFileTimes, setLinkTimes } from '@crtools/sys';
import type { GhostPlan } from '@crtools/files/plan';
import type { RestorePlan } from './plan.js';
import { RestoreErrorCode, restoreError } from './errors.js';

export interface GhostFiles {
  /** the name each task opens ghost i by */
  paths: string[];
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
 * A removed directory made again, empty, at its own name when that is free (else at `tmp`),
 * with its owner, mode and times; kept open until the times are set for the last time.
 */
function makeDir(g: GhostPlan, tmp: string, dirs: string[], held: { fd: number; g: GhostPlan }[]): string {
  let name = g.path;
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
 * link's mode is always 0777); at its own name when that is free, else at `tmp`. Nothing a task
 * does through an O_PATH descriptor changes its times: they are set once.
 */
function makeSymlink(g: GhostPlan, tmp: string, made: string[], dirs: string[]): string {
  let name = tmp;
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
    linkSync(tmp, g.path); // (a hard link to the link itself: link(2) does not follow it)
    made.push(g.path);
    name = g.path;
  } catch {
    /* the original name is taken again: the tasks get the temporary one */
  }
  return name;
}

export function createGhosts(plan: RestorePlan): GhostFiles {
  const made: string[] = [];
  /** directories made (removed ones, and the removed parents of an unlinked file or removed
   * directory), removed with rmdir after the files, the last made first */
  const dirs: string[] = [];
  const held: { fd: number; g: GhostPlan }[] = [];
  const release = () => {
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
  };
  const settle = () => {
    for (const { fd, g } of held) {
      try {
        if (g.times) setFileTimes(fd, g.times.atime, g.times.mtime);
      } catch (e) {
        throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot set the times of the unlinked file ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
      }
    }
  };
  const paths: string[] = [];
  try {
    (plan.ghosts ?? []).forEach((g, i) => {
      const tmp = `${g.path}.cr.${(i + 1).toString(16)}.ghost`;
      if (g.dir) {
        paths.push(makeDir(g, tmp, dirs, held));
        return;
      }
      if (g.symlink !== undefined) {
        paths.push(makeSymlink(g, tmp, made, dirs));
        return;
      }
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
      } catch (e) {
        throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot recreate the unlinked file ${g.path}: ${(e as Error).message}`, { path: g.path }, ExitCode.FAILED, e);
      }
      let name = tmp;
      try {
        linkSync(tmp, g.path);
        made.push(g.path);
        name = g.path;
      } catch {
        /* the original name is taken again: the tasks get the temporary one */
      }
      paths.push(name);
    });
  } catch (e) {
    release();
    throw e;
  }
  return { paths, settle, release };
}
