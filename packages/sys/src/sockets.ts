/** Sockets: the sock_diag view of this network namespace, and a task's socket seen through a copy of its descriptor. */
import { addon, orThrow, type PacketSocketDiag, type SocketInfo, type SocketQueue, type UnixSocketDiag, type UnixSocketFile } from './native.js';

/** Every AF_UNIX socket of this network namespace (sock_diag). */
export function unixSockets(): UnixSocketDiag[] {
  return orThrow(addon.get().unixDiag(), 'sock_diag');
}

/** Every AF_PACKET socket of this network namespace (sock_diag), with memberships, rings and fanout. */
export function packetSockets(): PacketSocketDiag[] {
  return orThrow(addon.get().packetDiag(), 'sock_diag');
}

/**
 * A task's socket queue, peeked through a copy of its descriptor (pidfd_getfd); nothing consumed.
 * eofAtZero: the socket is shut down for reading, an empty read of a datagram or seqpacket
 * socket is its end (otherwise a message of no bytes).
 */
export function socketQueue(pid: number, fd: number, eofAtZero = false): SocketQueue {
  return orThrow(addon.get().sockQueue(pid, fd, eofAtZero), 'pidfd_getfd', { pid, message: `socket queue of fd ${fd}` });
}

/** A task's socket as getsockopt & co. describe it (through a pidfd_getfd copy). */
export function socketInfo(pid: number, fd: number): SocketInfo {
  return orThrow(addon.get().sockInfo(pid, fd), 'pidfd_getfd', { pid, message: `socket at fd ${fd}` });
}

/**
 * The file task pid's bound unix socket at fd was bound to, as the kernel holds it (SIOCUNIXFILE
 * through a copy of the descriptor): its path as this process sees it, " (deleted)" at the end
 * once unlinked, with its device (user-space encoding) and inode.
 */
export function unixSocketFile(pid: number, fd: number): UnixSocketFile {
  return orThrow(addon.get().unixSocketFile(pid, fd), 'ioctl', { pid, message: `SIOCUNIXFILE on fd ${fd}` });
}

/** Listen backlog of a listening TCP socket (by family and inode). */
export function listenBacklog(family: number, ino: number): number {
  return listenQueues(family, ino).backlog;
}

/** How the UDP or UDP-lite socket with that inode was shut down: RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 (sock_diag). */
export function inetShutdown(family: number, protocol: number, ino: number): number {
  return orThrow(addon.get().inetShutdown(family, protocol, ino), 'sock_diag', { message: `socket:[${ino}]` });
}

/** Connections waiting to be accepted on the listening TCP socket (by family and inode). */
export function listenPending(family: number, ino: number): number {
  return listenQueues(family, ino).pending;
}

function listenQueues(family: number, ino: number): { backlog: number; pending: number } {
  return orThrow(addon.get().listenQueues(family, ino), 'sock_diag', { message: `listening socket:[${ino}]` });
}
