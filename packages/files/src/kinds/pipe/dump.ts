/** Pipes: each end by the pipe's inode and its flags; the bytes buffered in a pipe once (pipes-data.img). */
import { closeSync, openSync, constants as fsc } from 'node:fs';
import { peekPipe } from '@crtools/sys';
import type { FdRecord } from '@crtools/procfs';
import { fown, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';

/** What a pipe (or FIFO) holds, read without taking it: a new read-side description of it, and tee. */
export function pipeData(pid: number, fd: number, pipeId: number): Entry {
  const ours = openSync(`/proc/${pid}/fd/${fd}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
  try {
    const { size, data } = peekPipe(ours);
    return { pipe_id: pipeId, bytes: data.length, size, extra: data };
  } finally {
    closeSync(ours);
  }
}

export class PipeFiles implements DumpKind {
  private readonly data: Entry[] = [];
  private readonly seen = new Set<number>();

  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const m = /^pipe:\[(\d+)\]$/.exec(rec.target);
    if (!m) return undefined;
    const pipeId = Number(m[1]);
    return {
      type: 'PIPE',
      key: `pipe:${pipeId}:${flags}`,
      entry: (id) => {
        if (!this.seen.has(pipeId)) {
          this.seen.add(pipeId);
          this.data.push(pipeData(pid, rec.fd, pipeId));
        }
        return { type: 'PIPE', id, pipe: { id, pipe_id: pipeId, flags, fown: fown() } };
      },
    };
  }

  images(): DumpImage[] {
    return [{ file: 'pipes-data.img', magic: 'PIPES_DATA', entries: this.data }];
  }
}
