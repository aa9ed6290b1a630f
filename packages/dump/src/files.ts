import { closeSync, openSync, readFileSync, readlinkSync, statSync, type Stats, constants as fsc } from 'node:fs';
import { CrtoolsError, ExitCode, isCrtoolsError } from '@crtools/common';
import { fileHandlePath, KCMP_FILE, listenBacklog, peekPipe, sameKernelObject, socketInfo, socketQueue, unixSockets, type SocketInfo, type UnixSocketDiag } from '@crtools/sys';
import { AF, decodeDev, encodeKdev, IPPROTO, SOCK_TYPE, TCP_STATE } from '@crtools/images/facts';
import type { FdRecord } from '@crtools/procfs';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;

export type Entry = Record<string, unknown>;

const FOWN = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };

/** Which file ids / pipe data a dump collected: the content of files.img, pipes-data.img, fdinfo-N.img. */
export class FileTable {
  private nextId = 1;
  readonly files: Entry[] = [];
  readonly pipesData: Entry[] = [];
  private readonly seenPipes = new Set<number>();
  /** mapped files and exe: one id per (dev, ino, open flags) */
  private readonly mapped = new Map<string, number>();
  /** open file descriptions already given an id: key → [(pid, fd, id)] checked with kcmp */
  private readonly fdKeys = new Map<string, { pid: number; fd: number; id: number }[]>();

  /** sk-queues.img entries: what sat in each socket's receive queue (one per message). */
  readonly skQueues: Entry[] = [];
  /** AF_UNIX sockets of this network namespace (sock_diag), read when the first one is met. */
  private unixTable: Map<number, UnixSocketDiag> | undefined;
  private get unixByIno(): Map<number, UnixSocketDiag> {
    return (this.unixTable ??= new Map(unixSockets().map((u) => [u.ino, u])));
  }
  /** dumped unix sockets: inode → peer inode (each peer must be dumped too) */
  private readonly unixPeers = new Map<number, { peer: number; what: string }>();

  private alloc(): number {
    return this.nextId++;
  }

  /** A regular-file entry for a path (mapped files, exe, cwd, root). */
  private regEntry(id: number, path: string, flags: number, pos: bigint, st?: ReturnType<typeof statSync>): Entry {
    const s = st ?? statSync(path, { bigint: false });
    const reg: Entry = { id, flags, pos, fown: { ...FOWN }, name: path, mode: s.mode };
    if (s.isFile()) reg['size'] = BigInt(s.size);
    return { type: 'REG', id, reg };
  }

  /**
   * The file id of a mapped file (also used for the exe link): same file, same flags → same id.
   * `deletedVia`: the file was unlinked; its contents are read through that /proc link and kept
   * as a ghost file.
   */
  mappedFile(path: string, dev: string, ino: bigint, fdflags: number, pid: number, deletedVia?: string): number {
    const key = `${dev}:${ino}:${fdflags}`;
    const have = this.mapped.get(key);
    if (have !== undefined) return have;
    const id = this.alloc();
    let st;
    if (deletedVia) st = statSync(deletedVia);
    else {
      try {
        st = statSync(`/proc/${pid}/root${path}`);
      } catch {
        st = statSync(path);
      }
    }
    this.files.push(this.regEntry(id, path, fdflags, 0n, st));
    if (deletedVia) this.ghost(id, deletedVia, st, `task ${pid}: mapped ${path}`);
    this.mapped.set(key, id);
    return id;
  }

  /** ghost-file-<id>.img contents: unlinked files still open or mapped, kept whole. */
  readonly ghosts: { id: number; entry: Entry; data: Buffer }[] = [];
  /** remap-fpath.img: which files.img entry is backed by which ghost file. */
  readonly remaps: Entry[] = [];
  private readonly ghostByInode = new Map<string, number>();

  /** File `origId` was unlinked: keep its contents (read through `source`) as a ghost file. */
  private ghost(origId: number, source: string, st: Stats, what: string): void {
    const key = `${st.dev}:${st.ino}`;
    let gid = this.ghostByInode.get(key);
    if (gid === undefined) {
      if (!st.isFile()) throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: an unlinked ${st.isDirectory() ? 'directory' : 'special file'} is not supported`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
      if (st.size > GHOST_LIMIT) {
        throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: the unlinked file holds ${st.size} bytes, more than the ${GHOST_LIMIT} kept for ghost files`, { context: {}, exitCode: ExitCode.UNSUPPORTED });
      }
      gid = this.ghosts.length + 1;
      const tv = (ms: number) => ({ tv_sec: BigInt(Math.floor(ms / 1000)), tv_usec: BigInt(Math.floor((ms % 1000) * 1000)) });
      this.ghosts.push({
        id: gid,
        entry: { uid: st.uid, gid: st.gid, mode: st.mode, dev: Number(kdevOf(st.dev)), ino: BigInt(st.ino), atim: tv(st.atimeMs), mtim: tv(st.mtimeMs) },
        data: readFileSync(source),
      });
      this.ghostByInode.set(key, gid);
    }
    this.remaps.push({ orig_id: origId, remap_id: gid, remap_type: 'GHOST' });
  }

  /** memfd.img entries (one per shmem inode mapped through the memfd path). */
  readonly memfdInodes: Entry[] = [];
  /** shmem objects whose pages still have to be dumped (taken by the dump after each task). */
  readonly pendingShmem: { path: string; shmid: bigint; nrPages: number }[] = [];
  private nextMemfdInode = 1;

  /**
   * The file id of a shared anonymous mapping (MAP_SHARED|MAP_ANONYMOUS, maps shows `/dev/zero
   * (deleted)` on the shmem device): CRIU 4.2 dumps it the memfd way, as a MEMFD file in files.img
   * whose inode (memfd.img) names the shmem object by its inode number; the object's pages go into
   * pagemap-shmem-<ino>.img. One id per inode, shared by every task mapping it.
   */
  anonShmemMapping(pid: number, start: bigint, end: bigint, name: string, ino: bigint): number {
    const key = `shmem:${ino}`;
    const have = this.mapped.get(key);
    if (have !== undefined) return have;
    const link = `/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`;
    const st = statSync(link);
    const id = this.alloc();
    const inodeId = this.nextMemfdInode++;
    this.files.push({ type: 'MEMFD', id, memfd: { id, flags: 0, pos: 0n, fown: { ...FOWN }, inode_id: inodeId } });
    this.memfdInodes.push({
      name, uid: st.uid, gid: st.gid, size: BigInt(st.size), shmid: Number(ino),
      // a shmem file made for MAP_SHARED|MAP_ANONYMOUS is born sealed with F_SEAL_SEAL only
      seals: 1, inode_id: BigInt(inodeId), mode: st.mode,
    });
    this.pendingShmem.push({ path: link, shmid: ino, nrPages: Math.ceil(st.size / 4096) });
    this.mapped.set(key, id);
    return id;
  }

  private isUnix(t: string): boolean {
    return this.unixByIno.has(Number(/\d+/.exec(t)![0]));
  }

  /**
   * The sock_diag record of an AF_UNIX socket this dump can take: a connected pair member
   * (socketpair, stream/dgram/seqpacket, unnamed), a named socket listening with no connection
   * waiting, a named unconnected datagram socket. Anything else is refused, named precisely.
   */
  private unixSocket(pid: number, rec: FdRecord, t: string): UnixSocketDiag {
    const ino = Number(/\d+/.exec(t)![0]);
    const u = this.unixByIno.get(ino);
    if (!u) throw unsupported(pid, rec.fd, t);
    const named = u.name !== null ? ` bound to ${JSON.stringify(u.name.toString('latin1').replace(/\0/g, '@'))}` : '';
    // taken: socketpair ends; a named socket listening with nobody waiting; a named, unconnected datagram socket
    const why =
      !UNIX_TYPES.includes(u.type) ? `unix socket of type ${u.type}`
      : u.state === TCP_STATE.LISTEN ? (!named ? 'unnamed listening unix socket' : (u.rqueue ?? 0) > 0 ? `listening unix socket${named} with connections not yet accepted` : undefined)
      : u.state === TCP_STATE.CLOSE && u.type === SOCK_TYPE.DGRAM && named && !u.peer ? undefined
      : named ? `connected unix socket${named}`
      : u.state !== TCP_STATE.ESTABLISHED || !u.peer ? 'unconnected unix socket'
      : this.unixByIno.get(u.peer)?.name ? 'unix socket connected to a named one'
      : undefined;
    if (why) {
      throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd}: ${t} (${why}) is not supported yet`, {
        context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
    return u;
  }

  private unixEntry(id: number, flags: number, pid: number, rec: FdRecord, u: UnixSocketDiag): Entry {
    // a listening socket has no data queue (its queue holds connections: none, checked above)
    const q = u.state === TCP_STATE.LISTEN ? { ...socketInfo(pid, rec.fd), packets: [] as Buffer[], rights: false } : socketQueue(pid, rec.fd);
    if (q.rights) {
      throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd}: descriptors in flight in a unix socket's queue are not supported`, {
        context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
    if (!u.peer && q.packets.length) {
      throw new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${rec.fd}: messages queued on an unconnected unix socket are not supported yet`, {
        context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
      });
    }
    for (const data of q.packets) this.skQueues.push({ id_for: id, length: data.length, extra: data });
    if (u.peer) this.unixPeers.set(u.ino, { peer: u.peer, what: `task ${pid} fd ${rec.fd}` });
    const usk: Entry = {
      id, ino: u.ino, type: u.type, state: u.state, flags, uflags: 0, backlog: u.state === TCP_STATE.LISTEN ? (u.wqueue ?? 0) : 0, peer: u.peer, fown: { ...FOWN },
      opts: { so_sndbuf: q.sndbuf, so_rcvbuf: q.rcvbuf, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: 0n, so_rcv_tmo_usec: 0n },
      name: u.name ?? Buffer.alloc(0),
    };
    if (u.shutdown) usk['shutdown'] = ['NONE', 'READ', 'WRITE', 'BOTH'][u.shutdown & 3];
    return { type: 'UNIXSK', id, usk };
  }

  /** Every dumped unix socket's peer must be in the dump too (a pair half outside is not restorable). */
  checkUnixPeers(): void {
    for (const [ino, { peer, what }] of this.unixPeers) {
      if (!this.unixPeers.has(peer)) {
        throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: socket:[${ino}] is connected to socket:[${peer}] outside the dumped tree, which is not supported`, {
          context: {}, exitCode: ExitCode.UNSUPPORTED,
        });
      }
    }
  }

  /** cwd and root are a new entry each (as CRIU writes them). */
  dirEntry(pid: number, which: 'cwd' | 'root'): number {
    const path = readlinkSync(`/proc/${pid}/${which}`);
    const id = this.alloc();
    this.files.push(this.regEntry(id, path, 0, 0n, statSync(`/proc/${pid}/${which}`)));
    return id;
  }

  /**
   * One descriptor of task pid: its FdinfoEntry (the file gets an id, shared with every
   * other descriptor on the same open file description). Unsupported kinds throw, naming it.
   */
  fd(pid: number, rec: FdRecord): Entry {
    const flags = rec.flags & ~O_CLOEXEC;
    const cloexec = rec.flags & O_CLOEXEC ? FD_CLOEXEC : 0;
    const t = rec.target;
    let type: string;
    let key: string;
    const pipe = /^pipe:\[(\d+)\]$/.exec(t);
    const anon = ANON_KINDS[t];
    const isSock = /^socket:\[(\d+)\]$/.test(t);
    const sock = isSock && this.isUnix(t) ? this.unixSocket(pid, rec, t) : undefined;
    const inet = isSock && !sock ? inetSocket(pid, rec, t) : undefined;
    if (pipe) {
      type = 'PIPE';
      key = `pipe:${pipe[1]}:${flags}`;
    } else if (anon) {
      type = anon;
      key = `${t}:${flags}`;
    } else if (sock) {
      type = 'UNIXSK';
      key = t;
    } else if (inet) {
      type = 'INETSK';
      key = t;
    } else if (t.startsWith('/')) {
      type = 'REG';
      key = `reg:${rec.mntId}:${rec.ino}:${flags}:${rec.pos}`;
    } else {
      throw unsupported(pid, rec.fd, t);
    }
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
    const id = this.alloc();
    if (pipe) {
      const pipeId = Number(pipe[1]);
      this.files.push({ type: 'PIPE', id, pipe: { id, pipe_id: pipeId, flags, fown: { ...FOWN } } });
      if (!this.seenPipes.has(pipeId)) {
        this.seenPipes.add(pipeId);
        this.pipesData.push(pipeData(pid, rec.fd, pipeId));
      }
    } else if (anon) {
      this.files.push(anonEntry(anon, id, flags, pid, rec));
    } else if (sock) {
      this.files.push(this.unixEntry(id, flags, pid, rec, sock));
    } else if (inet) {
      this.files.push(inetEntry(id, flags, t, inet));
    } else {
      const st = statSync(`/proc/${pid}/fd/${rec.fd}`);
      if (!(st.isFile() || st.isDirectory() || (st.isCharacterDevice() && isMemDevice(st.rdev)))) throw unsupported(pid, rec.fd, t);
      const deleted = / \(deleted\)$/.test(t);
      const name = deleted ? t.slice(0, -' (deleted)'.length) : t;
      this.files.push(this.regEntry(id, name, flags, rec.pos, st));
      if (deleted) this.ghost(id, `/proc/${pid}/fd/${rec.fd}`, st, `task ${pid} fd ${rec.fd}`);
    }
    cands.push({ pid, fd: rec.fd, id });
    this.fdKeys.set(key, cands);
    return { id, flags: cloexec, type, fd: rec.fd };
  }
}

/** Unlinked files larger than this are refused (CRIU's --ghost-limit is 1 MiB by default). */
const GHOST_LIMIT = 64 << 20;

/** anon_inode files dumped by what fdinfo shows of them (files.img type). */
const ANON_KINDS: Record<string, string> = {
  'anon_inode:[eventfd]': 'EVENTFD',
  'anon_inode:[eventpoll]': 'EVENTPOLL',
  'anon_inode:[signalfd]': 'SIGNALFD',
  'anon_inode:[timerfd]': 'TIMERFD',
  'anon_inode:inotify': 'INOTIFY',
};

/** A kernel file handle as fdinfo prints it (hex bytes) in CRIU's fh_entry: 16 u64s at least. */
function fhEntry(bytes: number | undefined, type: number | undefined, hex: string | undefined) {
  const raw = Buffer.from(hex ?? '', 'hex');
  const words = Math.max(16, Math.ceil(raw.length / 8));
  const padded = Buffer.alloc(words * 8);
  raw.copy(padded);
  return { bytes: bytes ?? raw.length, type: type ?? 0, handle: Array.from({ length: words }, (_, i) => padded.readBigUInt64LE(i * 8)) };
}

/**
 * The files.img entry of an eventfd (its counter), signalfd (its mask), timerfd (clock, time
 * left, interval, expirations not yet read) or epoll (its targets:
 * descriptor numbers in this task, checked to still name the file that was added).
 */
function anonEntry(type: string, id: number, flags: number, pid: number, rec: FdRecord): Entry {
  const what = `task ${pid} fd ${rec.fd} (${rec.target})`;
  const noInfo = (): never => {
    throw new CrtoolsError('DUMP_FDINFO', `${what}: /proc/${pid}/fdinfo/${rec.fd} lacks what it should show`, { context: { pid, fd: rec.fd }, exitCode: ExitCode.FAILED });
  };
  switch (type) {
    case 'EVENTFD':
      if (!rec.eventfd) noInfo();
      return { type, id, efd: { id, flags, fown: { ...FOWN }, counter: rec.eventfd!.count } };
    case 'INOTIFY': {
      // each watch by its kernel file handle, as CRIU writes it, and the file's path when the
      // handle opens now (CRIU's restore takes the path, else looks the handle up by its mounts)
      const wd = (rec.inotify?.watches ?? []).map((w) => {
        if (w.fhandle === undefined) noInfo();
        const f_handle: Record<string, unknown> = fhEntry(w.fhandleBytes, w.fhandleType, w.fhandle);
        try {
          f_handle.path = fileHandlePath({ sdev: w.sdev, type: w.fhandleType ?? 0, handle: Buffer.from(w.fhandle!, 'hex') }, what);
        } catch (e) {
          // an unlinked file: the handle alone (anything else, such as a missing addon, is an error)
          if (!isCrtoolsError(e) || e.code !== 'FILE_HANDLE') throw e;
        }
        return { id, i_ino: w.ino, mask: w.mask, ignored_mask: w.ignoredMask, s_dev: w.sdev, wd: w.wd, f_handle };
      });
      return { type, id, ify: { id, flags, fown: { ...FOWN }, wd } };
    }
    case 'SIGNALFD':
      if (!rec.signalfd) noInfo();
      return { type, id, sgfd: { id, flags, fown: { ...FOWN }, sigmask: rec.signalfd!.sigmask } };
    case 'TIMERFD': {
      const t = rec.timerfd ?? noInfo();
      // it_value is the time left until the next expiry (relative, whatever settime flags said)
      return {
        type, id,
        tfd: {
          id, flags, fown: { ...FOWN }, clockid: t.clockid, ticks: t.ticks, settime_flags: t.settimeFlags,
          vsec: t.value.sec, vnsec: t.value.nsec, isec: t.interval.sec, insec: t.interval.nsec,
        },
      };
    }
    default: {
      const tfd = (rec.epoll?.tfds ?? []).map((t) => {
        let st;
        try {
          st = statSync(`/proc/${pid}/fd/${t.tfd}`, { bigint: true });
        } catch {
          st = undefined;
        }
        if (!st || st.ino !== t.ino) {
          throw new CrtoolsError('UNSUPPORTED_FILE', `${what}: watches a file no longer open at fd ${t.tfd} (a closed epoll target is not supported)`, {
            context: { pid, fd: rec.fd }, exitCode: ExitCode.UNSUPPORTED,
          });
        }
        return { id, tfd: t.tfd, events: t.events, data: t.data, dev: t.sdev, inode: t.ino, pos: t.pos };
      });
      return { type, id, epfd: { id, flags, fown: { ...FOWN }, tfd } };
    }
  }
}

const AF_INET = AF.INET;
const AF_INET6 = AF.INET6;
/** the unix socket types dumped: stream, datagram, seqpacket */
const UNIX_TYPES: number[] = [SOCK_TYPE.STREAM, SOCK_TYPE.DGRAM, SOCK_TYPE.SEQPACKET];

/**
 * An IPv4/IPv6 socket this dump can take: a listening TCP socket, or a TCP/UDP socket that is not
 * connected (bound or not). Connected ones (TCP streams need TCP_REPAIR) are refused by name.
 */
function inetSocket(pid: number, rec: FdRecord, t: string): SocketInfo {
  let s: SocketInfo;
  try {
    s = socketInfo(pid, rec.fd);
  } catch {
    throw unsupported(pid, rec.fd, t);
  }
  const tcp = s.type === SOCK_TYPE.STREAM && s.protocol === IPPROTO.TCP;
  const udp = s.type === SOCK_TYPE.DGRAM && s.protocol === IPPROTO.UDP;
  if ((s.domain !== AF_INET && s.domain !== AF_INET6) || !(tcp || udp) || s.peer !== null || !s.local) throw unsupported(pid, rec.fd, t);
  return s;
}

/** A sockaddr_in/in6's port and address as CRIU keeps them (address as raw 32-bit words). */
function sockaddrParts(sa: Buffer): { port: number; addr: number[] } {
  const port = sa.readUInt16BE(2);
  if (sa.readUInt16LE(0) === AF_INET) return { port, addr: [sa.readUInt32LE(4)] };
  return { port, addr: [0, 1, 2, 3].map((i) => sa.readUInt32LE(8 + 4 * i)) };
}

function inetEntry(id: number, flags: number, t: string, s: SocketInfo): Entry {
  const ino = Number(/\d+/.exec(t)![0]);
  const { port, addr } = sockaddrParts(s.local!);
  const isk: Entry = {
    id, ino, family: s.domain, type: s.type, proto: s.protocol, state: s.listening ? 10 : 7,
    src_port: port, dst_port: 0, flags, backlog: s.listening ? listenBacklog(s.domain, ino) : 0,
    src_addr: addr, dst_addr: s.domain === AF_INET ? [0] : [0, 0, 0, 0], fown: { ...FOWN },
    opts: {
      so_sndbuf: s.sndbuf, so_rcvbuf: s.rcvbuf, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: 0n, so_rcv_tmo_usec: 0n,
      reuseaddr: s.reuseaddr, so_reuseport: s.reuseport,
    },
  };
  if (s.domain === AF_INET6) isk['v6only'] = s.v6only;
  return { type: 'INETSK', id, isk };
}

/** /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom: char major 1. */
function isMemDevice(rdev: number): boolean {
  return decodeDev(rdev).major === 1;
}

function pipeData(pid: number, fd: number, pipeId: number): Entry {
  // a new read-side description of the same pipe: tee copies its bytes without consuming them
  const ours = openSync(`/proc/${pid}/fd/${fd}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
  try {
    const { size, data } = peekPipe(ours);
    return { pipe_id: pipeId, bytes: data.length, size, extra: data };
  } finally {
    closeSync(ours);
  }
}

/** Name an unsupported descriptor as precisely as /proc allows. */
export function unsupported(pid: number, fd: number, target: string): CrtoolsError {
  let what = target;
  const sock = /^socket:\[(\d+)\]$/.exec(target);
  if (sock) what = `${target} (${socketKind(pid, sock[1]!)})`;
  return new CrtoolsError('UNSUPPORTED_FILE', `task ${pid} fd ${fd}: ${what} is not supported`, {
    context: { pid, fd },
    exitCode: ExitCode.UNSUPPORTED,
  });
}

function socketKind(pid: number, ino: string): string {
  const tables: [string, string][] = [
    ['tcp', 'TCP'], ['tcp6', 'TCP6'], ['udp', 'UDP'], ['udp6', 'UDP6'], ['unix', 'UNIX'], ['raw', 'RAW'], ['netlink', 'NETLINK'], ['packet', 'PACKET'],
  ];
  for (const [file, name] of tables) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const col = file === 'unix' ? 6 : file === 'netlink' ? 9 : file === 'packet' ? 8 : 9;
      if (f[col] === ino) return name;
    }
  }
  return 'unknown socket';
}

/** ghost_file_entry.dev holds the kernel's device encoding (CRIU marks the field `dev`), stat(2) gives glibc's. */
function kdevOf(dev: number): bigint {
  const d = decodeDev(dev);
  return encodeKdev(d.major, d.minor);
}
