/**
 * Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS; maps shows `/dev/zero (deleted)` on the
 * shmem device): CRIU 4.2 dumps it the memfd way, as a MEMFD file in files.img whose inode
 * (memfd.img) names the shmem object by its inode number; the object's pages go into
 * pagemap-shmem-<ino>.img. One id per inode, shared by every task mapping it.
 */
import { statSync } from 'node:fs';
import { PAGE_SIZE } from '@crtools/common';
import { fown, type DumpImage, type DumpKind, type Entry } from '../../dump/kind.js';
import type { FileIds } from '../../dump/table.js';

/** A shmem object whose pages the dump still has to write (read through the map_files link). */
export interface PendingShmem {
  path: string;
  shmid: bigint;
  nrPages: number;
}

export class SharedMemory implements DumpKind {
  private readonly inodes: Entry[] = [];
  private readonly byIno = new Map<bigint, number>();
  private nextInode = 1;
  /** objects met since the engine last took them (it dumps their pages after each task) */
  readonly pending: PendingShmem[] = [];

  constructor(private readonly ids: FileIds) {}

  /** The file id of one shared anonymous mapping [start, end) of task pid on shmem inode `ino`. */
  mapping(pid: number, start: bigint, end: bigint, name: string, ino: bigint): number {
    const have = this.byIno.get(ino);
    if (have !== undefined) return have;
    const link = `/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`;
    const st = statSync(link);
    const inodeId = this.nextInode++;
    const id = this.ids.add((fid) => ({ type: 'MEMFD', id: fid, memfd: { id: fid, flags: 0, pos: 0n, fown: fown(), inode_id: inodeId } }));
    this.inodes.push({
      name, uid: st.uid, gid: st.gid, size: BigInt(st.size), shmid: Number(ino),
      // a shmem file made for MAP_SHARED|MAP_ANONYMOUS is born sealed with F_SEAL_SEAL only
      seals: 1, inode_id: BigInt(inodeId), mode: st.mode,
    });
    this.pending.push({ path: link, shmid: ino, nrPages: Math.ceil(st.size / PAGE_SIZE) });
    this.byIno.set(ino, id);
    return id;
  }

  images(): DumpImage[] {
    return [{ file: 'memfd.img', magic: 'MEMFD_INODE', entries: this.inodes }];
  }
}
