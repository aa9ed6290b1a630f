/**
 * Files named by kernel file handles (inotify watches in CRIU's images): found again through a
 * mount of the same filesystem in this process's namespace and open_by_handle_at.
 */
import { readFileSync } from 'node:fs';
import { ExitCode } from '@crtools/common';
import { isSysError, loadNative } from './native.js';
import { RestoreErrorCode, restoreError } from './errors.js';

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
  const want = `${sdev >>> 20}:${sdev & 0xfffff}`;
  const out: [string, boolean][] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[2] === want && f[4]) out.push([f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), f[3] === '/']);
  }
  return out.sort((a, b) => Number(b[1]) - Number(a[1])).map(([m]) => m);
}

/** The path of the file a handle designates, or a RESTORE_FILE_HANDLE error naming what. */
export function fileHandlePath(h: FileHandle, what: string): string {
  if (h.path) return h.path;
  const native = loadNative();
  let last = 'no mount of that filesystem here';
  for (const m of mountsOf(h.sdev)) {
    const r = native.pathOfHandle(m, h.type, h.handle);
    if (!isSysError(r)) return r;
    last = `${r.syscall}: errno ${r.errno}`;
  }
  throw restoreError(RestoreErrorCode.FILE_HANDLE, `${what}: the file it names (device ${h.sdev >>> 20}:${h.sdev & 0xfffff}) cannot be found again (${last})`, { sdev: h.sdev }, ExitCode.FAILED);
}
