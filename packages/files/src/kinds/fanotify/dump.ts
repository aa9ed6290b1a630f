/**
 * fanotify: a group's init flags (class, reporting, non-blocking) and the open flags of its
 * events, with every mark, as CRIU 4.2 writes them (fanotify_file_entry, its marks inline): an
 * inode mark by the file's kernel handle (and its path when the handle opens now), a mount mark
 * by the mount's id and its mount point (relative to /, as CRIU). Refused by name: events waiting
 * to be read (CRIU 4.2 drops them; they would be lost), a filesystem mark (FAN_MARK_FILESYSTEM:
 * CRIU's format has no kind for it), a mount mark whose mount the task does not see.
 */
import { readMountinfo } from '@crtools/procfs';
import { probeFile } from '@crtools/sys';
import { anonInodeKind, fown, noFdinfo, refuseFd } from '../../dump/kind.js';
import { handleEntry, type IrmapLookup } from '../inotify/dump.js';

const MARK_INODE = 1;
const MARK_MOUNT = 2;

/** fanotify groups; `irmap`: --force-irmap's lookup of a marked file whose handle does not open. */
export const fanotifyDump = (irmap?: IrmapLookup) => anonInodeKind('anon_inode:[fanotify]', 'FANOTIFY', (pid, rec, id, flags) => {
  const what = `task ${pid} fd ${rec.fd} (${rec.target})`;
  const fa = rec.fanotify;
  if (!fa || fa.flags === undefined || fa.eventFlags === undefined) noFdinfo(pid, rec);
  const waiting = probeFile(pid, rec.fd, []).nread;
  if (waiting > 0) throw refuseFd(pid, rec.fd, `fanotify group with ${waiting} bytes of events not read: not carried (they would be lost)`, rec.target);
  let mounts: ReturnType<typeof readMountinfo> | undefined;
  const mark = fa.marks.map((m) => {
    const base = { id, mflags: m.mflags, mask: m.mask, ignored_mask: m.ignoredMask };
    if (m.kind === 'inode') {
      if (m.fhandle === undefined || m.ino === undefined || m.sdev === undefined) noFdinfo(pid, rec);
      const f_handle = handleEntry({ sdev: m.sdev, ino: BigInt(m.ino), bytes: m.fhandleBytes, type: m.fhandleType, hex: m.fhandle }, what, undefined, undefined, irmap);
      return { ...base, type: MARK_INODE, s_dev: m.sdev, ie: { i_ino: m.ino, f_handle } };
    }
    if (m.kind === 'mount') {
      mounts ??= readMountinfo(pid);
      const mnt = mounts.find((x) => x.mntId === m.mntId);
      if (!mnt) throw refuseFd(pid, rec.fd, `fanotify mount mark on mount ${m.mntId}, which the task does not see: not supported`, rec.target);
      // as CRIU: the mount's device (the kernel's encoding) and its mount point without the leading /
      return { ...base, type: MARK_MOUNT, s_dev: ((mnt.devMajor << 20) | mnt.devMinor) >>> 0, me: { mnt_id: m.mntId, path: mnt.mountPoint.slice(1) } };
    }
    throw refuseFd(pid, rec.fd, `fanotify filesystem mark (FAN_MARK_FILESYSTEM, sdev ${m.sdev?.toString(16)}) is not supported (CRIU's format has no kind for it)`, rec.target);
  });
  return { type: 'FANOTIFY', id, ffy: { id, flags, fown: fown(), faflags: fa.flags, evflags: fa.eventFlags, mark } };
});
