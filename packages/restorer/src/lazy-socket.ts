/**
 * The lazy-pages socket, as CRIU 4.2 speaks it between `criu restore --lazy-pages` and
 * `criu lazy-pages`: an AF_UNIX stream socket named `lazy-pages.socket` in the work directory,
 * where the daemon listens. The restore connects before it starts any task, then for each task
 * of pstree.img, in the order it restores them: the pid as a 4-byte int (negative for a zombie,
 * which has no userfaultfd), then for a live task one byte carrying the task's userfaultfd
 * (SCM_RIGHTS). Once every task runs, the 4-byte word LAZY_PAGES_RESTORE_FINISHED.
 */
import { join } from 'node:path';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { closeFd, recvExact, sendWithFds, streamConnect } from '@crtools/sys';

export const LAZY_PAGES_SOCKET = 'lazy-pages.socket';
/** "ReSTore Finished": the restore has resumed every task */
export const LAZY_PAGES_RESTORE_FINISHED = 0x52535446;

/** The restore's end of the socket. */
export class LazyPagesClient {
  private constructor(private fd: number) {}

  /** Connects to the daemon listening in `workDir`; one clear error when none is. */
  static connect(workDir: string): LazyPagesClient {
    const path = join(workDir, LAZY_PAGES_SOCKET);
    try {
      return new LazyPagesClient(streamConnect(path));
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e);
      throw new CrtoolsError('LAZY_PAGES_NO_DAEMON', `--lazy-pages: no lazy-pages daemon listens on ${path} (${code}); start \`criu lazy-pages -D\` first`, { exitCode: ExitCode.FAILED, context: { path } });
    }
  }

  /** Each task's pid and userfaultfd (undefined: a zombie), in the order given. */
  handOver(tasks: readonly { pid: number; uffd: number | undefined }[]): void {
    for (const t of tasks) {
      const pid = Buffer.alloc(4);
      pid.writeInt32LE(t.uffd === undefined ? -t.pid : t.pid);
      this.send(pid);
      if (t.uffd !== undefined) this.send(Buffer.from([0]), [t.uffd]);
    }
  }

  /** Every task runs: tell the daemon, and close. */
  finish(): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(LAZY_PAGES_RESTORE_FINISHED);
    try {
      this.send(b);
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  private send(data: Buffer, fds: number[] = []): void {
    try {
      sendWithFds(this.fd, data, fds);
    } catch (e) {
      throw new CrtoolsError('LAZY_PAGES_LOST', `--lazy-pages: the lazy-pages daemon went away (${(e as { code?: string }).code ?? String(e)})`, { exitCode: ExitCode.FAILED });
    }
  }
}

/** One task as the daemon receives it: pid and userfaultfd (undefined: a zombie). */
export interface ReceivedTask {
  pid: number;
  uffd: number | undefined;
}

/** The daemon's side: the next task from a connection, or null when the restore closed it. */
export function receiveTask(conn: number): ReceivedTask | null {
  const p = recvExact(conn, 4);
  for (const fd of p.fds) closeFd(fd);
  if (p.data.length < 4) return null;
  const pid = p.data.readInt32LE(0);
  if (pid < 0) return { pid: -pid, uffd: undefined };
  const f = recvExact(conn, 1);
  if (f.data.length < 1 || f.fds.length !== 1) {
    for (const fd of f.fds) closeFd(fd);
    throw new CrtoolsError('LAZY_PAGES_PROTOCOL', `lazy-pages: no userfaultfd came with pid ${pid}`, { exitCode: ExitCode.FAILED, context: { pid } });
  }
  return { pid, uffd: f.fds[0]! };
}
