/** A task's terminal as the tty ioctls describe it, through a copy of its descriptor. */
import { addon, orThrow, type TtyProbe } from './native.js';

/**
 * What the terminal behind task pid's fd answers (pidfd_getfd; nothing is changed on it). Each
 * value the kernel refuses for this terminal is -errno; sid and pgrp are what this process is
 * told (a pty master answers for its slave; a slave only to a task whose terminal it is).
 */
export function probeTty(pid: number, fd: number): TtyProbe {
  return orThrow(addon.get().ttyProbe(pid, fd), 'pidfd_getfd', { pid, message: `fd ${fd}` });
}
