/**
 * inotify: its watches added again, each watched file found by its kernel file handle (or the
 * path the image carries); a file unlinked since, first, as the ghost file of its device and
 * inode (as CRIU 4.2's restore finds it: a watch on such a file has no path in the image).
 */
import { fileHandlePath } from '@crtools/sys';
import { big, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import type { FileBase, GhostPlan } from '../reg/plan.js';

/** inotify: its watches, each added again under its number (wd) with its event mask. */
export interface InotifyFilePlan extends FileBase {
  kind: 'inotify';
  /**
   * ino: the watched file's inode number as recorded (i_ino), when the image has it; ghost: the
   * watched file was unlinked, made again as that ghost of the plan (`path` is its name as
   * dumped until the restorer gives the name the ghost was made at)
   */
  watches: { wd: number; mask: number; path: string; ino?: bigint; ghost?: number; inNs?: { pid: number; name: string } }[];
  /**
   * a watch is on a file of a mount namespace below the root's (inNs: `name` there, reached
   * through task `pid`'s root): the instance is made by the root once every task exists and
   * that namespace is shaped, as a file opened late (reg's `late`)
   */
  late?: boolean;
}

/** inotify_add_watch(2) bits kept from a recorded mask: the events, IN_EXCL_UNLINK, IN_ONESHOT */
const INOTIFY_MASK = 0xfff | 0x04000000 | 0x80000000;

/** The path of a watched or marked file (inotify, fanotify): its fh_entry's handle opened now, or the path the image carries. */
export function handlePath(fh: Obj, sdev: number, what: string): string {
  const words = (fh.handle ?? []) as (bigint | number)[];
  const raw = Buffer.alloc(words.length * 8);
  words.forEach((x, n) => raw.writeBigUInt64LE(BigInt.asUintN(64, big(x)), n * 8));
  return fileHandlePath({ sdev, type: Number(fh.type), handle: raw.subarray(0, Math.min(Number(fh.bytes), raw.length)), path: fh.path || undefined }, what);
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

export class InotifyPlans implements PlanKind<InotifyFilePlan> {
  readonly type = 'INOTIFY';
  readonly field = 'ify';

  /**
   * ghostOf: the plan's ghost of an unlinked inode (device in the kernel's encoding, inode), its
   * index; nestedOwner: the task living in the mount namespace below the root's that a mount id
   * is of (undefined: the root's or criu's)
   */
  constructor(private readonly ghostOf: (dev: number, ino: bigint) => { index: number; ghost: GhostPlan } | undefined, private readonly nestedOwner: (mntId: number) => number | undefined = () => undefined) {}

  plan(i: Obj, ctx: PlanContext): InotifyFilePlan {
    let late = false;
    const watches = ((i.wd ?? []) as Obj[]).map((w) => {
      const what = `${ctx.what}: inotify watch ${w.wd}`;
      const base = { wd: Number(w.wd), mask: Number(w.mask) & INOTIFY_MASK, ...(w.i_ino !== undefined ? { ino: big(w.i_ino) } : {}) };
      const g = w.i_ino === undefined ? undefined : this.ghostOf(Number(w.s_dev), big(w.i_ino));
      if (g) {
        // (rmdir ends a directory's watches; a symbolic link made again would be watched where it leads)
        const type = g.ghost.mode & S_IFMT;
        if (type === S_IFDIR || type === S_IFLNK) throw refuse(`${what} is on ${g.ghost.path}, ${type === S_IFDIR ? 'a removed directory' : 'an unlinked symbolic link'}, which restore does not watch again`);
        return { ...base, path: g.ghost.path, ghost: g.index };
      }
      // a file of a mount namespace below the root's (the handle's path is that namespace's, its
      // mount id one of that namespace's mounts, as CRIU 4.2 writes them): through a task living there
      const fh = (w.f_handle ?? {}) as Obj;
      const via = fh.path && fh.mnt_id !== undefined && fh.mnt_id !== null ? this.nestedOwner(Number(fh.mnt_id)) : undefined;
      if (via !== undefined) {
        late = true;
        return { ...base, path: `/proc/${via}/root${fh.path}`, inNs: { pid: via, name: String(fh.path) } };
      }
      return { ...base, path: handlePath(fh, Number(w.s_dev), what) };
    });
    return { kind: 'inotify', flags: i.flags, pos: 0n, watches, ...(late ? { late } : {}) };
  }
}
