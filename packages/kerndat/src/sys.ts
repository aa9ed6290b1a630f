/**
 * Private helpers over the raw syscall binding (x86_64 numbers and constants).
 * Not exported from the package.
 */
import { isNativeSysError, PAGE_SIZE_BIGINT, syscallError } from '@crtools/common';
import { native } from './load-native.js';
import type { ChildStatus, KerndatNative, SyscallArg } from './native.js';

export const NR = {
  read: 0, write: 1, close: 3, lseek: 8, mmap: 9, mprotect: 10, munmap: 11, ioctl: 16, pipe2: 293,
  madvise: 28, getpid: 39, socket: 41, connect: 42, sendto: 44, recvfrom: 45, shutdown: 48, bind: 49,
  listen: 50, getsockname: 51, setsockopt: 54, getsockopt: 55, fcntl: 72, flock: 73, prctl: 157,
  arch_prctl: 158, gettid: 186, io_setup: 206, io_destroy: 207, io_getevents: 208, timer_create: 222,
  timer_delete: 226, epoll_ctl: 233, inotify_add_watch: 254, timerfd_create: 283, signalfd4: 289,
  eventfd2: 290, epoll_create1: 291, inotify_init1: 294, vmsplice: 278, kcmp: 312, memfd_create: 319,
  tee: 276, userfaultfd: 323, membarrier: 324, rseq: 334, pidfd_open: 434, clone3: 435, close_range: 436,
  openat2: 437, pidfd_getfd: 438, move_mount: 429, fsopen: 430, memfd_secret: 447, process_mrelease: 448, mremap: 25,
} as const;

/** the page, for the probes' address arithmetic */
export const PAGE = PAGE_SIZE_BIGINT;

export interface Raw {
  ret: bigint;
  errno: number;
}

/** The raw call: { ret, errno } (ret -1n on failure, errno 0 on success): probes look at both. */
export function raw(nr: number, ...args: SyscallArg[]): Raw {
  const r = native().syscall(nr, ...args);
  return isNativeSysError(r) ? { ret: -1n, errno: r.errno } : { ret: r, errno: 0 };
}

/** A call that must work: returns the result, or throws a Node-shaped syscall error. */
export function sys(name: string, nr: number, ...args: SyscallArg[]): bigint {
  const r = raw(nr, ...args);
  if (r.ret === -1n) throw syscallError(name, r.errno);
  return r.ret;
}

/** Run a probe child and say how it ended; the probe fails (it answers nothing) when fork() does. */
export function forkProbe(...args: Parameters<KerndatNative['forkProbe']>): ChildStatus {
  const r = native().forkProbe(...args);
  if (isNativeSysError(r)) throw forkFailed(r.errno);
  return r;
}

/** The error of a probe whose child could not be forked. */
export function forkFailed(errno: number): Error {
  return new Error(`fork failed (errno ${errno})`);
}

export function closeFd(fd: number | bigint): void {
  raw(NR.close, Number(fd));
}

/** Run fn with fds opened by open(); every fd is closed afterwards. */
export function withFds<T>(fn: (track: (fd: bigint | number) => number) => T): T {
  const fds: number[] = [];
  try {
    return fn((fd) => {
      const n = Number(fd);
      fds.push(n);
      return n;
    });
  } finally {
    for (const fd of fds.reverse()) closeFd(fd);
  }
}

/** mmap an anonymous area; returns its address. */
export function mmapAnon(len: bigint, prot: number, flags: number, addr: bigint = 0n): bigint {
  return sys('mmap', NR.mmap, addr, len, prot, flags | 0x20 /* MAP_ANONYMOUS */, -1, 0);
}

export function munmap(addr: bigint, len: bigint): void {
  raw(NR.munmap, addr, len);
}

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;
export const MAP = { SHARED: 1, PRIVATE: 2, FIXED: 0x10, ANONYMOUS: 0x20, GROWSDOWN: 0x100, NORESERVE: 0x4000 } as const;

export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16, PACKET: 17 } as const;
export const SOCK = { STREAM: 1, DGRAM: 2, RAW: 3, CLOEXEC: 0o2000000, NONBLOCK: 0o4000 } as const;

/** An int-sized option value buffer. */
export function intBuf(v = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}
