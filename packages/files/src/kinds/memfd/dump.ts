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
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { CrtoolsError, ExitCode, PAGE_SIZE } from '@crtools/common';
import { probeFile } from '@crtools/sys';
import type { FdRecord } from '@crtools/procfs';
import { fown, refuseFd, type DumpImage, type DumpKind, type Entry, type FdClaim } from '../../dump/kind.js';
import type { FileIds } from '../../dump/table.js';
import { FS_MAGIC, MEMFD_PREFIX, SEAL } from './facts.js';

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

  constructor(private readonly ids: FileIds) {}

  /**
   * The memfd.img inode id of the shmem inode behind `link` (a /proc fd or map_files link of a
   * frozen task), written (with its pages pending) the first time it is met. `name`: as
   * memfd.img keeps it. `hugetlb`: the refusal when the memfd is on hugetlbfs (not carried).
   */
  private inode(link: string, name: string, hugetlb: () => Error): number {
    const st = statSync(link);
    const ino = BigInt(st.ino);
    const have = this.inodeIds.get(ino);
    if (have !== undefined) return have;
    let seals: number = SEAL.SEAL;
    if (name !== '/dev/zero') {
      const p = probeLink(link);
      if (p.fsType === FS_MAGIC.HUGETLBFS) throw hugetlb();
      seals = p.seals < 0 ? SEAL.SEAL : p.seals;
    }
    // shared anonymous memory is born sealed with F_SEAL_SEAL only (the kernel's default)
    const inodeId = this.nextInode++;
    this.inodes.push({
      name, uid: st.uid, gid: st.gid, size: BigInt(st.size), shmid: Number(ino), seals, inode_id: BigInt(inodeId), mode: st.mode,
    });
    // an empty object has no pages image (CRIU writes none either)
    if (st.size > 0) this.pending.push({ path: link, shmid: ino, nrPages: Math.ceil(st.size / PAGE_SIZE) });
    this.inodeIds.set(ino, inodeId);
    return inodeId;
  }

  /** A descriptor on a memfd: one MEMFD entry per open file description. */
  claim(pid: number, rec: FdRecord, flags: number): FdClaim | undefined {
    const name = memfdName(rec.target);
    if (name === undefined) return undefined;
    const hugetlb = () => refuseFd(pid, rec.fd, `a hugetlb memfd (memfd:${name}) is not supported`);
    // a shmem memfd lives on no mount of any namespace (mnt_id 0); a hugetlb one on hugetlbfs's
    // own mount, which a file of that name on a real mount is not
    if (rec.mntId !== 0) {
      let fsType = 0;
      try {
        fsType = probeFile(pid, rec.fd).fsType;
      } catch {
        return undefined;
      }
      if (fsType === FS_MAGIC.HUGETLBFS) throw hugetlb();
      return undefined;
    }
    const link = `/proc/${pid}/fd/${rec.fd}`;
    return {
      type: 'MEMFD',
      key: `memfd:${rec.ino}:${flags}:${rec.pos}`,
      entry: (id) => {
        const inodeId = this.inode(link, name, hugetlb);
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
    const inodeId = this.inode(link, stored, () => new CrtoolsError('UNSUPPORTED_VMA', `task ${pid}: mapping ${start.toString(16)}-${end.toString(16)} of a hugetlb memfd (${name}) is not supported`, {
      context: { pid }, exitCode: ExitCode.UNSUPPORTED,
    }));
    const id = this.ids.add((fid) => ({ type: 'MEMFD', id: fid, memfd: { id: fid, flags: 0, pos: 0n, fown: fown(), inode_id: inodeId } }));
    this.mapIds.set(ino, id);
    return id;
  }

  images(): DumpImage[] {
    return [{ file: 'memfd.img', magic: 'MEMFD_INODE', entries: this.inodes }];
  }
}
