/**
 * Mounts of another task's mount namespace made, changed (propagation, per-mount flags) and
 * removed from a thread of this process that joins that namespace and ends with the call.
 */
import { isNativeSysError, syscallError } from '@crtools/common';
import { addon } from './native.js';
import type { MountOp } from './native.js';

/** mount(2) flags a restore of a mount namespace uses. */
export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20, MANDLOCK: 0x40, DIRSYNC: 0x80,
  NOATIME: 0x400, NODIRATIME: 0x800, BIND: 0x1000, REC: 0x4000,
  UNBINDABLE: 0x20000, PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000, STRICTATIME: 0x1000000,
} as const;

/** umount2(2)'s MNT_DETACH. */
export const MNT_DETACH = 2;

/**
 * Each step, in order, from inside task pid's mount namespace (paths as its tasks see them
 * from the namespace's root), and inside its namespaces of `join` too (a sysfs shows the network
 * namespace of who mounts it, an mqueue the IPC one). A failure names the step that failed
 * (`step` in its context).
 */
export function mountSteps(pid: number, ops: readonly MountOp[], join: readonly ('net' | 'ipc')[] = []): void {
  const r = addon.get().mountOps(`/proc/${pid}/ns/mnt`, [...ops], join.map((k) => `/proc/${pid}/ns/${k}`));
  if (isNativeSysError(r)) {
    const step = ops[(r as { done?: number }).done ?? 0];
    throw syscallError(r.syscall, r.errno, { pid, path: step?.target });
  }
}

/**
 * A descriptor (close-on-exec) on a detached copy of the one mount at `path` of task pid's mount
 * namespace (as the task sees it from its root), without the mounts on top of it or below it:
 * the files those hide show through it (a tmpfs directory a later mount covers). A mount that
 * others cover (mounted later at its mount point or over a directory above it) is reached with
 * `uncover`, their mount points: unmounted, last first, in a private copy of the namespace made
 * for the call (the task's namespace keeps them). Closed by the caller.
 */
export function cloneMount(pid: number, path: string, uncover: readonly string[] = []): number {
  const r = addon.get().cloneMount(`/proc/${pid}/ns/mnt`, `/proc/${pid}/root`, path, [...uncover]);
  if (isNativeSysError(r)) throw syscallError(r.syscall, r.errno, { pid, path });
  return r;
}
