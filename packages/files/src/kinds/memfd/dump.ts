/**
 * memfds and shared anonymous memory, both objects of the kernel's internal shmem mount, kept
 * the way CRIU 4.2 keeps them: each inode once in memfd.img (name, owner, mode, size, seals, and
 * its inode number as `shmid`), its contents in pagemap-shmem-<shmid>.img (offsets in the object
 * as addresses), and MEMFD entries in files.img naming that inode:
 *  - a descriptor on a memfd (`/memfd:NAME (deleted)`, mnt_id 0): one entry per open file
 *    description (its flags and position);
 *  - the mappings of an inode (MAP_SHARED|MAP_ANONYMOUS memory shows as `/dev/zero (deleted)`,
 *    a mapped memfd as `/memfd:NAME (deleted)`): one entry per inode for all of them, flags 0
 *    (each area has its own fdflags).
 * memfd.img names a memfd as NAME (without `/memfd:`), shared anonymous memory as `/dev/zero`.
 * Objects on huge pages are kept alike, as CRIU 4.2 keeps them: a hugetlb memfd (on the kernel's
 * hugetlbfs mount of its page size, not mnt_id 0) and shared anonymous huge pages (named
 * `/anon_hugepage`), with `hugetlb_flag` saying MFD_HUGETLB and the page size.
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { CrtoolsError, ExitCode, PAGE_SIZE } from '@crtools/common';
import { probeFile } from '@crtools/sys';
import type { FdRecord } from '@crtools/procfs';
import { fown, refuseFd, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import { ownerInside, type DumpedIds } from '../../dump/fown.js';
import type { FileIds } from '../../dump/table.js';
import { FS_MAGIC, MEMFD_PREFIX, MFD, MFD_HUGE_SHIFT, SEAL } from './facts.js';

/** how /proc names shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS), and memfd.img's name for it */
const ANON_SHARED_LINK = '/dev/zero (deleted)';
const ANON_SHARED_NAME = '/dev/zero';

/** A shmem object whose pages the dump still has to write (read through a /proc link to it). */
export interface PendingShmem {
  path: string;
  shmid: bigint;
  nrPages: number;
}

/** `/memfd:NAME (deleted)` → NAME; undefined for any other link text */
export function memfdName(target: string): string | undefined {
  const m = /^\/memfd:([^]*) \(deleted\)$/.exec(target);
  return m ? m[1] : undefined;
}

/** statfs f_type and F_GET_SEALS of the file behind a /proc link, through a descriptor of ours on it. */
function probeLink(link: string): { fsType: number; seals: number } {
  const fd = openSync(link, 'r');
  try {
    const p = probeFile(process.pid, fd);
    return { fsType: p.fsType, seals: p.seals };
  } finally {
    closeSync(fd);
  }
}

export class MemfdFiles implements DumpKind {
  private readonly inodes: Entry[] = [];
  /** inode number → memfd.img inode_id */
  private readonly inodeIds = new Map<bigint, number>();
  /** inode number → the files.img id all mappings of it share */
  private readonly mapIds = new Map<bigint, number>();
  private nextInode = 1;
  /** objects met since the engine last took them (it dumps their pages after each task) */
  readonly pending: PendingShmem[] = [];

  /** tree: the tree's ids (its user namespace's maps give the objects' owners as written) */
  constructor(private readonly ids: FileIds, private readonly tree: () => DumpedIds | undefined = () => undefined) {}

  /**
   * The memfd.img inode id of the shmem or hugetlbfs inode behind `link` (a /proc fd or map_files
   * link of a frozen task), written (with its pages pending) the first time it is met. `name`: as
   * memfd.img keeps it. An object on huge pages (a hugetlb memfd, shared anonymous huge pages)
   * gets `hugetlb_flag` MFD_HUGETLB with its page size's bits, as CRIU 4.2 records it.
   */
  private inode(link: string, name: string, refuse: (why: string) => Error): number {
    const st = statSync(link);
    const ino = BigInt(st.ino);
    const have = this.inodeIds.get(ino);
    if (have !== undefined) return have;
    let seals: number = SEAL.SEAL;
    let hugetlb: number | undefined;
    if (name !== ANON_SHARED_NAME) {
      const p = probeLink(link);
      // hugetlbfs gives its page size as the block size
      if (p.fsType === FS_MAGIC.HUGETLBFS) hugetlb = MFD.HUGETLB | (Math.log2(st.blksize) << MFD_HUGE_SHIFT);
      seals = p.seals < 0 ? SEAL.SEAL : p.seals;
    }
    // shared anonymous memory is born sealed with F_SEAL_SEAL only (the kernel's default)
    const inodeId = this.nextInode++;
    this.inodes.push({
      name, ...ownerInside(this.tree(), st.uid, st.gid, refuse), size: BigInt(st.size), shmid: Number(ino), seals, inode_id: BigInt(inodeId), mode: st.mode,
      ...(hugetlb !== undefined ? { hugetlb_flag: hugetlb } : {}),
    });
    // an empty object has no pages image (CRIU writes none either)
    if (st.size > 0) this.pending.push({ path: link, shmid: ino, nrPages: Math.ceil(st.size / PAGE_SIZE) });
    this.inodeIds.set(ino, inodeId);
    return inodeId;
  }

  /**
   * A descriptor on a memfd, or on shared anonymous memory (opened through a mapping's
   * /proc/PID/map_files link: `/dev/zero (deleted)` on the kernel's internal shmem mount, mnt_id
   * 0, named `/dev/zero` in memfd.img as CRIU 4.2 names it): one MEMFD entry per open file
   * description.
   */
  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const name = rec.target === ANON_SHARED_LINK && rec.mntId === 0 ? ANON_SHARED_NAME : memfdName(rec.target);
    if (name === undefined) return undefined;
    // a shmem memfd lives on no mount of any namespace (mnt_id 0); a hugetlb one on the kernel's
    // internal hugetlbfs mount of its page size (an unlinked file of such a name on a mounted
    // hugetlbfs is taken for one too)
    if (rec.mntId !== 0) {
      let fsType = 0;
      try {
        fsType = probeFile(pid, rec.fd).fsType;
      } catch {
        return undefined;
      }
      if (fsType !== FS_MAGIC.HUGETLBFS) return undefined;
    }
    const link = `/proc/${pid}/fd/${rec.fd}`;
    return {
      type: 'MEMFD',
      key: `memfd:${rec.ino}:${flags}:${rec.pos}`,
      entry: (id) => {
        const inodeId = this.inode(link, name, (why) => refuseFd(pid, rec.fd, why, rec.target));
        return { type: 'MEMFD', id, memfd: { id, flags, pos: rec.pos, fown: fown(), inode_id: inodeId } };
      },
    };
  }

  /**
   * The file id of a mapping [start, end) of task pid on shmem inode `ino`: shared anonymous
   * memory (`name` /dev/zero) or a memfd (`/memfd:NAME`). One id per inode.
   */
  mapping(pid: number, start: bigint, end: bigint, name: string, ino: bigint): number {
    const have = this.mapIds.get(ino);
    if (have !== undefined) return have;
    const link = `/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`;
    const stored = name.startsWith(MEMFD_PREFIX) ? name.slice(MEMFD_PREFIX.length) : name;
    const inodeId = this.inode(link, stored, (why) => new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} mapping ${start.toString(16)}-${end.toString(16)} (${name}): ${why}`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED }));
    const id = this.ids.add((fid) => ({ type: 'MEMFD', id: fid, memfd: { id: fid, flags: 0, pos: 0n, fown: fown(), inode_id: inodeId } }));
    this.mapIds.set(ino, id);
    return id;
  }

  images(): DumpImage[] {
    return [{ file: 'memfd.img', magic: 'MEMFD_INODE', entries: this.inodes }];
  }
}
