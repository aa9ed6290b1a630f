/** A task's open file as fcntl, ioctl and getsockopt describe it, through a copy of its descriptor. */
import { addon, orThrow, type FileProbe } from './native.js';

/** One socket option to ask: level, option name, and the bytes to ask for (0: its length only; SO_GET_FILTER counts instructions of 8 bytes). */
export interface SockoptQuery {
  level: number;
  name: number;
  length: number;
}

/** What the open file behind task pid's fd answers (pidfd_getfd; nothing is changed on it). */
export function probeFile(pid: number, fd: number, sockopts: readonly SockoptQuery[] = []): FileProbe {
  return orThrow(addon.get().fileProbe(pid, fd, sockopts.flatMap((q) => [q.level, q.name, q.length])), 'pidfd_getfd', { pid, message: `fd ${fd}` });
}

/** What the same socket option queries answer on a fresh socket of that domain, type and protocol: its defaults. */
export function probeFreshSocket(domain: number, type: number, protocol: number, sockopts: readonly SockoptQuery[]): (Buffer | number)[] {
  return orThrow(addon.get().freshSocketProbe(domain, type, protocol, sockopts.flatMap((q) => [q.level, q.name, q.length])), 'socket', { message: `a fresh socket (${domain}, ${type}, ${protocol})` });
}

/** A descriptor of ours on task pid's open file at fd (pidfd_getfd): the caller closes it. */
export function takeTaskFd(pid: number, fd: number): number {
  return orThrow(addon.get().takeFd(pid, fd), 'pidfd_getfd', { pid, message: `fd ${fd}` });
}

/**
 * The first len bytes task pid's open file at fd maps (a packet socket's rings the task does not
 * map itself), read through a read-only mapping of a copy of its descriptor, unmapped again.
 */
export function readTaskMapped(pid: number, fd: number, len: number): Buffer {
  const own = takeTaskFd(pid, fd);
  try {
    return orThrow(addon.get().readMapped(own, BigInt(len)), 'mmap', { pid, message: `fd ${fd}` });
  } finally {
    addon.get().closeFd(own);
  }
}
