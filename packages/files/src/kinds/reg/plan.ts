/**
 * Regular files opened again by path, checked to still be there with the recorded size;
 * unlinked ones (remap-fpath.img names each one's ghost-file-<id>.img) are made again from
 * the contents the dump kept.
 */
import { existsSync, statSync } from 'node:fs';
import { badImage, big, firstEntry, missingFile, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';

/** What every file of the plan has: its open(2) flags (O_ACCMODE, O_APPEND, O_NONBLOCK, O_ASYNC...) and offset. */
export interface FileBase {
  flags: number;
  pos: bigint;
  /** its I/O signal settings, when it has any (files.img fown_entry: an owner or a signal) */
  fown?: FownPlan;
}

/**
 * Where the open file's I/O signals go (F_SETOWN_EX) and which signal (F_SETSIG), with the uids
 * the owner was recorded with (they decide whether the owner may be signalled).
 */
export interface FownPlan {
  /** F_SETSIG (0: SIGIO) */
  signum: number;
  /** F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2 */
  pidType: number;
  /** the owner (0: none) */
  pid: number;
  uid: number;
  euid: number;
}

/** A regular file (or directory, device) opened again by path; `ghost`: an unlinked one, index into the plan's ghosts. */
export interface RegFilePlan extends FileBase {
  kind: 'reg';
  path: string;
  size?: bigint;
  ghost?: number;
}

/**
 * An unlinked file a task still had open or mapped: the restorer makes it again (at `path`
 * when that name is free, else beside it) and unlinks it once the tasks hold it.
 */
export interface GhostPlan {
  path: string;
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/** O_TMPFILE (with its O_DIRECTORY bit): not asked again when an unlinked file is reopened */
const O_TMPFILE = 0o20000000 | 0o200000;

export class RegPlans implements PlanKind<RegFilePlan> {
  readonly type = 'REG';
  readonly field = 'reg';
  /** the unlinked files of the checkpoint */
  readonly ghosts: GhostPlan[] = [];
  /** files.img id → index of its ghost */
  readonly ghostOf = new Map<number, number>();

  async load(dir: string, files: ReadonlyMap<number, Obj>): Promise<void> {
    const byImage = new Map<number, number>();
    for (const r of (await readImage(dir, 'remap-fpath.img', 'REMAP_FPATH', true)) ?? []) {
      const type = r.remap_type ?? 'LINKED';
      if (type !== 'GHOST' && type !== 1) throw refuse(`remap-fpath.img: file ${r.orig_id} is remapped the ${type} way, which restore does not do yet`);
      const orig = files.get(Number(r.orig_id));
      if (!orig?.reg) throw badImage(`remap-fpath.img: file ${r.orig_id} is not a regular file of files.img`, { image: 'remap-fpath.img' });
      const gid = Number(r.remap_id);
      let gi = byImage.get(gid);
      if (gi === undefined) {
        const name = `ghost-file-${gid.toString(16)}.img`;
        const head = firstEntry(await readImage(dir, name, 'GHOST_FILE'), name);
        if (head.chunks) throw refuse(`${name}: chunked ghost files are not restored yet`);
        gi = this.ghosts.push({ path: orig.reg.name, data: (head.extra as Buffer | undefined) ?? Buffer.alloc(0), mode: Number(head.mode), uid: Number(head.uid), gid: Number(head.gid) }) - 1;
        byImage.set(gid, gi);
      }
      this.ghostOf.set(Number(r.orig_id), gi);
    }
  }

  plan(r: Obj, ctx: PlanContext): RegFilePlan {
    const ghost = this.ghostOf.get(ctx.id);
    if (ghost !== undefined) return { kind: 'reg', path: r.name, flags: (r.flags ?? 0) & ~O_TMPFILE, pos: big(r.pos), ghost };
    if (!existsSync(r.name)) throw missingFile(`${ctx.what}: file ${r.name} no longer exists`, r.name);
    if (r.size !== undefined) {
      const st = statSync(r.name);
      if (st.isFile() && BigInt(st.size) !== big(r.size)) throw missingFile(`${ctx.what}: file ${r.name} changed size (${st.size}, recorded ${r.size})`, r.name);
    }
    return { kind: 'reg', path: r.name, flags: r.flags ?? 0, pos: big(r.pos), size: r.size === undefined ? undefined : big(r.size) };
  }

  inheritKey(r: Obj): string {
    return String(r.name).replace(/^\//, '');
  }
}
