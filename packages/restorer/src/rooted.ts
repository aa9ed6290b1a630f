/**
 * --root: the tree's mounts are made under a directory of the restorer's (runc's criu-root), which
 * becomes the tree's root (pivot_root) only once every task is restored and before any runs, so
 * that the tasks read their pages from the images meanwhile. Until then the tasks' paths are
 * reached through that directory: each path of the plan that names a file of the tree (a
 * descriptor's regular file, FIFO or terminal, a mapped file, an exe, a working directory, a root) is
 * prefixed with it. An unlinked file made again is made in the mount it belongs to and opened
 * below that directory (ghosts.ts). A unix socket's path name (what the socket reports, at most
 * 108 bytes) is not prefixed: the task binds and connects by it with that directory as its root
 * for the call (the plan's `root`). An inotify watch or fanotify inode mark keeps the path the
 * restorer found for its file (the same inode), a fanotify mount mark is put below that
 * directory. A terminal is opened below that directory too (/dev/ptmx, /dev/pts/N of the tree's own devpts, /dev/tty). A file opened late (a /proc file of a task
 * other than the root, a namespace's file) is opened below that directory too: its /proc is a
 * proc of the tree's pid namespace (mounts.ts). A mount namespace below the root's is made under
 * that directory too (a copy of the root's, shaped there) and pivoted into with the root's.
 */
import { statSync } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import type { RestorePlan } from './plan.js';

/** File kinds that hold no path of the tree (made from nothing or handed over; a unix socket's path name is bound and connected to with the plan's root, see above). */
/** fanotify_mark(2): the mark is on the mount of the path */
const FAN_MARK_MOUNT = 0x10;

// (a tun file is the misc device /dev/net/tun, opened by the restorer as its own: tun.ts)
const PATHLESS = new Set(['pipe-r', 'pipe-w', 'eventfd', 'signalfd', 'epoll', 'timerfd', 'unix', 'inet', 'tcp', 'socket', 'memfd', 'pidfd', 'inherit', 'tun']);

function refuse(what: string): CrtoolsError {
  return new CrtoolsError('UNSUPPORTED_OPTION', `restore: option root: ${what} under another root is not supported by crtools yet`, { exitCode: ExitCode.UNSUPPORTED, context: { option: 'root' } });
}

/** Is the file at w.path the recorded inode (w.ino, when recorded)? Refused by name if not. */
function sameFile(w: { path: string; ino?: bigint }, what: string): void {
  if (w.ino === undefined) return;
  let ino: bigint | undefined;
  try {
    ino = statSync(w.path, { bigint: true }).ino;
  } catch {
    ino = undefined;
  }
  if (ino !== w.ino) throw refuse(`${what} on ${w.path}, which here is ${ino === undefined ? 'no file' : `inode ${ino}`} and not the recorded inode ${w.ino},`);
}

export function rootedPlan(plan: RestorePlan, root: string): RestorePlan {
  const at = (p: string | undefined): string | undefined => (p === undefined || !p.startsWith('/') ? p : p === '/' ? root : `${root}${p}`);
  const files = plan.files.map((f) => {
    // a file below the new root, a file opened once every task exists (a /proc file of another
    // task, a namespace's file) too: its /proc is a proc of the tree's pid namespace (mounts.ts)
    // (a terminal too: /dev/ptmx and /dev/pts/N of the tree's own devpts, /dev/tty)
    // (a file of a mount namespace below the root's, opened through a task living there: that
    // namespace is a copy of the tree's made under the new root too, until its own pivot)
    if (f.kind === 'reg' && f.inNs) return { ...f, path: `${at(`/proc/${f.inNs.pid}/root`)}${at(f.inNs.name)}` };
    if (f.kind === 'reg' || f.kind === 'fifo' || f.kind === 'tty') return { ...f, path: at(f.path)! };
    if (PATHLESS.has(f.kind)) return f;
    // a unix socket bound to a name: a path one is the tree's (bound with the root of the plan's `root`)
    if (f.kind === 'unix-bound') return f;
    // an inotify watch or fanotify inode mark: its path is the restorer's own (the file handle
    // looked up through this process's mounts, or the path the dump found for it the same way),
    // which the new mount namespace still has until the pivot (a copy of this one's), on the
    // same inode. A fanotify mount mark names the tree's mount point: below the new root.
    // (a path that names another file here, such as one an image gives as the tree sees it, is
    // refused: the watch would silently be on that other file)
    if (f.kind === 'inotify') {
      // (one on an unlinked file is put on the ghost made of it, below that directory: ghosts.ts;
      // one on a file of a mount namespace below the root's is reached through a task living
      // there, as that namespace's regular files are)
      for (const w of f.watches) if (w.ghost === undefined && !w.inNs) sameFile(w, `an inotify watch (wd ${w.wd})`);
      return f.late ? { ...f, watches: f.watches.map((w) => (w.inNs ? { ...w, path: `${at(`/proc/${w.inNs.pid}/root`)}${at(w.inNs.name)}` } : w)) } : f;
    }
    if (f.kind === 'fanotify') {
      for (const m of f.marks) if (!(m.flags & FAN_MARK_MOUNT)) sameFile(m, 'a fanotify inode mark');
      return { ...f, marks: f.marks.map((m) => (m.flags & FAN_MARK_MOUNT ? { ...m, path: at(m.path)! } : m)) };
    }
    throw refuse(`a ${f.kind} descriptor`);
  });
  return {
    ...plan,
    root,
    files,
    tasks: plan.tasks.map((t) => ({
      ...t,
      exe: at(t.exe),
      cwd: at(t.cwd),
      ...(t.deadDir !== undefined ? { deadDir: at(t.deadDir) } : {}),
      // (a root of '/' is the tree's: the pivot gives it to every task; another is reached through the prefix)
      root: t.root === '/' ? t.root : at(t.root),
      // (shared memory and memfd areas are given their paths by the restore itself)
      vmas: t.vmas.map((v) => (v.path !== undefined && v.shmem === undefined ? { ...v, path: at(v.path) } : v)),
    })),
  };
}
