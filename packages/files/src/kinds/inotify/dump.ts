/**
 * inotify: each watch by its kernel file handle, as CRIU writes it, and the file's path when
 * the handle opens now (CRIU's restore takes the path, else looks the handle up by its mounts).
 */
import { CrtoolsError, ExitCode, isCrtoolsError } from '@crtools/common';
import { fileHandlePath } from '@crtools/sys';
import { anonInodeKind, fown, noFdinfo } from '../../dump/kind.js';

/** A kernel file handle as fdinfo prints it (hex bytes) in CRIU's fh_entry: 16 u64s at least. */
function fhEntry(bytes: number | undefined, type: number | undefined, hex: string | undefined) {
  const raw = Buffer.from(hex ?? '', 'hex');
  const words = Math.max(16, Math.ceil(raw.length / 8));
  const padded = Buffer.alloc(words * 8);
  raw.copy(padded);
  return { bytes: bytes ?? raw.length, type: type ?? 0, handle: Array.from({ length: words }, (_, i) => padded.readBigUInt64LE(i * 8)) };
}

/**
 * fh_entry of a watched or marked file (inotify, fanotify): its kernel handle, and its path
 * when the handle opens now (an unlinked file: the handle alone).
 */
export function handleEntry(h: { sdev: number; bytes?: number; type?: number; hex: string }, what: string): Record<string, unknown> {
  const f_handle: Record<string, unknown> = fhEntry(h.bytes, h.type, h.hex);
  let path: string | undefined;
  try {
    path = fileHandlePath({ sdev: h.sdev, type: h.type ?? 0, handle: Buffer.from(h.hex, 'hex') }, what);
  } catch (e) {
    // anything but a handle that does not open (such as a missing addon) is an error
    if (!isCrtoolsError(e) || e.code !== 'FILE_HANDLE') throw e;
  }
  // a file unlinked since it was watched, still alive (a task holds it): the handle opens it, but
  // by a name that is gone, and the inode goes with the tree; the restore could not find it
  // again (CRIU 4.2 puts the watch on the file's restored ghost): refused by name until crtools does
  if (path?.endsWith(' (deleted)')) {
    throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: a watch on ${path.slice(0, -' (deleted)'.length)}, unlinked since (its inode lives on only in the tree), is not supported yet`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
  }
  if (path !== undefined) f_handle.path = path;
  return f_handle;
}

export const inotifyDump = anonInodeKind('anon_inode:inotify', 'INOTIFY', (pid, rec, id, flags) => {
  const what = `task ${pid} fd ${rec.fd} (${rec.target})`;
  const wd = (rec.inotify?.watches ?? []).map((w) => {
    if (w.fhandle === undefined) noFdinfo(pid, rec);
    const f_handle = handleEntry({ sdev: w.sdev, bytes: w.fhandleBytes, type: w.fhandleType, hex: w.fhandle! }, what);
    return { id, i_ino: w.ino, mask: w.mask, ignored_mask: w.ignoredMask, s_dev: w.sdev, wd: w.wd, f_handle };
  });
  return { type: 'INOTIFY', id, ify: { id, flags, fown: fown(), wd } };
});
