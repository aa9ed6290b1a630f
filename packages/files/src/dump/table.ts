/**
 * The files of one dump: every descriptor of every task goes through here, is recognised by
 * one of the kinds (src/kinds/<kind>/dump.ts), and gets a files.img id shared with every other
 * descriptor on the same open file (found with kcmp). What the table holds at the end is the
 * content of files.img and of the images the kinds add (pipes-data, sk-queues, memfd, ghosts...).
 */
import { CrtoolsError, ExitCode, Refusals } from '@crtools/common';
import { KCMP_FILE, KernelObjects } from '@crtools/sys';
import { readFdinfo, readFdLink, type FdRecord } from '@crtools/procfs';
import { readFown, hasFown, type DumpedIds } from './fown.js';
import { refuseFd, unsupported, type DumpImage, type DumpKind, type Entry, type NestedNets } from './kind.js';
import { LinkRemaps, RegFiles } from '../kinds/reg/dump.js';
import { PipeFiles } from '../kinds/pipe/dump.js';
import { eventfdDump } from '../kinds/eventfd/dump.js';
import { signalfdDump } from '../kinds/signalfd/dump.js';
import { timerfdDump } from '../kinds/timerfd/dump.js';
import { epollDump } from '../kinds/epoll/dump.js';
import { InotifyFiles, type IrmapLookup, type NestedMountsOf } from '../kinds/inotify/dump.js';
import { fanotifyDump } from '../kinds/fanotify/dump.js';
import { UnixSockets } from '../kinds/unix/dump.js';
import { InetSockets, type InetDumpOptions } from '../kinds/inet/dump.js';
import { netlinkFiles } from '../kinds/netlink/dump.js';
import { PacketFiles } from '../kinds/packet/dump.js';
import { NsFiles, nsTarget, type NsIdOf } from '../kinds/nsfs/dump.js';
import { PidfdFiles } from '../kinds/pidfd/dump.js';
import { FifoFiles } from '../kinds/fifo/dump.js';
import { TunFiles, type TunLinks } from '../kinds/tun/dump.js';
import { TtyFiles } from '../kinds/tty/dump.js';
import type { TtyQueueHold } from '../kinds/tty/queues.js';
import { MemfdFiles, type PendingShmem } from '../kinds/memfd/dump.js';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;

/** How kinds that make files outside descriptors (mappings, cwd) get ids and entries. */
export interface FileIds {
  /** a new id; `make` gives the files.img entry that goes with it (placed before the first of the entries `before`, when given) */
  add(make: (id: number) => Entry, before?: readonly number[]): number;
}

/**
 * The files.img entry with the open file's fown_entry in its kind record (the one field of the
 * entry that carries a `fown`, zeros as the kind left it). O_ASYNC stays in the record's flags.
 */
function withFown(e: Entry, owner: Entry, none: () => Error): Entry {
  const rec = Object.values(e).find((v): v is Entry => !!v && typeof v === 'object' && 'fown' in (v as object));
  if (rec) rec.fown = owner;
  else if (hasFown(owner)) throw none();
  return e;
}

export class FileTable implements FileIds {
  private nextId = 1;
  /** files.img entries, in the order ids were given */
  readonly files: Entry[] = [];
  /** open files already given an id: key → [(pid, fd, id)] checked with kcmp */
  private readonly fdKeys = new Map<string, KernelObjects<number>>();

  private readonly reg: RegFiles;
  private readonly tun: TunFiles;
  private readonly shmem = new MemfdFiles(this, () => this.ids);
  /** the kinds, in the order they are asked (sockets: unix first, then IP, netlink and packet ones; a socket none takes is refused) */
  private readonly kinds: DumpKind[];

  /** the ids an I/O signal owner may name (the dumped tree's); without them every owner is refused */
  private readonly ids: DumpedIds | undefined;
  private refusals: Refusals;

  /**
   * ghostLimit: the largest unlinked file kept whole, in bytes (CRIU's --ghost-limit; its default
   * otherwise); tree: the pids, tids and process groups of the dumped tree; refusals: where what
   * cannot be carried goes (thrown at once unless gathered); inet: what the dump was asked of TCP
   * connections; unix: which of the tree's unix sockets may have their peer outside it
   * (--ext-unix-sk, --external unix[INO]); mounts: the mount ids of the tree's own mount
   * namespace, asked when a file is met (undefined: it lives in criu's); readOnlyMounts: those of
   * them that are the tree's own and read-only (the restore makes them anew); nestedMounts: those
   * of the tree's mount namespaces below the root's; nestedMountsOf: their mounts of a filesystem
   * (an inotify watch's file only such a namespace shows); nsId: the id of a
   * namespace some task of the tree lives in (a namespace file's; without it every one is refused);
   * nestedNets: the tree's network namespaces below its root's (sockets made there are looked up
   * there and written with their ns_id); irmap: --force-irmap's lookup of a watched or marked
   * file whose handle does not open (dump/irmap.ts)
   */
  constructor(opts: { ghostLimit?: number; tree?: DumpedIds; refusals?: Refusals; inet?: InetDumpOptions; tty?: { queues?: TtyQueueHold; external?: ReadonlySet<string> }; unix?: { extUnixSk?: boolean; external?: ReadonlySet<number>; serviceSkIno?: number; nestedMnt?: (pid: number) => boolean }; mounts?: () => ReadonlySet<number> | undefined; readOnlyMounts?: () => ReadonlySet<number> | undefined; nestedMounts?: () => ReadonlySet<number> | undefined; nestedMountsOf?: NestedMountsOf; nsId?: NsIdOf; linkRemaps?: LinkRemaps; nestedNets?: NestedNets; irmap?: IrmapLookup } = {}) {
    this.ids = opts.tree;
    this.refusals = opts.refusals ?? new Refusals();
    this.reg = new RegFiles(this, opts.ghostLimit, () => this.ids, opts.mounts, opts.linkRemaps, opts.readOnlyMounts, opts.nestedMounts);
    // (a tun file's REG entry shares its id, as CRIU 4.2 writes it: put in before the TUNF one)
    this.tun = new TunFiles((id, path, flags, st) => this.files.push(this.reg.entry(id, path, flags, 0n, st)), opts.nestedNets, () => opts.nsId);
    this.kinds = [new PipeFiles(), eventfdDump, signalfdDump, timerfdDump, epollDump, new InotifyFiles((sdev, ino) => this.reg.ghostKind(sdev, ino), opts.nestedMountsOf, opts.irmap), fanotifyDump(opts.irmap), new UnixSockets((fd, what) => this.inflight(fd, what), (make, before) => this.add(make, before), { ...opts.unix, ...(opts.nestedNets ? { nestedNets: opts.nestedNets } : {}), ids: () => this.ids }), new InetSockets(opts.inet, opts.nestedNets), netlinkFiles(opts.nestedNets), new PacketFiles(opts.nestedNets), new PidfdFiles(() => this.ids), new NsFiles(() => opts.nsId), this.shmem,
      this.tun, new FifoFiles((path, flags, st, deletedVia, what) => this.reg.pathEntry(path, flags, st, deletedVia, what)), new TtyFiles((path, flags, st) => this.reg.pathEntry(path, flags, st), () => this.ids, opts.tty?.queues, opts.tty?.external), this.reg];
  }

  /** What the tree's /dev/net/tun files said of the devices they are attached to (for their netdev entries). */
  tunLinks(): TunLinks {
    return this.tun.tunLinks();
  }

  add(make: (id: number) => Entry, before: readonly number[] = []): number {
    const id = this.nextId++;
    const at = this.files.findIndex((f) => before.includes(Number(f.id)));
    if (at < 0) this.files.push(make(id));
    else this.files.splice(at, 0, make(id));
    return id;
  }

  /**
   * One descriptor of task pid: its FdinfoEntry (the file gets an id, shared with every
   * other descriptor on the same open file description). What cannot be carried is refused,
   * naming it (gathering refusals, such a descriptor's entry is undefined).
   */
  fd(pid: number, rec: FdRecord): Entry | undefined {
    const flags = rec.flags & ~O_CLOEXEC;
    const cloexec = rec.flags & O_CLOEXEC ? FD_CLOEXEC : 0;
    const claim = this.refusals.check(() => {
      for (const k of this.kinds) {
        const c = k.claim?.(pid, rec, flags);
        if (c) return c;
      }
      throw unsupported(pid, rec.fd, rec.target);
    });
    if (!claim) return undefined;
    const { type, key } = claim;
    const cands = this.fdKeys.get(key) ?? new KernelObjects<number>(KCMP_FILE);
    let known: number | undefined;
    try {
      known = cands.find(pid, rec.fd);
    } catch {
      known = undefined; // (a task gone: its file is none of ours)
    }
    if (known !== undefined) return { id: known, flags: cloexec, type, fd: rec.fd };
    const made = this.refusals.check(() => {
      const owner = readFown(pid, rec, flags, this.ids);
      return (fid: number) => withFown(claim.entry(fid, flags), owner, () => refuseFd(pid, rec.fd, 'its kind has no place for an I/O signal owner', rec.target));
    });
    const id = made && this.refusals.check(() => this.add(made));
    if (id === undefined) return undefined;
    try {
      cands.findOrAdd(pid, rec.fd, () => id);
      this.fdKeys.set(key, cands);
    } catch {
      /* not found again by a later descriptor: that one gets its own id */
    }
    return { id, flags: cloexec, type, fd: rec.fd };
  }

  /**
   * A descriptor in flight (SCM_RIGHTS in a socket's queue), opened in this process by the peek:
   * its files.img id, the file dumped like a task's (the same open file as a task's descriptor
   * shares its id). Unix sockets in flight and epolls are refused, named by `what`.
   */
  private inflight(fd: number, what: string): number | undefined {
    const self = process.pid;
    const rec: FdRecord = { fd, target: readFdLink(self, fd), ...readFdinfo(self, fd) };
    // (nor a file the restore opens only once every task exists, after the queues are sent)
    const refused = /^socket:/.test(rec.target) ? 'a socket' : rec.target === 'anon_inode:[eventpoll]' ? 'an epoll' : rec.target === 'anon_inode:[pidfd]' || rec.target.startsWith('pidfd:') ? 'a pidfd'
      : nsTarget(rec.target) ? 'a namespace file' : this.reg.openedLate(rec.target) ? 'a /proc file of a task other than the root' : undefined;
    if (refused) {
      this.refusals.check(() => {
        throw new CrtoolsError('UNSUPPORTED_FILE', `${what} is ${refused} (${rec.target}), which is not supported in flight`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
      });
      return undefined;
    }
    // a refusal of the file names the socket whose queue holds it, not this process's descriptor
    const outer = this.refusals;
    const inner = (this.refusals = new Refusals(true));
    let e: Entry | undefined;
    try {
      e = inner.check(() => this.fd(self, rec));
    } finally {
      this.refusals = outer;
    }
    for (const r of inner.found) {
      const why = r.message.replace(/^task \d+ fd \d+( \([^)]*\))?: /, '');
      outer.refuse(new CrtoolsError(r.code, `${what} (${rec.target}): ${why}`, { context: {}, exitCode: r.exitCode }));
    }
    return e === undefined || inner.found.length ? undefined : Number(e.id);
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

  /**
   * The file id of a mapping of a socket (a packet socket's rings), as CRIU 4.2 names it in the
   * area's shmid: the socket must be one of the task's descriptors `fds`, already dumped (its
   * rings were checked then), and a packet socket (no other mapping of a socket is carried).
   */
  socketMapping(pid: number, fds: readonly FdRecord[], start: bigint, ino: bigint): number {
    const target = `socket:[${ino}]`;
    const where = `task ${pid}: mapping ${start.toString(16)} of ${target}`;
    const refuse = (why: string) => new CrtoolsError('UNSUPPORTED_VMA', `${where}: ${why}`, { context: { pid }, exitCode: ExitCode.UNSUPPORTED });
    const rec = fds.find((r) => r.target === target);
    if (!rec) throw refuse('a mapping of a socket the task holds no descriptor of is not supported');
    let id: number | undefined;
    try {
      id = this.fdKeys.get(target)?.find(pid, rec.fd);
    } catch {
      id = undefined; // (the task gone)
    }
    // (a descriptor refused on its own already named why)
    if (id === undefined) throw refuse('its socket was not dumped');
    const type = this.files.find((f) => Number(f.id) === id)?.type;
    if (type !== 'PACKETSK') throw refuse(`a mapping of a socket of type ${String(type)} (only packet rings are) is not supported`);
    return id;
  }

  /** Shared memory objects met since the last call, whose pages are still to be dumped. */
  takePendingShmem(): PendingShmem[] {
    return this.shmem.pending.splice(0);
  }

  /** Checks once every task is in (a unix socket's peer must be dumped too). */
  finish(): void {
    for (const k of this.kinds) this.refusals.check(() => k.finish?.(this.refusals));
  }

  /** files.img, then every non-empty image the kinds add. */
  images(): DumpImage[] {
    const extra = this.kinds.flatMap((k) => k.images?.() ?? []).filter((i) => i.entries.length);
    return [{ file: 'files.img', magic: 'FILES', entries: this.files }, ...extra];
  }
}
