/**
 * Files named by kernel file handles (inotify watches: the kernel shows the watched inode as a
 * handle in fdinfo, and CRIU's images may carry only that): found through a mount of the same
 * filesystem in this process's mount namespace and open_by_handle_at.
 */
import { CrtoolsError, ExitCode, isNativeSysError, type NativeSysError } from '@crtools/common';
import { readMountinfo } from '@crtools/procfs';
import { addon } from './native.js';

export interface FileHandle {
  /** the filesystem's device as the kernel keeps it (major << 20 | minor) */
  sdev: number;
  type: number;
  /** the handle's bytes */
  handle: Buffer;
  /** what the image names it, when it does: taken as is */
  path?: string;
}

/** mount points of the filesystem with this kernel device number, whole-filesystem mounts first */
function mountsOf(sdev: number): string[] {
  const [major, minor] = [sdev >>> 20, sdev & 0xfffff];
  return readMountinfo(process.pid)
    .filter((m) => m.devMajor === major && m.devMinor === minor)
    .sort((a, b) => Number(b.root === '/') - Number(a.root === '/'))
    .map((m) => m.mountPoint);
}

/**
 * The path of the file a handle designates opened through the mount at `dir` (a mount of its
 * filesystem; one of another mount namespace too, reached as /proc/PID/root/...: the path is
 * then the one that namespace shows), or the failed call.
 */
export function handlePathVia(dir: string, h: Omit<FileHandle, 'path' | 'sdev'>): string | NativeSysError {
  return addon.get().pathOfHandle(dir, h.type, h.handle);
}

/** The path of the file a handle designates, or a FILE_HANDLE error naming what. */
export function fileHandlePath(h: FileHandle, what: string): string {
  if (h.path) return h.path;
  let last = 'no mount of that filesystem here';
  for (const m of mountsOf(h.sdev)) {
    const r = handlePathVia(m, h);
    if (!isNativeSysError(r)) return r;
    last = `${r.syscall}: errno ${r.errno}`;
  }
  throw new CrtoolsError('FILE_HANDLE', `${what}: the file it names (device ${h.sdev >>> 20}:${h.sdev & 0xfffff}) cannot be found again (${last})`, {
    context: { sdev: h.sdev },
    exitCode: ExitCode.FAILED,
  });
}
