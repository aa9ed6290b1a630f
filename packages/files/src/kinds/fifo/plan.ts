/** FIFOs: opened again by path (the REG entry regf_id names; an unlinked one made again from its ghost), with what the pipe held (fifo-data.img). */
import { statSync } from 'node:fs';
import { badImage, missingFile, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import { loadPipeData, pipeContents } from '../pipe/plan.js';
import type { FileBase } from '../reg/plan.js';

/**
 * A FIFO opened at `path` with the flags it had; `pipeId` joins the opens of one FIFO; `data` what
 * it held; `ghost`: an unlinked one, index into the plan's ghosts (the restorer makes it and opens
 * it by the name it gets).
 */
export interface FifoFilePlan extends FileBase {
  kind: 'fifo';
  path: string;
  ghost?: number;
  pipeId: number;
  data?: Buffer;
  pipeSize?: number;
}

export class FifoPlans implements PlanKind<FifoFilePlan> {
  readonly type = 'FIFO';
  readonly field = 'fifo';
  private data = new Map<number, Obj>();
  private files: ReadonlyMap<number, Obj> = new Map();

  /** ghostOf: the ghost index of a files.img entry (an unlinked FIFO's REG entry) */
  constructor(private readonly ghostOf: (id: number) => number | undefined = () => undefined, private readonly madeLater: (path: string) => boolean = () => false) {}

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    this.files = files;
    this.data = await loadPipeData(dir, 'fifo-data.img', 'FIFO_DATA');
  }

  plan(fe: Obj, ctx: PlanContext): FifoFilePlan {
    // the path and flags are the REG entry's (CRIU's older images: the FIFO's own id)
    const reg = this.files.get(Number(fe.regf_id ?? fe.id))?.reg as Obj | undefined;
    if (!reg) throw badImage(`${ctx.what}: FIFO ${fe.id} names no regular file entry (${fe.regf_id ?? fe.id}) for its path`, { image: 'files.img' });
    const path = String(reg.name);
    const pipe = { flags: Number(reg.flags ?? 0), pos: 0n, pipeId: Number(fe.pipe_id), ...pipeContents(this.data.get(Number(fe.pipe_id))) };
    const ghost = this.ghostOf(Number(fe.regf_id ?? fe.id));
    if (ghost !== undefined) return { kind: 'fifo', path, ghost, ...pipe };
    // (below a mount the restore makes anew it is looked for when it is opened)
    let fifo = this.madeLater(path);
    try {
      fifo ||= statSync(path).isFIFO();
    } catch {
      // missing: said below
    }
    if (!fifo) throw missingFile(`${ctx.what}: FIFO ${path} no longer exists (or is no FIFO now)`, path);
    return { kind: 'fifo', path, ...pipe };
  }

  inheritKey(fe: Obj): string | undefined {
    const reg = this.files.get(Number(fe.regf_id ?? fe.id))?.reg as Obj | undefined;
    return reg ? String(reg.name).replace(/^\//, '') : undefined;
  }
}
