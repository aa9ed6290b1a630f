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

/** pipe_data_entry records of an image (pipes-data.img, fifo-data.img), by pipe_id. */
export async function loadPipeData(dir: string, file: string, magic: string): Promise<Map<number, Obj>> {
  return new Map(((await readImage(dir, file, magic, true)) ?? []).map((d) => [Number(d.pipe_id), d]));
}

/** What a pipe held (`bytes` of the payload) and its size, from its pipe_data_entry if it has one. */
export function pipeContents(d: Obj | undefined): { data?: Buffer; pipeSize?: number } {
  const data = d?.extra as Buffer | undefined;
  return { data: data && data.length ? data.subarray(0, d!.bytes) : undefined, pipeSize: d?.size };
}

export class PipePlans implements PlanKind<PipeFilePlan> {
  readonly type = 'PIPE';
  readonly field = 'pipe';
  private data = new Map<number, Obj>();

  async load(dir: string): Promise<void> {
    this.data = await loadPipeData(dir, 'pipes-data.img', 'PIPES_DATA');
  }

  plan(pe: Obj): PipeFilePlan {
    return {
      kind: (pe.flags & O_ACCMODE) === 0 ? 'pipe-r' : 'pipe-w',
      flags: pe.flags,
      pos: 0n,
      pipeId: pe.pipe_id,
      ...pipeContents(this.data.get(pe.pipe_id)),
    };
  }

  inheritKey(pe: Obj): string {
    return `pipe:[${pe.pipe_id}]`;
  }
}
