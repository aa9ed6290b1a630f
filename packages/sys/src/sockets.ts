/** Sockets: the sock_diag view of this network namespace, and a task's socket seen through a copy of its descriptor. */
import { addon, orThrow, type SocketInfo, type SocketQueue, type UnixSocketDiag } from './native.js';

/** Every AF_UNIX socket of this network namespace (sock_diag). */
export function unixSockets(): UnixSocketDiag[] {
  return orThrow(addon.get().unixDiag(), 'sock_diag');
}

/** A task's socket queue, peeked through a copy of its descriptor (pidfd_getfd); nothing consumed. */
export function socketQueue(pid: number, fd: number): SocketQueue {
  return orThrow(addon.get().sockQueue(pid, fd), 'pidfd_getfd', { pid, message: `socket queue of fd ${fd}` });
}

/** A task's socket as getsockopt & co. describe it (through a pidfd_getfd copy). */
export function socketInfo(pid: number, fd: number): SocketInfo {
  return orThrow(addon.get().sockInfo(pid, fd), 'pidfd_getfd', { pid, message: `socket at fd ${fd}` });
}

/** Listen backlog of a listening TCP socket (by family and inode). */
export function listenBacklog(family: number, ino: number): number {
  return orThrow(addon.get().listenBacklog(family, ino), 'sock_diag', { message: `listening socket:[${ino}]` });
}

/** Connections waiting to be accepted on the listening TCP socket (by family and inode). */
export function listenPending(family: number, ino: number): number {
  return orThrow(addon.get().listenPending(family, ino), 'sock_diag', { message: `listening socket:[${ino}]` });
}
