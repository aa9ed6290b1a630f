/** Files: where a regular file's data lies (SEEK_DATA / SEEK_HOLE), times to the nanosecond, FIFOs made by name. */
import { addon, orThrow, type FailureContext } from './native.js';
import { isNativeSysError } from '@crtools/common';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

/** A run of a file's bytes that holds data: [off, off + len). */
export interface DataExtent {
  off: bigint;
  len: bigint;
}

/**
 * Where the data of the open regular file `fd` (of `size` bytes) lies, in order: what lies
 * between is a hole, read as zeros. On a filesystem that cannot tell (lseek says EINVAL or
 * EOPNOTSUPP for SEEK_DATA) the whole file is one extent.
 */
export function dataExtents(fd: number, size: bigint, context: FailureContext = {}): DataExtent[] {
  const out: DataExtent[] = [];
  let off = 0n;
  while (off < size) {
    const d = addon.get().seekFile(fd, off, SEEK_DATA);
    if (isNativeSysError(d)) {
      if (d.errno === ENXIO) break; // no data from off on: the rest is a hole
      if (off === 0n && out.length === 0) return size > 0n ? [{ off: 0n, len: size }] : [];
      orThrow(d, 'lseek', context);
    }
    const data = d as bigint;
    if (data >= size) break;
    let hole = orThrow(addon.get().seekFile(fd, data, SEEK_HOLE), 'lseek', context);
    if (hole > size) hole = size;
    out.push({ off: data, len: hole - data });
    off = hole;
  }
  return out;
}

/** A point in time as the kernel keeps file times. */
export interface FileTime {
  sec: bigint;
  nsec: number;
}

/** mkfifo(3): a FIFO at `path` (EEXIST when the name is taken); `mode`'s permission bits, less the umask. */
export function makeFifo(path: string, mode: number, context: FailureContext = {}): void {
  orThrow(addon.get().makeFifo(path, mode & 0o7777), 'mknod', { path, ...context });
}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/**
 * mknod(2) of a device node at `path` (EEXIST when the name is taken): `mode` a character or
 * block device's (type bits and permission bits, less the umask), `rdev` its device number as
 * stat(2) gives it.
 */
export function makeDeviceNode(path: string, mode: number, rdev: number, context: FailureContext = {}): void {
  const type = mode & S_IFMT;
  if (type !== S_IFCHR && type !== S_IFBLK) throw new RangeError(`not a device node's mode: 0${mode.toString(8)}`);
  if (!Number.isSafeInteger(rdev) || rdev < 0) throw new RangeError(`not a device number: ${rdev}`);
  orThrow(addon.get().makeDeviceNode(path, type | (mode & 0o7777), rdev), 'mknod', { path, ...context });
}

/** futimens(2): set the access and modification times of the open file `fd` exactly. */
export function setFileTimes(fd: number, atime: FileTime, mtime: FileTime, context: FailureContext = {}): void {
  for (const t of [atime, mtime]) if (!Number.isInteger(t.nsec) || t.nsec < 0 || t.nsec >= 1e9) throw new RangeError(`nanoseconds out of range: ${t.nsec}`);
  orThrow(addon.get().setFileTimes(fd, atime.sec, atime.nsec, mtime.sec, mtime.nsec), 'futimens', context);
}

/**
 * linkat(2) with AT_SYMLINK_FOLLOW: a new name `to` for the file `from` leads to; `from` may be
 * a /proc/PID/fd/N link (an open file whose name was removed while its inode keeps others).
 */
export function linkFollow(from: string, to: string, context: FailureContext = {}): void {
  orThrow(addon.get().linkFollow(from, to), 'linkat', { path: to, ...context });
}

/**
 * readlinkat(2): what the symbolic link `path` (relative to `dirfd`) holds; with `path` '' and
 * `dirfd` a descriptor opened O_PATH on a link (an unlinked one too), that link's own contents.
 */
export function readLinkAt(dirfd: number, path: string, context: FailureContext = {}): Buffer {
  return orThrow(addon.get().readLinkAt(dirfd, path), 'readlinkat', { path, ...context });
}

/** utimensat(2) with AT_SYMLINK_NOFOLLOW: set the access and modification times of the symbolic link `path` itself, exactly. */
export function setLinkTimes(path: string, atime: FileTime, mtime: FileTime, context: FailureContext = {}): void {
  for (const t of [atime, mtime]) if (!Number.isInteger(t.nsec) || t.nsec < 0 || t.nsec >= 1e9) throw new RangeError(`nanoseconds out of range: ${t.nsec}`);
  orThrow(addon.get().setLinkTimes(path, atime.sec, atime.nsec, mtime.sec, mtime.nsec), 'utimensat', { path, ...context });
}
