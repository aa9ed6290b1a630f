import { syscallError } from '@crtools/common';
import { native } from './load-native.js';
import type { SocketInfo, SocketQueue, UnixSocketDiag } from './native.js';

export const KCMP_FILE = 0;
export const KCMP_VM = 1;
export const KCMP_FILES = 2;
export const KCMP_FS = 3;
export const KCMP_SIGHAND = 4;

/** kcmp(2): do the two tasks' objects (KCMP_*) match? */
export function sameKernelObject(pid1: number, pid2: number, type: number, idx1 = 0, idx2 = 0): boolean {
  const r = native().kcmp(pid1, pid2, type, idx1, idx2);
  if (r < 0) throw syscallError('kcmp', -r, { pid: pid1 });
  return r === 0;
}

export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;

export function clockNow(clockId: number): { tv_sec: bigint; tv_nsec: bigint } {
  const r = native().clockGettime(clockId);
  if (typeof r === 'number') throw syscallError('clock_gettime', -r);
  return { tv_sec: BigInt(r[0]), tv_nsec: BigInt(r[1]) };
}

/** The bytes buffered in a pipe (through any fd of ours on it), without consuming them, and its capacity. */
export function peekPipe(fd: number): { size: number; data: Buffer } {
  const r = native().peekPipe(fd);
  if (typeof r === 'number') throw syscallError('tee', -r);
  return r;
}

/** Every AF_UNIX socket of this network namespace (sock_diag). */
export function unixSockets(): UnixSocketDiag[] {
  const r = native().unixDiag();
  if (typeof r === 'number') throw syscallError('sock_diag', -r);
  return r;
}

/** A task's socket queue, peeked through a copy of its descriptor (pidfd_getfd); nothing consumed. */
export function socketQueue(pid: number, fd: number): SocketQueue {
  const r = native().sockQueue(pid, fd);
  if (typeof r === 'number') throw syscallError('pidfd_getfd', -r, { pid, message: `socket queue of fd ${fd}` });
  return r;
}

/** A task's socket as getsockopt & co. describe it (through a pidfd_getfd copy). */
export function socketInfo(pid: number, fd: number): SocketInfo {
  const r = native().sockInfo(pid, fd);
  if (typeof r === 'number') throw syscallError('pidfd_getfd', -r, { pid, message: `socket at fd ${fd}` });
  return r;
}

/** Listen backlog of a listening TCP socket (by family and inode). */
export function listenBacklog(family: number, ino: number): number {
  const r = native().listenBacklog(family, ino);
  if (r < 0) throw syscallError('sock_diag', -r, { message: `listening socket:[${ino}]` });
  return r;
}

/** Start a program as a grandchild in its own session (not a child of Node); returns its pid. */
export function spawnDetached(path: string, argv: string[]): number {
  const r = native().spawnDetached(path, argv);
  if (r < 0) throw syscallError('fork', -r, { path });
  return r;
}
