/** Pipe ends joined by the pipe's inode; the bytes the pipe held come from pipes-data.img. */
import { readImage, type Obj, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';

/** One end of a pipe (`pipeId` joins the ends); `data`: bytes buffered in it at dump time. */
export interface PipeFilePlan extends FileBase {
  kind: 'pipe-r' | 'pipe-w';
  pipeId: number;
  data?: Buffer;
  pipeSize?: number;
}

const O_ACCMODE = 3;

export class PipePlans implements PlanKind<PipeFilePlan> {
  readonly type = 'PIPE';
  readonly field = 'pipe';
  private data = new Map<number, Obj>();

  async load(dir: string): Promise<void> {
    this.data = new Map(((await readImage(dir, 'pipes-data.img', 'PIPES_DATA', true)) ?? []).map((d) => [Number(d.pipe_id), d]));
  }

  plan(pe: Obj): PipeFilePlan {
    const d = this.data.get(pe.pipe_id);
    const data = d?.extra as Buffer | undefined;
    return {
      kind: (pe.flags & O_ACCMODE) === 0 ? 'pipe-r' : 'pipe-w',
      flags: pe.flags,
      pos: 0n,
      pipeId: pe.pipe_id,
      data: data && data.length ? data.subarray(0, d!.bytes) : undefined,
      pipeSize: d?.size,
    };
  }

  inheritKey(pe: Obj): string {
    return `pipe:[${pe.pipe_id}]`;
  }
}
