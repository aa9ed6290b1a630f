/**
 * --inherit-fd of a pipe: CRIU's restore does not hand the caller's descriptor itself to the
 * tasks but opens the pipe again through /proc/self/fd/N with the flags recorded at dump time
 * (the access mode and O_NONBLOCK, O_APPEND...): the tasks get an open file of their own, as
 * they had one, and the caller's keeps its own flags. Either end of the new pipe serves (an open
 * of a pipe's /proc/self/fd link takes the access mode asked for). CRIU's test/others/pipes
 * checks the write end's O_NONBLOCK after the restore.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { CrtoolsError, ExitCode } from '@crtools/common';
import type { RestorePlan } from './plan.js';

export interface ReopenedInherits {
  plan: RestorePlan;
  /** the descriptors opened here, closed once the restore is over */
  close(): void;
}

/** The plan with each inherited pipe (InheritFilePlan.reopen) opened again with its recorded flags. */
export function reopenInherited(plan: RestorePlan): ReopenedInherits {
  const opened: number[] = [];
  const close = () => {
    for (const fd of opened.splice(0)) closeSync(fd);
  };
  try {
    const files = plan.files.map((f) => {
      if (f.kind !== 'inherit' || !f.reopen) return f;
      // (O_ASYNC is set with the owner, later, as for every file; an open never blocks on a pipe
      // whose other end the caller holds, and O_NONBLOCK keeps it from waiting for one)
      const flags = f.flags & ~(constants.O_CREAT | constants.O_EXCL | constants.O_TRUNC | 0o20000 /* O_ASYNC */);
      let fd: number;
      try {
        fd = openSync(`/proc/self/fd/${f.inheritFd}`, flags | constants.O_NOCTTY);
      } catch (e) {
        throw new CrtoolsError('RESTORE_INHERIT_FD', `--inherit-fd fd[${f.inheritFd}]: the pipe cannot be opened again with the flags it had (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
          exitCode: ExitCode.FAILED, context: { fd: f.inheritFd }, cause: e,
        });
      }
      opened.push(fd);
      const { reopen: _, ...rest } = f;
      return { ...rest, inheritFd: fd };
    });
    return { plan: { ...plan, files }, close };
  } catch (e) {
    close();
    throw e;
  }
}
