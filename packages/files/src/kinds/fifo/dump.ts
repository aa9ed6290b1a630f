/**
 * FIFOs (named pipes) as CRIU 4.2 writes them: a files.img FIFO entry (fifo_entry: the pipe's
 * inode as pipe_id, regf_id naming a REG entry that keeps the path and the open flags) and
 * what the pipe holds, once per FIFO, in fifo-data.img. An unlinked FIFO is kept as CRIU 4.2
 * keeps it: its REG entry is backed by a ghost file (remap-fpath.img) of the head alone (owner,
 * mode, times), made again by the restore as a FIFO at its name and unlinked once opened.
 */
import { statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import type { FdRecord } from '@crtools/procfs';
import { type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { pipeData } from '../pipe/dump.js';

export class FifoFiles implements DumpKind {
  private readonly data: Entry[] = [];
  private readonly seen = new Set<number>();

  /** pathEntry: a REG entry for the FIFO's path and flags (its id); `deletedVia`: unlinked, kept as a ghost read through that link */
  constructor(private readonly pathEntry: (path: string, flags: number, st: Stats, deletedVia?: string, what?: string) => number) {}

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    if (!rec.target.startsWith('/')) return undefined;
    const link = `/proc/${pid}/fd/${rec.fd}`;
    const st = statSync(link);
    if (!st.isFIFO()) return undefined;
    const deleted = / \(deleted\)$/.test(rec.target);
    const path = deleted ? rec.target.slice(0, -' (deleted)'.length) : rec.target;
    const pipeId = Number(st.ino);
    return {
      type: 'FIFO',
      key: `fifo:${st.dev}:${st.ino}:${flags}`,
      entry: (id) => {
        const regfId = this.pathEntry(path, flags, st, deleted ? link : undefined, `task ${pid} fd ${rec.fd}`);
        if (!this.seen.has(pipeId)) {
          this.seen.add(pipeId);
          this.data.push(pipeData(pid, rec.fd, pipeId));
        }
        return { type: 'FIFO', id, fifo: { id, pipe_id: pipeId, regf_id: regfId } };
      },
    };
  }

  images(): DumpImage[] {
    return [{ file: 'fifo-data.img', magic: 'FIFO_DATA', entries: this.data }];
  }
}
