/**
 * memfd descriptors for a restore: each MEMFD entry of files.img names an inode of memfd.img
 * (the object: name, owner, mode, size, seals, contents in pagemap-shmem-<shmid>.img); an inode
 * named /dev/zero is shared anonymous memory (a descriptor opened on a mapping's map_files link),
 * made again as such. The file
 * plan says which inode and how the descriptor was open (flags, position); the restorer makes
 * every inode once (memfd_create, contents, size, owner, seals) and opens each descriptor, and
 * maps each area, on that one object.
 */
import { badImage, big, readImage, refuse, type Obj, type PlanContext, type PlanKind } from '../../plan/kind.js';
import type { FileBase } from '../reg/plan.js';
import { ANON_HUGEPAGE } from '@crtools/procfs';
import { MFD, MFD_HUGE_SHIFT } from './facts.js';

/**
 * A descriptor on a memfd: `inodeId` is its memfd.img inode. `shmem` (the restorer's object
 * index), `path` (what the task opens) and `heldFd` are filled in by the restorer.
 */
export interface MemfdFilePlan extends FileBase {
  kind: 'memfd';
  inodeId: number;
  shmem?: number;
  path?: string;
  /**
   * the restoring process's own descriptor on the memfd (memfd_create's), which this file takes
   * instead of opening `path`: the first read-write file of each memfd. An open file made by
   * memfd_create holds no write count on the inode, one opened again for writing does, and
   * execveat() of a memfd with a write count fails (ETXTBSY): the one memfd_create gave the
   * program must stay such a file.
   */
  heldFd?: number;
}

/**
 * Is memfd.img inode `m` shared anonymous memory (CRIU 4.2 keeps MAP_SHARED|MAP_ANONYMOUS memory
 * the memfd way): named `/dev/zero`, or `/anon_hugepage` on huge pages.
 */
export function isAnonShared(m: Obj): boolean {
  return m.name === '/dev/zero' || (m.name === ANON_HUGEPAGE && hugetlbBits(m) !== undefined);
}

/**
 * The huge page size bits (log2 of the size << MFD_HUGE_SHIFT) of memfd.img inode `m` on huge
 * pages; undefined for one on the shmem filesystem. MFD_HUGETLB without size bits is the
 * machine's default huge page size (0 here: the kernel's default).
 */
export function hugetlbBits(m: Obj): number | undefined {
  if (m.hugetlb_flag === undefined || !(Number(m.hugetlb_flag) & MFD.HUGETLB)) return undefined;
  return Number(m.hugetlb_flag) & (0x3f << MFD_HUGE_SHIFT);
}

/** O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC: never asked again when a memfd is reopened */
const OPEN_ONLY = 0o100 | 0o200 | 0o400 | 0o1000;

export class MemfdPlans implements PlanKind<MemfdFilePlan> {
  readonly type = 'MEMFD';
  readonly field = 'memfd';
  /** memfd.img by inode_id */
  readonly inodes = new Map<number, Obj>();

  async load(dir: string): Promise<void> {
    for (const m of (await readImage(dir, 'memfd.img', 'MEMFD_INODE', true)) ?? []) this.inodes.set(Number(m.inode_id), m);
  }

  /** The memfd.img inode `id`. */
  inode(id: number, what: string): Obj {
    const m = this.inodes.get(id);
    if (!m) throw badImage(`${what}: memfd.img has no inode ${id}`, { image: 'memfd.img' });
    return m;
  }

  plan(r: Obj, ctx: PlanContext): MemfdFilePlan {
    const inodeId = Number(r.inode_id);
    const m = this.inode(inodeId, ctx.what);
    // shared anonymous memory on huge pages is mapped only: a descriptor on it (opened through
    // map_files) is not made again
    if (isAnonShared(m) && hugetlbBits(m) !== undefined) throw refuse(`${ctx.what}: a descriptor on shared anonymous memory on huge pages is not restored`);
    return { kind: 'memfd', flags: Number(r.flags ?? 0) & ~OPEN_ONLY, pos: big(r.pos), inodeId };
  }
}
