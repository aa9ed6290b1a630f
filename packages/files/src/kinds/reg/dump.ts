/**
 * Regular files (and directories, /dev/null-like devices): by path, open flags and offset.
 * Also the files a task names without a descriptor — mapped files, its exe, cwd and root —
 * and unlinked files, whose contents are kept as ghost files (ghost-file-N.img, remap-fpath.img),
 * unlinked device nodes (of the devices carried: /dev/null-like) as ghosts with their device number,
 * removed directories (an open one, a cwd or root) as ghost directories (the head alone), unlinked
 * symbolic links held by O_PATH as ghosts with what they hold (symlnk_target).
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readlinkSync, statSync, unlinkSync, type BigIntStats, type Stats } from 'node:fs';
import { CrtoolsError, ExitCode, GHOST_LIMIT_DEFAULT } from '@crtools/common';
import { filePayload, payloadSource, type PayloadSource } from '@crtools/images';
import { decodeDev, encodeKdev } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';
import { dataExtents, linkFollow, readLinkAt } from '@crtools/sys';
import { fown, refuseFd, unsupported, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import type { FileIds } from '../../dump/table.js';
import { O_PATH, ownerInside, type DumpedIds } from '../../dump/fown.js';
import type { GhostKind } from '../inotify/dump.js';

/** (node's fs.constants has no O_ACCMODE) */
const O_ACCMODE = 3;
const { O_APPEND, O_WRONLY } = constants;

/** /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom: char major 1. */
function isMemDevice(rdev: number): boolean {
  return decodeDev(rdev).major === 1;
}

/** ghost_file_entry.dev holds the kernel's device encoding, stat(2) gives glibc's. */
function kdevOf(dev: number): bigint {
  const d = decodeDev(dev);
  return encodeKdev(d.major, d.minor);
}

/** Ghost files of this size and more are kept in chunks, their holes left out (as CRIU does: 3 pages). */
export const GHOST_CHUNKS_THRESH = 3 * 4096;

/**
 * Largest chunk written: a data extent longer than this is kept as several chunks one after
 * the other (a reader, ours or crit, holds one chunk's bytes at a time; CRIU restores
 * consecutive chunks like any others).
 */
export const GHOST_CHUNK_MAX = 64 << 20;

/** Open what `source` names for reading without touching its access time (where we may). */
function openQuiet(source: string): number {
  try {
    return openSync(source, constants.O_RDONLY | constants.O_NOATIME);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    return openSync(source, constants.O_RDONLY);
  }
}

/** Bytes [position, position + length) of the file `source` names, read when the image is written. */
function sourcePayload(source: string, position: number, length: number): PayloadSource {
  return payloadSource(length, function* () {
    const fd = openQuiet(source);
    try {
      yield* filePayload(fd, position, length).pieces() as Iterable<Uint8Array>;
    } finally {
      closeSync(fd);
    }
  });
}

/** A stat(2) time as CRIU's timeval: seconds and microseconds (the nanoseconds cut, not rounded). */
function timeval(ns: bigint): { tv_sec: bigint; tv_usec: bigint } {
  return { tv_sec: ns / 1_000_000_000n, tv_usec: (ns % 1_000_000_000n) / 1000n };
}

/**
 * The hard links a dump made for CRIU's --link-remap (their names as the dumper reaches them):
 * kept for the restore when the dump goes through, removed (`undo`) when it fails or the tree
 * goes on (as CRIU removes them).
 */
export class LinkRemaps {
  readonly made: string[] = [];

  undo(): void {
    for (const p of this.made.splice(0)) {
      try {
        unlinkSync(p);
      } catch {
        /* gone already */
      }
    }
  }
}

export class RegFiles implements DumpKind {
  /** ghost-file-<id>.img: unlinked files still open or mapped; their contents are read when the image is written */
  private readonly ghosts: { id: number; entries: Entry[] }[] = [];
  /** remap-fpath.img: which files.img entry is backed by which ghost file */
  private readonly remaps: Entry[] = [];
  /** the processes gone whose /proc files the tree holds (each once in remap-fpath.img) */
  private readonly deadPids = new Set<number>();
  /** the /proc directory of a process gone that is a task's working directory (one a tree) */
  private deadCwd: string | undefined;
  private readonly ghostByInode = new Map<string, number>();
  /** the ghosts' inodes by the kernel's device number and inode (as fdinfo names a watched file): what each is */
  private readonly ghostInodes = new Map<string, GhostKind>();
  /** mapped files and exe: one id per (dev, ino, open flags) */
  private readonly mapped = new Map<string, number>();
  /** dev:ino → the file id of its link_remap name (--link-remap) */
  private readonly linkedByInode = new Map<string, number>();

  /** ghostLimit: unlinked files larger than this are refused (CRIU's --ghost-limit) */
  /**
   * mounts: the mount ids of the tree's own mount namespaces (undefined: the tree lives in
   * criu's); a descriptor's file is then written with its mount id, as CRIU 4.2 writes it, and a
   * file the task reaches through a mount of another namespace is carried only when its path
   * names the same file in the tree's namespace (the restore opens it by that path there)
   */
  constructor(private readonly ids: FileIds, private readonly ghostLimit = GHOST_LIMIT_DEFAULT, private readonly tree: () => DumpedIds | undefined = () => undefined,
    private readonly mounts: () => ReadonlySet<number> | undefined = () => undefined, private readonly linkRemap?: LinkRemaps,
    private readonly readOnlyMounts: () => ReadonlySet<number> | undefined = () => undefined,
    private readonly nestedMounts: () => ReadonlySet<number> | undefined = () => undefined) {}

  /** The mount id written for a descriptor's file (undefined: none, CRIU's -1), refused when the restore could not open it again. */
  private mountOf(pid: number, rec: FdRecord, name: string, st: Stats, deleted: boolean): number | undefined {
    const own = this.mounts();
    if (!own) return undefined;
    if (own.has(rec.mntId)) return rec.mntId;
    let same = false;
    try {
      const there = statSync(`/proc/${pid}/root${name}`);
      same = !deleted && there.dev === st.dev && there.ino === st.ino;
    } catch {
      same = false;
    }
    if (!same) throw refuseFd(pid, rec.fd, `a file reached through mount ${rec.mntId} of another mount namespace, which ${name} does not name in the tree's, is not supported (crtools issue 17)`, rec.target);
    return undefined;
  }

  /**
   * The process (or thread) a file under /proc/PID/ (or /proc/PID/task/TID/) names, as the
   * tree's tasks number it; undefined for a file elsewhere.
   */
  private procOwner(target: string): { owner: number; thread?: number } | undefined {
    const m = /^\/proc\/(\d+)(?:\/task\/(\d+))?(?:\/| \(deleted\)$|$)/.exec(target);
    if (!m) return undefined;
    return m[2] === undefined ? { owner: Number(m[1]) } : { owner: Number(m[1]), thread: Number(m[2]) };
  }

  /** A tree's task id as its own /proc numbers it (the id inside its pid namespace, when it has one). */
  private inner(id: number): number {
    const tree = this.tree();
    return tree?.innerId ? tree.innerId(id, false) : id;
  }

  /**
   * Is target a file the restore opens only once every task exists: a file under /proc/PID/ of
   * a task other than the root (the root's own are opened with its other files)?
   */
  openedLate(target: string): boolean {
    const p = this.procOwner(target);
    const root = this.tree()?.root;
    return !!p && (root === undefined || p.owner !== this.inner(root) || (p.thread !== undefined && p.thread !== p.owner));
  }

  /**
   * A file under /proc/PID/ names that process (a /proc/PID/task/TID/ one that thread; links
   * through /proc/self and /proc/thread-self show the numbers they led to): it is opened again
   * by the same path, which names the restored task (it has the same pid) — the root's at once,
   * those of the other tasks and threads once every task exists (the plan's `late` files). A
   * file of a process that has exited (no such process in the tree's /proc: CRIU 4.2's "dead
   * pid") is opened again while a helper with that pid lives, then ended (its pid is returned).
   * A file of a process outside the tree is refused.
   */
  private checkProc(pid: number, fd: number, target: string): number | undefined {
    const p = this.procOwner(target);
    if (!p) return undefined;
    const tree = this.tree();
    const inTree = (id: number) => !!tree && [...tree.tasks].some((t) => this.inner(t) === id);
    const who = p.thread === undefined ? `process ${p.owner}` : `thread ${p.thread} of process ${p.owner}`;
    // a tree in a pid namespace of its own that lives in criu's mount namespace sees criu's
    // /proc, which numbers processes as criu's namespace does: the number names no task of the
    // tree as the images carry it (and the restored tree's /proc would name another process)
    if (tree?.innerId && !this.mounts()) throw refuseFd(pid, fd, `a file of ${who} under the /proc of criu's pid namespace, from a tree in a pid namespace of its own, is not supported`, target);
    const gone = / \(deleted\)$/.test(target) || !existsSync(`/proc/${pid}/root/proc/${p.owner}`);
    if (gone && p.thread === undefined && !inTree(p.owner)) return p.owner;
    const why = gone ? `a file of ${who}, which is gone,`
      : !inTree(p.owner) || (p.thread !== undefined && !inTree(p.thread)) ? `a file of ${who}, outside the dumped tree,`
      : undefined;
    if (why) throw refuseFd(pid, fd, `${why} is not supported`, target);
    return undefined;
  }

  /** The REG entry of file `id` (a path, open flags, position, what stat(2) said of it). */
  entry(id: number, path: string, flags: number, pos: bigint, s: Stats): Entry {
    const reg: Entry = { id, flags, pos, fown: fown(), name: path, mode: s.mode };
    // the size the restore checks the file against; not for a file opened write-only to append
    // (a log: it grows while the checkpoint waits, and every write goes to its end anyway), as CRIU
    if (s.isFile() && !((flags & O_ACCMODE) === O_WRONLY && flags & O_APPEND)) reg['size'] = BigInt(s.size);
    return { type: 'REG', id, reg };
  }

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const t = rec.target;
    if (!t.startsWith('/')) return undefined;
    const dead = this.checkProc(pid, rec.fd, t);
    return {
      type: 'REG',
      key: `reg:${rec.mntId}:${rec.ino}:${flags}:${rec.pos}`,
      entry: (id) => {
        const st = statSync(`/proc/${pid}/fd/${rec.fd}`);
        // (a symbolic link itself is held only through O_PATH with O_NOFOLLOW: opened again so)
        const link = st.isSymbolicLink() && (flags & O_PATH) !== 0;
        if (!(st.isFile() || st.isDirectory() || link || (st.isCharacterDevice() && isMemDevice(st.rdev)))) throw unsupported(pid, rec.fd, t);
        // (a /proc/PID directory of a process gone shows as deleted: it is no unlinked file)
        const deleted = / \(deleted\)$/.test(t);
        const name = deleted ? t.slice(0, -' (deleted)'.length) : t;
        const mnt = this.mountOf(pid, rec, name, st, deleted && dead === undefined);
        // one remap-fpath.img entry per process gone, as CRIU 4.2 writes it (REMAP_TYPE PROCFS)
        if (dead !== undefined && !this.deadPids.has(dead)) {
          this.deadPids.add(dead);
          this.remaps.push({ orig_id: id, remap_id: dead, remap_type: 'PROCFS' });
        } else if (deleted && dead === undefined) this.ghost(id, `/proc/${pid}/fd/${rec.fd}`, st, `task ${pid} fd ${rec.fd}`, { pid, name, ...(mnt !== undefined ? { mnt } : {}) });
        const e = this.entry(id, name, flags, rec.pos, st);
        if (mnt !== undefined) (e.reg as Entry)['mnt_id'] = mnt;
        return e;
      },
    };
  }

  /**
   * The file id of a mapped file (also used for the exe link): same file, same flags → same id.
   * `deletedVia`: the file was unlinked; its contents are read through that /proc link and kept
   * as a ghost file.
   */
  mappedFile(path: string, dev: string, ino: bigint, fdflags: number, pid: number, deletedVia?: string): number {
    const key = `${dev}:${ino}:${fdflags}`;
    const have = this.mapped.get(key);
    if (have !== undefined) return have;
    let st;
    if (deletedVia) st = statSync(deletedVia);
    else {
      try {
        st = statSync(`/proc/${pid}/root${path}`);
      } catch {
        st = statSync(path);
      }
    }
    const id = this.ids.add((fid) => this.entry(fid, path, fdflags, 0n, st));
    if (deletedVia) this.ghost(id, deletedVia, st, `task ${pid}: mapped ${path}`, { pid, name: path });
    this.mapped.set(key, id);
    return id;
  }

  /**
   * A new entry for an open file that the other kinds name by path (a FIFO's); `deletedVia`:
   * the file was unlinked, kept as a ghost read through that link (`what` names it in a refusal).
   */
  pathEntry(path: string, flags: number, st: Stats, deletedVia?: string, what = path): number {
    const id = this.ids.add((fid) => this.entry(fid, path, flags, 0n, st));
    if (deletedVia) this.ghost(id, deletedVia, st, what);
    return id;
  }

  /**
   * cwd and root are a new entry each (as CRIU writes them). A removed directory (rmdir while a
   * task is in it) is kept as a ghost directory: the restore makes it again, enters it and
   * removes it. A working directory in the /proc directory of a process gone (zdtm
   * unhashed_proc: chdir, then the process exits; shown deleted, nothing enters it any more) is
   * that process's dead pid remap, as CRIU 4.2 writes it (remap-fpath.img PROCFS, once a pid):
   * the restore's root enters it while a process with that pid lives again, and every task
   * whose working directory it is keeps it from there (they are all forked after). So one such
   * directory a tree, and not as a root (chroot() needs the process alive, when every task
   * is done): others are refused by name.
   */
  dirEntry(pid: number, which: 'cwd' | 'root'): number {
    const link = readlinkSync(`/proc/${pid}/${which}`);
    const deleted = / \(deleted\)$/.test(link);
    const path = deleted ? link.slice(0, -' (deleted)'.length) : link;
    const what = `task ${pid}: ${which === 'cwd' ? 'working directory' : 'root'} ${path}`;
    const refuseDead = (why: string) => new CrtoolsError('UNSUPPORTED_FILE', `${what}, a /proc directory of a process gone, ${why}`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
    const procDir = /^\/proc\/\d+(\/|$)/.test(path);
    let st: Stats | undefined;
    try {
      st = statSync(`/proc/${pid}/${which}`);
    } catch (e) {
      if (!procDir || !['ESRCH', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
    // (a /proc directory of a process gone: shown deleted, or no longer entered: ESRCH)
    if (procDir && (deleted || !st)) {
      let dead: number | undefined;
      try {
        dead = this.checkProc(pid, -1, `${path} (deleted)`);
      } catch {
        dead = undefined;
      }
      if (dead === undefined) throw refuseDead('is not supported (not as the directory of a process)');
      if (which === 'root') throw refuseDead('is not supported as a root');
      if (this.deadCwd !== undefined && this.deadCwd !== path) throw refuseDead(`is not supported beside another task's in ${this.deadCwd}`);
      this.deadCwd = path;
      const id = this.ids.add((fid) => ({ type: 'REG', id: fid, reg: { id: fid, flags: 0, pos: 0n, fown: fown(), name: path } }));
      if (!this.deadPids.has(dead)) {
        this.deadPids.add(dead);
        this.remaps.push({ orig_id: id, remap_id: dead, remap_type: 'PROCFS' });
      }
      return id;
    }
    if (!st) throw refuseDead('is not supported');
    const mnt = this.dirMount(pid, which);
    const id = this.ids.add((fid) => {
      const e = this.entry(fid, path, 0, 0n, st);
      if (mnt !== undefined) (e.reg as Entry)['mnt_id'] = mnt;
      return e;
    });
    if (deleted) this.ghost(id, `/proc/${pid}/${which}`, st, what);
    return id;
  }

  /**
   * The mount a task's working directory or root lies on, when it is one of the tree's own
   * mount namespaces' (as CRIU 4.2 writes it: the restore of a task in a namespace below the
   * root's finds them there); undefined otherwise.
   */
  private dirMount(pid: number, which: 'cwd' | 'root'): number | undefined {
    const own = this.mounts();
    if (!own) return undefined;
    let fd: number | undefined;
    try {
      fd = openSync(`/proc/${pid}/${which}`, O_PATH);
      const m = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      const id = m ? Number(m[1]) : undefined;
      return id !== undefined && own.has(id) ? id : undefined;
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /**
   * What the dump keeps of the unlinked inode `ino` of device `sdev` (the kernel's encoding):
   * a ghost file made again at restore (a regular file, FIFO or device node), a ghost directory
   * or symbolic link, or nothing (no task of the tree holds it, or it is kept by a link_remap name).
   */
  ghostKind(sdev: number, ino: bigint): GhostKind {
    return this.ghostInodes.get(`${BigInt(sdev >>> 0)}:${ino}`);
  }

  /**
   * File `origId` was unlinked: keep its contents (read through `source`) as a ghost file; or,
   * when its inode still has other links and --link-remap was given, a new name for it (`at`:
   * the task that holds it and its name in the tree).
   */
  private ghost(origId: number, source: string, st: Stats, what: string, at?: { pid: number; name: string; mnt?: number }): void {
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory() && st.nlink > 0 && this.linkRemap && at) {
      this.linked(origId, source, key, what, at);
      return;
    }
    let gid = this.ghostByInode.get(key);
    if (gid === undefined) {
      const refuse = (m: string) => new CrtoolsError('UNSUPPORTED_FILE', `${what}: ${m}`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
      // a device node: one of those a descriptor may hold (/dev/null-like, the rest are refused before)
      const device = st.isCharacterDevice() && isMemDevice(st.rdev);
      // (a symbolic link held by O_PATH|O_NOFOLLOW: kept with what it holds)
      if (!st.isFile() && !st.isDirectory() && !st.isFIFO() && !st.isSymbolicLink() && !device) throw refuse('an unlinked special file is not supported');
      // on a read-only mount of the tree's own the restore makes the mount anew, read-only, and
      // cannot make the file there and remove its name again (zdtm ghost_on_rofs: it failed at restore)
      // the restore makes unlinked files from the root's mount namespace, through its root
      if (at?.mnt !== undefined && this.nestedMounts()?.has(at.mnt)) throw refuse(`the unlinked file lies on mount ${at.mnt} of a nested mount namespace of the tree: crtools does not make unlinked files there yet (crtools issue 17)`);
      if (at?.mnt !== undefined && this.readOnlyMounts()?.has(at.mnt)) throw refuse(`the unlinked file lies on a read-only mount of the tree's own (mount ${at.mnt}), which the restore makes anew: crtools does not make unlinked files on such a mount yet`);
      // a name of the file was removed, but the inode still has others (ln, then rm): a ghost
      // would come back as a copy, which those names no longer lead to (writes through either
      // side lost to the other). CRIU keeps it by a hard link made at dump (--link-remap) and
      // refuses it without; crtools refuses it, by name, until it carries that
      if (!st.isDirectory() && st.nlink > 0) throw refuse(`the file's name was removed, but it still has ${st.nlink} other link(s): a copy would be restored, which they do not lead to (--link-remap keeps the same file${at ? '' : ', not for this kind of holder yet'})`);
      // what the ghost keeps is the data (holes stay holes): the limit is on the blocks the file
      // has, as CRIU's, not on its size (a sparse 1 GiB file with a few pages written is small)
      const held = st.blocks * 512;
      if (held > this.ghostLimit) throw refuse(`the unlinked file holds ${held} bytes, more than --ghost-limit (${this.ghostLimit} bytes) keeps`);
      gid = this.ghosts.length + 1;
      this.ghosts.push({ id: gid, entries: this.ghostEntries(source, refuse) });
      this.ghostByInode.set(key, gid);
      this.ghostInodes.set(`${kdevOf(st.dev)}:${st.ino}`, st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file');
    }
    this.remaps.push({ orig_id: origId, remap_id: gid, remap_type: 'GHOST' });
  }

  /**
   * CRIU's linked remap (--link-remap): the file keeps its inode through a hard link made now,
   * link_remap.<id> in the directory its removed name was in (that directory removed too: in the
   * nearest one above it that is left, as CRIU 4.2 walks up), written as a file of its own
   * (files.img) that the original is remapped to (remap-fpath.img LINKED). The restore opens it
   * through that name and removes the name; a dump that fails or leaves the tree running removes
   * it here (`LinkRemaps.undo`). No directory left that takes the link (another file system
   * above a mount point) is refused by name.
   */
  private linked(origId: number, source: string, key: string, what: string, at: { pid: number; name: string; mnt?: number }): void {
    let lid = this.linkedByInode.get(key);
    if (lid === undefined) {
      lid = this.ids.add((fid) => {
        let dir = at.name.slice(0, at.name.lastIndexOf('/'));
        let name = `${dir}/link_remap.${fid}`;
        for (;;) {
          const host = `/proc/${at.pid}/root${name}`;
          try {
            linkFollow(source, host);
            this.linkRemap!.made.push(host);
            break;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dir === '') {
              throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: the file's name was removed while it keeps other links, and --link-remap cannot give it the name ${name}: ${(e as Error).message}`, { context: {}, exitCode: ExitCode.UNSUPPORTED, cause: e });
            }
            // (its directory is gone: the one above)
            dir = dir.slice(0, dir.lastIndexOf('/'));
            name = `${dir}/link_remap.${fid}`;
          }
        }
        const reg: Entry = { id: fid, flags: 0, pos: 0n, fown: fown(), name };
        if (at.mnt !== undefined) reg['mnt_id'] = at.mnt;
        return { type: 'REG', id: fid, reg };
      });
      this.linkedByInode.set(key, lid);
    }
    this.remaps.push({ orig_id: origId, remap_id: lid, remap_type: 'LINKED' });
  }

  /**
   * The entries of a ghost image, read while the tasks are frozen: the head (owner, mode, times
   * to the microsecond, from an fstat of our own descriptor opened without touching atime),
   * then the contents: small files whole after the head, larger ones one chunk per data extent
   * (SEEK_DATA / SEEK_HOLE), so that holes stay holes. The bytes are only read when written.
   */
  private ghostEntries(source: string, refuse: (why: string) => Error): Entry[] {
    const ghostHead = (st: BigIntStats): Entry => ({
      ...ownerInside(this.tree(), Number(st.uid), Number(st.gid), refuse), mode: Number(st.mode), dev: Number(kdevOf(Number(st.dev))), ino: st.ino,
      atim: timeval(st.atimeNs), mtim: timeval(st.mtimeNs),
    });
    // a FIFO is its head alone (as CRIU writes it), read without opening it: an open would be
    // one more reader or writer to the tasks' ends (and a read-only one waits for a writer);
    // so is a device node, with its device number (rdev, as stat(2) gives it: CRIU's mknod takes it back)
    const link = statSync(source, { bigint: true });
    if (link.isFIFO()) return [ghostHead(link)];
    if (link.isCharacterDevice() || link.isBlockDevice()) return [{ ...ghostHead(link), rdev: Number(link.rdev) }];
    // a symbolic link (the /proc link leads to the link itself): what it holds, read through a
    // descriptor on it (its name is gone)
    if (link.isSymbolicLink()) {
      const fd = openSync(source, O_PATH);
      try {
        const target = readLinkAt(fd, '', { path: source });
        // (the image holds it as a protobuf string: bytes that are not UTF-8 would change)
        if (!Buffer.from(target.toString('utf8'), 'utf8').equals(target)) throw new CrtoolsError('UNSUPPORTED_FILE', `${source}: an unlinked symbolic link whose target is not UTF-8 is not supported`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
        return [{ ...ghostHead(link), symlnk_target: target.toString('utf8') }];
      } finally {
        closeSync(fd);
      }
    }
    const fd = openQuiet(source);
    try {
      const st: BigIntStats = fstatSync(fd, { bigint: true });
      const head = ghostHead(st);
      // a directory is its head alone (made again empty: nothing can be created in a removed one)
      if (st.isDirectory()) return [head];
      if (st.size < BigInt(GHOST_CHUNKS_THRESH)) return [{ ...head, extra: sourcePayload(source, 0, Number(st.size)) }];
      const entries: Entry[] = [{ ...head, chunks: true, size: st.size }];
      for (const x of dataExtents(fd, st.size, { path: source })) {
        for (let off = x.off, end = x.off + x.len; off < end; ) {
          const len = end - off < BigInt(GHOST_CHUNK_MAX) ? end - off : BigInt(GHOST_CHUNK_MAX);
          entries.push({ len, off, extra: sourcePayload(source, Number(off), Number(len)) });
          off += len;
        }
      }
      return entries;
    } finally {
      closeSync(fd);
    }
  }

  images(): DumpImage[] {
    return [
      { file: 'remap-fpath.img', magic: 'REMAP_FPATH', entries: this.remaps },
      ...this.ghosts.map((g) => ({ file: `ghost-file-${g.id.toString(16)}.img`, magic: 'GHOST_FILE', entries: g.entries })),
    ];
  }
}
