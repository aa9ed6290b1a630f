/**
 * The files of one dump: every descriptor of every task goes through here, is recognised by
 * one of the kinds (src/kinds/<kind>/dump.ts), and gets a files.img id shared with every other
 * descriptor on the same open file (found with kcmp). What the table holds at the end is the
 * content of files.img and of the images the kinds add (pipes-data, sk-queues, memfd, ghosts...).
 */
import { KCMP_FILE, probeFile, sameKernelObject } from '@crtools/sys';
import type { FdRecord } from '@crtools/procfs';
import { refuseFd, unsupported, type DumpImage, type DumpKind, type Entry } from './kind.js';
import { RegFiles } from '../kinds/reg/dump.js';
import { PipeFiles } from '../kinds/pipe/dump.js';
import { eventfdDump } from '../kinds/eventfd/dump.js';
import { signalfdDump } from '../kinds/signalfd/dump.js';
import { timerfdDump } from '../kinds/timerfd/dump.js';
import { epollDump } from '../kinds/epoll/dump.js';
import { inotifyDump } from '../kinds/inotify/dump.js';
import { UnixSockets } from '../kinds/unix/dump.js';
import { inetDump } from '../kinds/inet/dump.js';
import { MemfdFiles, type PendingShmem } from '../kinds/memfd/dump.js';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;

/** How kinds that make files outside descriptors (mappings, cwd) get ids and entries. */
export interface FileIds {
  /** a new id; `make` gives the files.img entry that goes with it */
  add(make: (id: number) => Entry): number;
}

const O_ASYNC = 0o20000;

/**
 * What an open file description carries that files.img's fown_entry would keep but this dump
 * does not yet (the restore cannot give it back): an owner for SIGIO/SIGURG (F_SETOWN), a
 * signal other than SIGIO (F_SETSIG), signal-driven I/O (O_ASYNC). Refused by name.
 */
function refuseOwner(pid: number, rec: FdRecord, flags: number): void {
  if (flags & O_ASYNC) throw refuseFd(pid, rec.fd, 'signal-driven I/O (O_ASYNC) is not supported yet', rec.target);
  let p;
  try {
    p = probeFile(pid, rec.fd);
  } catch {
    return; // closed meanwhile: the kind's own reading says so
  }
  if (p.ownerPid !== 0) throw refuseFd(pid, rec.fd, `an owner for I/O signals (F_SETOWN ${p.ownerType === 2 ? 'process group ' : ''}${p.ownerPid}) is not supported yet`, rec.target);
  if (p.sig > 0) throw refuseFd(pid, rec.fd, `an I/O signal (F_SETSIG ${p.sig}) is not supported yet`, rec.target);
}

export class FileTable implements FileIds {
  private nextId = 1;
  /** files.img entries, in the order ids were given */
  readonly files: Entry[] = [];
  /** open files already given an id: key → [(pid, fd, id)] checked with kcmp */
  private readonly fdKeys = new Map<string, { pid: number; fd: number; id: number }[]>();

  private readonly reg: RegFiles;
  private readonly shmem = new MemfdFiles(this);
  /** the kinds, in the order they are asked (sockets: unix first, inet takes or refuses the rest) */
  private readonly kinds: DumpKind[];

  /** ghostLimit: the largest unlinked file kept whole, in bytes (CRIU's --ghost-limit; its default otherwise) */
  constructor(opts: { ghostLimit?: number } = {}) {
    this.reg = new RegFiles(this, opts.ghostLimit);
    this.kinds = [new PipeFiles(), eventfdDump, signalfdDump, timerfdDump, epollDump, inotifyDump, new UnixSockets(), inetDump, this.shmem, this.reg];
  }

  add(make: (id: number) => Entry): number {
    const id = this.nextId++;
    this.files.push(make(id));
    return id;
  }

  /**
   * One descriptor of task pid: its FdinfoEntry (the file gets an id, shared with every
   * other descriptor on the same open file description). Unsupported kinds throw, naming it.
   */
  fd(pid: number, rec: FdRecord): Entry {
    const flags = rec.flags & ~O_CLOEXEC;
    const cloexec = rec.flags & O_CLOEXEC ? FD_CLOEXEC : 0;
    let claim;
    for (const k of this.kinds) if ((claim = k.claim?.(pid, rec, flags))) break;
    if (!claim) throw unsupported(pid, rec.fd, rec.target);
    const { type, key } = claim;
    refuseOwner(pid, rec, flags);
    const cands = this.fdKeys.get(key) ?? [];
    for (const c of cands) {
      let same = false;
      try {
        same = sameKernelObject(c.pid, pid, KCMP_FILE, c.fd, rec.fd);
      } catch {
        same = false;
      }
      if (same) return { id: c.id, flags: cloexec, type, fd: rec.fd };
    }
    const id = this.add((fid) => claim.entry(fid, flags));
    cands.push({ pid, fd: rec.fd, id });
    this.fdKeys.set(key, cands);
    return { id, flags: cloexec, type, fd: rec.fd };
  }

  /** The file id of a mapped file or exe; see RegFiles.mappedFile. */
  mappedFile(path: string, dev: string, ino: bigint, fdflags: number, pid: number, deletedVia?: string): number {
    return this.reg.mappedFile(path, dev, ino, fdflags, pid, deletedVia);
  }

  /** A new entry for the task's cwd or root. */
  dirEntry(pid: number, which: 'cwd' | 'root'): number {
    return this.reg.dirEntry(pid, which);
  }

  /**
   * The file id of a mapping of a shmem inode (shared anonymous memory, a memfd); its pages are
   * then pending (takePendingShmem).
   */
  shmemMapping(pid: number, start: bigint, end: bigint, name: string, ino: bigint): number {
    return this.shmem.mapping(pid, start, end, name, ino);
  }

  /** Shared memory objects met since the last call, whose pages are still to be dumped. */
  takePendingShmem(): PendingShmem[] {
    return this.shmem.pending.splice(0);
  }

  /** Checks once every task is in (a unix socket's peer must be dumped too). */
  finish(): void {
    for (const k of this.kinds) k.finish?.();
  }

  /** files.img, then every non-empty image the kinds add. */
  images(): DumpImage[] {
    const extra = this.kinds.flatMap((k) => k.images?.() ?? []).filter((i) => i.entries.length);
    return [{ file: 'files.img', magic: 'FILES', entries: this.files }, ...extra];
  }
}
