/**
 * inotify: each watch by its kernel file handle, as CRIU writes it, and the file's path when
 * the handle opens now (CRIU's restore takes the path, else looks the handle up by its mounts).
 * A watch on a file unlinked since (the handle opens it by a name that is gone) is written by its
 * handle alone, as CRIU 4.2 writes it: the restore finds it again as the ghost file of that
 * device and inode, which the tree's own descriptor or mapping of the file makes; one no task of
 * the tree holds (nothing to make it again from) is refused by name once every file is dumped.
 */
import { CrtoolsError, ExitCode, isCrtoolsError, isNativeSysError, type Refusals } from '@crtools/common';
import { fileHandlePath, handlePathVia } from '@crtools/sys';
import { anonInodeKind, fown, noFdinfo, type DumpKind } from '../../dump/kind.js';

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
 * when the handle opens now (an unlinked file: the handle alone). A file unlinked since it was
 * watched, still alive, opens by a name that is gone: `unlinked` takes it (its path without
 * " (deleted)"), and its fh_entry gets no path; without `unlinked` it is refused by name.
 */
export function handleEntry(h: { sdev: number; ino?: bigint; bytes?: number; type?: number; hex: string }, what: string, unlinked?: (path: string) => void, nested?: NestedMountsOf, irmap?: IrmapLookup): Record<string, unknown> {
  const f_handle: Record<string, unknown> = fhEntry(h.bytes, h.type, h.hex);
  const handle = { type: h.type ?? 0, handle: Buffer.from(h.hex, 'hex') };
  let path: string | undefined;
  try {
    path = fileHandlePath({ sdev: h.sdev, ...handle }, what);
  } catch (e) {
    // anything but a handle that does not open (such as a missing addon) is an error
    if (!isCrtoolsError(e) || e.code !== 'FILE_HANDLE') throw e;
  }
  if (path === undefined) {
    // a file of a filesystem that only a mount namespace below the root's shows: its path
    // there and that mount's id (as CRIU 4.2 writes it), the restore opens it through that namespace
    for (const m of nested?.(h.sdev) ?? []) {
      const r = handlePathVia(m.dir, handle);
      if (isNativeSysError(r) || r.endsWith(' (deleted)')) continue;
      f_handle.path = r;
      f_handle.mnt_id = m.mntId;
      return f_handle;
    }
    // --force-irmap: looked for by device and inode under the scan paths, as CRIU's irmap
    if (irmap && h.ino !== undefined) {
      const found = irmap(h.sdev, h.ino);
      if (found === undefined) {
        throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: the watched file (device ${h.sdev >>> 20}:${h.sdev & 0xfffff}, inode ${h.ino}) opens by its handle nowhere and is not under the irmap scan paths (--irmap-scan-path)`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
      }
      f_handle.path = found;
      return f_handle;
    }
  }
  if (path?.endsWith(' (deleted)')) {
    const name = path.slice(0, -' (deleted)'.length);
    // (a fanotify mark on such a file: CRIU 4.2 finds it again by its ghost too, crtools not yet)
    if (!unlinked) throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: a mark on ${name}, unlinked since (its inode lives on only in the tree), is not supported yet`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
    unlinked(name);
    return f_handle;
  }
  if (path !== undefined) f_handle.path = path;
  return f_handle;
}

/** --force-irmap's lookup (dump/irmap.ts): a file's path by device (the kernel's encoding) and inode, when found. */
export type IrmapLookup = (sdev: number, ino: bigint) => string | undefined;

/**
 * The mounts of a filesystem (device in the kernel's encoding) in the mount namespaces below the
 * root's: each as the dump reaches it (/proc/PID/root/MOUNTPOINT of a task living there) with its
 * mount id.
 */
export type NestedMountsOf = (sdev: number) => { dir: string; mntId: number }[];

/** What the dump made of an inode of the tree's unlinked files: a ghost file of this kind, or none. */
export type GhostKind = 'file' | 'dir' | 'symlink' | undefined;

/**
 * inotify instances. `ghostOf` says what the dump keeps of the unlinked inode (device in the
 * kernel's encoding, as fdinfo prints it, and inode number) once every task's files are in.
 */
export class InotifyFiles implements DumpKind {
  private readonly kind: DumpKind;
  /** watches on files unlinked since, checked in finish() */
  private readonly unlinked: { sdev: number; ino: bigint; path: string; what: string }[] = [];

  constructor(private readonly ghostOf: (sdev: number, ino: bigint) => GhostKind, nested?: NestedMountsOf, irmap?: IrmapLookup) {
    this.kind = anonInodeKind('anon_inode:inotify', 'INOTIFY', (pid, rec, id, flags) => {
      const what = `task ${pid} fd ${rec.fd} (${rec.target})`;
      const wd = (rec.inotify?.watches ?? []).map((w) => {
        if (w.fhandle === undefined) noFdinfo(pid, rec);
        const f_handle = handleEntry({ sdev: w.sdev, ino: w.ino, bytes: w.fhandleBytes, type: w.fhandleType, hex: w.fhandle! }, what, (path) => this.unlinked.push({ sdev: w.sdev, ino: w.ino, path, what: `${what}: watch ${w.wd}` }), nested, irmap);
        return { id, i_ino: w.ino, mask: w.mask, ignored_mask: w.ignoredMask, s_dev: w.sdev, wd: w.wd, f_handle };
      });
      return { type: 'INOTIFY', id, ify: { id, flags, fown: fown(), wd } };
    });
  }

  claim: DumpKind['claim'] = (pid, rec, flags) => this.kind.claim!(pid, rec, flags);

  /**
   * Each watch on a file unlinked since must be on an inode the dump keeps as a ghost file
   * (regular, FIFO, device node): the restore puts it on that file made again. A removed
   * directory comes back with its watches gone (rmdir ends them), a symbolic link would be
   * watched where it leads: both refused, as is an inode no task of the tree holds.
   */
  finish(refusals: Refusals): void {
    for (const u of this.unlinked.splice(0)) {
      const kind = this.ghostOf(u.sdev, u.ino);
      if (kind === 'file') continue;
      const why = kind === 'dir' ? 'a removed directory, which is not supported'
        : kind === 'symlink' ? 'an unlinked symbolic link, which is not supported'
        : 'whose inode no task of the tree holds open or mapped (nothing to make it again from), which is not supported';
      refusals.refuse(new CrtoolsError('UNSUPPORTED_FILE', `${u.what}: a watch on ${u.path}, unlinked since, ${why}`, { context: {}, exitCode: ExitCode.UNSUPPORTED }));
    }
  }
}
