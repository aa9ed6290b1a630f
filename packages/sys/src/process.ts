/** kcmp(2) and clocks: questions about processes and time that both sides ask. */
import { closeSync } from 'node:fs';
import { isNativeSysError, syscallError } from '@crtools/common';
import { addon, orThrow } from './native.js';

/** kcmp(2) types: which kind of kernel object two tasks are compared on. */
export const KCMP_FILE = 0;
export const KCMP_VM = 1;
export const KCMP_FILES = 2;
export const KCMP_FS = 3;
export const KCMP_SIGHAND = 4;
export const KCMP_EPOLL_TFD = 7;

/** kcmp(2): do the two tasks' objects (KCMP_*) match? */
export function sameKernelObject(pid1: number, pid2: number, type: number, idx1 = 0, idx2 = 0): boolean {
  return orThrow(addon.get().kcmp(pid1, pid2, type, idx1, idx2), 'kcmp', { pid: pid1 }) === 0;
}

/**
 * kcmp(2)'s order of two tasks' objects (KCMP_*): 0 the same object, -1 or 1 the kernel's order of
 * the two (it orders them by address, obfuscated), undefined when the kernel gives no order.
 */
export function kernelObjectOrder(pid1: number, pid2: number, type: number, idx1 = 0, idx2 = 0): -1 | 0 | 1 | undefined {
  const r = orThrow(addon.get().kcmp(pid1, pid2, type, idx1, idx2), 'kcmp', { pid: pid1 });
  return r === 0 ? 0 : r === 1 ? -1 : r === 2 ? 1 : undefined;
}

/**
 * Distinct kernel objects of one kind (KCMP_*), each named by a task that has it (pid, and the
 * descriptor for KCMP_FILE), with a value: kept in kcmp's order, so that finding a task's object
 * among n costs log n kcmp calls, not n (a tree of 500 tasks made 500,000 calls for its kobj ids).
 * Falls back to comparing with each when the kernel gives no order.
 */
export class KernelObjects<T> {
  private readonly list: { pid: number; idx: number; value: T }[] = [];
  private ordered = true;
  constructor(private readonly type: number) {}
  /** the value of the object task pid has (at idx), if one of the set is that object; else where it goes */
  private search(pid: number, idx: number): { value?: T; at: number } {
    if (this.ordered) {
      let lo = 0;
      let hi = this.list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const o = this.list[mid]!;
        const r = kernelObjectOrder(o.pid, pid, this.type, o.idx, idx);
        if (r === undefined) {
          this.ordered = false;
          break;
        }
        if (r === 0) return { value: o.value, at: mid };
        if (r < 0) lo = mid + 1;
        else hi = mid;
      }
      if (this.ordered) return { at: lo };
    }
    for (const o of this.list) if (kernelObjectOrder(o.pid, pid, this.type, o.idx, idx) === 0) return { value: o.value, at: this.list.length };
    return { at: this.list.length };
  }
  /** the value given with the object task pid has (at idx), if it is one of the set */
  find(pid: number, idx = 0): T | undefined {
    return this.search(pid, idx).value;
  }
  /** the value of task pid's object if known, else `value`, now known by this task */
  findOrAdd(pid: number, idx: number, value: () => T): { value: T; found: boolean } {
    const s = this.search(pid, idx);
    if (s.value !== undefined) return { value: s.value, found: true };
    const v = value();
    this.list.splice(this.ordered ? s.at : this.list.length, 0, { pid, idx, value: v });
    return { value: v, found: false };
  }
}

/**
 * Is the task's descriptor `fd` the file its epoll `efd` watches as target `tfd` (the `toff`-th
 * target registered under that number)? The target's own descriptor may have been closed since.
 */
export function isEpollTarget(pid: number, fd: number, efd: number, tfd: number, toff = 0): boolean {
  return orThrow(addon.get().kcmpEpollTfd(pid, fd, efd, tfd, toff), 'kcmp', { pid }) === 0;
}

export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;

export function clockNow(clockId: number): { tv_sec: bigint; tv_nsec: bigint } {
  const [sec, nsec] = orThrow(addon.get().clockGettime(clockId), 'clock_gettime');
  return { tv_sec: BigInt(sec), tv_nsec: BigInt(nsec) };
}

/** setns(2) types of the namespaces whose files nsFiles reaches (CLONE_NEW*). */
export const NS_TYPE = { uts: 0x04000000, ipc: 0x08000000, net: 0x40000000, time: 0x00000080, pid: 0x20000000, mnt: 0x00020000, user: 0x10000000, cgroup: 0x02000000 } as const;

/** A user namespace made by createUserNamespace, with the network namespace it owns when one was asked; close() lets them go. */
export interface MadeUserNamespace {
  /** descriptor of the user namespace (close-on-exec) */
  user: number;
  /** descriptor of the network namespace made in it */
  net?: number;
  close(): void;
}

/**
 * A new user namespace, its maps written (the text uid_map and gid_map take, as criu's namespace
 * sees the ids), and with `net` a new network namespace owned by it: namespaces a restored tree is
 * born in, made before it so that what lives in them can be set up first (a network namespace's
 * devices and sockets) while they belong to the tree's user namespace as they did.
 */
export function createUserNamespace(uidMap: string, gidMap: string, opts: { net?: boolean } = {}): MadeUserNamespace {
  const fds = orThrow(addon.get().usernsCreate(uidMap, gidMap, opts.net ? NS_TYPE.net : 0), 'clone');
  let open = true;
  return {
    user: fds[0]!,
    ...(fds[1] !== undefined ? { net: fds[1] } : {}),
    close: () => {
      if (!open) return;
      open = false;
      for (const fd of fds) closeSync(fd);
    },
  };
}

/**
 * The inode of the user namespace that owns the namespace `nsPath` names (/proc/PID/ns/KIND), or
 * with `parent`, of the parent of the user (or pid) namespace it names (ioctl NS_GET_USERNS /
 * NS_GET_PARENT; EPERM when that namespace lies outside the caller's).
 */
export function namespaceRelative(nsPath: string, parent = false): bigint {
  return BigInt(orThrow(addon.get().nsRelative(nsPath, parent ? 1 : 0), 'ioctl', { path: nsPath }));
}

/**
 * Files of another task's namespace, as a task inside it sees them (/proc/sys/kernel/hostname of
 * its UTS namespace, the IPC sysctls of its IPC namespace...): each of `writes` is written, then
 * each of `reads` is read, on a thread of this process that joins the namespace of task `pid`
 * and ends with the call (no other thread leaves its own); with `as`, the thread takes those
 * effective ids first (criu's view of a user namespace's root, to whom an IPC namespace's
 * sysctls belong).
 */
export function namespaceFiles(pid: number, kind: keyof typeof NS_TYPE, opts: { reads?: readonly string[]; writes?: readonly (readonly [string, string])[]; as?: { uid: number; gid: number } }): string[] {
  return namespaceFilesAt(`/proc/${pid}/ns/${kind}`, kind, opts, { pid }) as string[];
}

/**
 * namespaceFiles of the namespace `nsPath` names (/proc/PID/ns/KIND, or /proc/self/fd/N of a
 * descriptor that holds one); with `optional`, a file that cannot be read (or reads empty)
 * comes back as null instead of failing the call.
 */
export function namespaceFilesAt(
  nsPath: string, kind: keyof typeof NS_TYPE,
  opts: { reads?: readonly string[]; writes?: readonly (readonly [string, string])[]; optional?: boolean; as?: { uid: number; gid: number } },
  context: { pid?: number } = {},
): (string | null)[] {
  const r = addon.get().nsFiles(nsPath, NS_TYPE[kind], (opts.writes ?? []).map(([p, d]) => [p, d]), [...(opts.reads ?? [])], !!opts.optional, opts.as?.uid, opts.as?.gid);
  if (isNativeSysError(r)) throw syscallError(r.syscall, r.errno, { ...context, path: (r as { path?: string }).path ?? nsPath });
  return r;
}

/** What killReleasing did to one process: each step's errno (0: done; release -1: not asked). */
export interface KillReleased {
  pid: number;
  /** pidfd_open + pidfd_send_signal(SIGKILL): ESRCH when the process was gone already */
  kill: number;
  /** process_mrelease(2): ENOSYS on kernels before 5.15 (the later ones were then not asked), EINVAL when the kernel saw the process not dying */
  release: number;
}

/**
 * SIGKILL each process and, with `release`, free its memory from here (process_mrelease(2)):
 * the dying process would free it itself once scheduled, which on a loaded machine is later,
 * and for a large address space takes as long. Its exit is still to be collected by whoever
 * waits for it.
 */
export function killReleasing(pids: readonly number[], release: boolean): KillReleased[] {
  return addon.get().killRelease([...pids], release).map((r, i) => ({ pid: pids[i]!, kill: r.kill, release: r.release }));
}
