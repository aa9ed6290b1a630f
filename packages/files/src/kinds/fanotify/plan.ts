/** fanotify: the group made again with its flags, and each mark added again on its file or mount. */
import { badImage, big, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { handlePath } from '../inotify/plan.js';
import type { FileBase } from '../reg/plan.js';

const MARK_INODE = 1;
const MARK_MOUNT = 2;
/** fanotify_mark(2) flags */
const FAN_MARK_ADD = 0x1;
const FAN_MARK_MOUNT = 0x10;
const FAN_MARK_IGNORED_MASK = 0x20;
/** the mark flags fdinfo shows (FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE, FAN_MARK_IGNORE) */
const KNOWN_MFLAGS = 0x40 | 0x200 | 0x400;
const O_NONBLOCK = 0o4000;
const FAN_NONBLOCK = 0x2;

/**
 * fanotify: fanotify_init(faflags, evflags), then each call of fanotify_mark(2) that makes its
 * marks again: the flags (FAN_MARK_ADD, FAN_MARK_MOUNT, FAN_MARK_IGNORED_MASK and the mark's
 * own), the mask, the path of the file or mount point.
 */
export interface FanotifyFilePlan extends FileBase {
  kind: 'fanotify';
  faflags: number;
  evflags: number;
  /** ino: an inode mark's file's inode number as recorded (i_ino), when the image has it */
  marks: { flags: number; mask: number; path: string; ino?: bigint }[];
}

export const fanotifyPlan: PlanKind<FanotifyFilePlan> = {
  type: 'FANOTIFY',
  field: 'ffy',
  plan(f: Obj, ctx: PlanContext): FanotifyFilePlan {
    const marks: FanotifyFilePlan['marks'] = [];
    for (const m of (f.mark ?? []) as Obj[]) {
      const type = Number(m.type === 'INODE' ? MARK_INODE : m.type === 'MOUNT' ? MARK_MOUNT : m.type);
      const mflags = Number(m.mflags ?? 0);
      if (mflags & ~KNOWN_MFLAGS) throw refuse(`${ctx.what}: fanotify mark with flags 0x${mflags.toString(16)} is not restored`);
      let path: string;
      let ino: bigint | undefined;
      let flags = FAN_MARK_ADD | mflags;
      if (type === MARK_INODE) {
        const ie = m.ie as Obj | undefined;
        if (!ie?.f_handle) throw badImage(`${ctx.what}: fanotify inode mark without its file handle`, { image: 'files.img' });
        path = handlePath(ie.f_handle as Obj, Number(m.s_dev), `${ctx.what}: fanotify mark`);
        if (ie.i_ino !== undefined) ino = big(ie.i_ino);
      } else if (type === MARK_MOUNT) {
        const me = m.me as Obj | undefined;
        if (me?.path === undefined) throw badImage(`${ctx.what}: fanotify mount mark without its mount point`, { image: 'files.img' });
        path = `/${String(me.path)}`;
        flags |= FAN_MARK_MOUNT;
      } else {
        throw refuse(`${ctx.what}: fanotify mark of type ${m.type} is not restored`);
      }
      const mask = Number(m.mask ?? 0) >>> 0;
      const ignored = Number(m.ignored_mask ?? 0) >>> 0;
      // as CRIU: the mask, then the ignored mask, each where it is not empty
      const at = ino === undefined ? { path } : { path, ino };
      if (mask) marks.push({ flags, mask, ...at });
      if (ignored) marks.push({ flags: flags | FAN_MARK_IGNORED_MASK, mask: ignored, ...at });
    }
    const flags = Number(f.flags);
    return { kind: 'fanotify', flags, pos: 0n, faflags: (Number(f.faflags) | (flags & O_NONBLOCK ? FAN_NONBLOCK : 0)) >>> 0, evflags: Number(f.evflags) >>> 0, marks };
  },
};
