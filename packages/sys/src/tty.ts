/** A task's terminal as the tty ioctls describe it, through a copy of its descriptor. */
import { addon, orThrow, type TtyProbe, type TtyQueues } from './native.js';

/**
 * What the terminal behind task pid's fd answers (pidfd_getfd; nothing is changed on it). Each
 * value the kernel refuses for this terminal is -errno; sid and pgrp are what this process is
 * told (a pty master answers for its slave; a slave only to a task whose terminal it is).
 */
export function probeTty(pid: number, fd: number): TtyProbe {
  return orThrow(addon.get().ttyProbe(pid, fd), 'pidfd_getfd', { pid, message: `fd ${fd}` });
}

/**
 * Take the bytes waiting at each end of a pty pair (descriptors of ours on its master and a
 * slave), read out of the terminal: the master's (not in packet mode: the caller makes sure),
 * and the slave's — in canonical mode each complete line by a read of its own (`lines`), then
 * the line being typed, read with ICANON off for the while (the termios set back unchanged).
 * EPERM: locked termios bits kept ICANON from being turned off.
 */
export function takeTtyQueues(masterFd: number, slaveFd: number): TtyQueues {
  return orThrow(addon.get().ttyQueueRead(masterFd, slaveFd), 'read', {});
}

/**
 * Put bytes back to wait at each end of a pty pair, each write waited for until it has arrived,
 * the termios set back. A non-canonical slave's bytes unchanged (its termios raw for the while);
 * a canonical slave's typed again as the dump wrote them (its lines with LNEXT before each
 * special character and the character that ended each, the line being typed last: see
 * canonicalTyped in @crtools/files), with no processing but the line discipline's own. EPERM:
 * locked termios bits (TIOCSLCKTRMIOS) kept the temporary termios from being set.
 */
export function putTtyQueues(masterFd: number, slaveFd: number, q: Pick<TtyQueues, 'toMaster' | 'toSlave'>): void {
  orThrow(addon.get().ttyQueueWrite(masterFd, slaveFd, q.toMaster, q.toSlave), 'write', {});
}
