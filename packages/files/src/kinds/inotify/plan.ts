/** inotify: its watches added again, each watched file found by its kernel file handle (or the path the image carries). */
import { fileHandlePath } from '@crtools/sys';
import { big, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** inotify: its watches, each added again under its number (wd) with its event mask. */
export interface InotifyFilePlan extends FileBase {
  kind: 'inotify';
  /** ino: the watched file's inode number as recorded (i_ino), when the image has it */
  watches: { wd: number; mask: number; path: string; ino?: bigint }[];
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

export const inotifyPlan: PlanKind<InotifyFilePlan> = {
  type: 'INOTIFY',
  field: 'ify',
  plan(i: Obj, ctx: PlanContext): InotifyFilePlan {
    const watches = ((i.wd ?? []) as Obj[]).map((w) => {
      const path = handlePath(w.f_handle as Obj, Number(w.s_dev), `${ctx.what}: inotify watch ${w.wd}`);
      return { wd: Number(w.wd), mask: Number(w.mask) & INOTIFY_MASK, path, ...(w.i_ino !== undefined ? { ino: big(w.i_ino) } : {}) };
    });
    return { kind: 'inotify', flags: i.flags, pos: 0n, watches };
  },
};
