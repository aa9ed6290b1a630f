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
 * slave): as many as TIOCINQ counts at each, read out of the terminal. All of them only where the
 * caller made sure TIOCINQ counts them all: the slave not in canonical mode (which counts whole
 * lines only), the master not in packet mode (whose reads begin with a status byte).
 */
export function takeTtyQueues(masterFd: number, slaveFd: number): TtyQueues {
  return orThrow(addon.get().ttyQueueRead(masterFd, slaveFd), 'read', {});
}

/**
 * Put bytes back to wait at each end of a pty pair, unchanged: the slave's termios raw for the
 * while (no processing, no echo), each write waited for until it has arrived, the termios set
 * back. EPERM: locked termios bits (TIOCSLCKTRMIOS) kept it from being made raw.
 */
export function putTtyQueues(masterFd: number, slaveFd: number, q: TtyQueues): void {
  orThrow(addon.get().ttyQueueWrite(masterFd, slaveFd, q.toMaster, q.toSlave), 'write', {});
}
