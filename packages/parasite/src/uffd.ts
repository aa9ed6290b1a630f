import { CrtoolsError, ExitCode } from '@crtools/common';
import { takeTaskFd } from '@crtools/sys';
import { call, NR, type Infection } from './remote.js';

const O_CLOEXEC = 0o2000000n;
const O_NONBLOCK = 0o4000n;

/**
 * A userfaultfd on the infected task's memory, held by us: created by the task (a userfaultfd acts
 * on the mm of its creator), taken with pidfd_getfd, and closed again in the task, whose
 * descriptor table is left as it was. The caller closes the descriptor returned.
 */
export function takeTaskUserfaultfd(inf: Infection): number {
  const fd = call(inf, inf.pid, NR.userfaultfd, [O_CLOEXEC | O_NONBLOCK]);
  if (fd < 0n) {
    const first = -fd;
    throw new CrtoolsError('UFFD_CREATE', `task ${inf.pid}: userfaultfd() failed in the task (errno ${first})`, {
      context: { pid: inf.pid, errno: Number(first) }, exitCode: ExitCode.UNSUPPORTED,
    });
  }
  try {
    return takeTaskFd(inf.pid, Number(fd));
  } finally {
    call(inf, inf.pid, NR.close, [fd]);
  }
}
