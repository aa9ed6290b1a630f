/**
 * A task's descriptors: what /proc/PID/fd and fdinfo show, and what the open file answers to
 * fcntl, ioctl and getsockopt (through a pidfd_getfd copy: nothing is changed on it). Inode
 * numbers of objects a restore makes anew (pipes, sockets, unlinked files) are replaced by an
 * id given in the order the tree's descriptors are met, so that two fingerprints compare.
 */
import { readFileSync, statSync } from 'node:fs';
import { listFds, readFdLink, readMountinfo, readStat } from '@crtools/procfs';
import { KCMP_FILE, KernelObjects, probeFile, probeTty, SOCKET_OPTIONS, sockoptValue, type FileProbe, type TtyProbe } from '@crtools/sys';

export interface FdPrint {
  /** what /proc/PID/fd/N links to; pipe:[N], socket:[N] and unlinked files as pipe#K, socket#K, deleted#K */
  target: string;
  /** fdinfo lines, "key: value" (inodes of pipes and sockets as their ids; counters of time left out) */
  fdinfo: string[];
  /** fcntl and ioctl answers (a value the kernel refuses for this kind of file: "-ERRNO") */
  fcntl: Record<string, number | string>;
  /** sockets: every option getsockopt answers, by name (a refused one: its negative errno) */
  sockopts?: Record<string, number | string>;
  /** terminals: what the tty ioctls answer (termios as hex bytes; a refused one: its negative errno) */
  tty?: Record<string, number | string>;
  /**
   * the open file description, when an earlier descriptor of the tree (tree order, then fd order)
   * is on the same one (kcmp KCMP_FILE: dup'ed or inherited, not opened again): that one, as
   * "T:FD" with T its task's place in the tree (0 the root; pids may differ, in a pid namespace
   * of the tree's own, where the tree does not)
   */
  file?: string;
}

/** The open file descriptions of a tree, each named by its first descriptor (T:FD). */
export function openFiles(): KernelObjects<string> {
  return new KernelObjects<string>(KCMP_FILE);
}

/** A terminal's state (pty masters answer for their slave: its session and foreground group). */
function ttyOf(p: TtyProbe): Record<string, number | string> {
  const hex = (v: Buffer | number) => (typeof v === 'number' ? v : v.toString('hex'));
  return {
    termios: hex(p.termios), termiosLocked: hex(p.termiosLocked), winsize: hex(p.winsize), TIOCGSID: p.sid, TIOCGPGRP: p.pgrp,
    TIOCGEXCL: p.excl, TIOCGPKT: p.pkt, TIOCGPTLCK: p.lock, TIOCGPTN: p.ptn, TIOCGDEV: p.ttyDev, TIOCINQ: p.inq, TIOCOUTQ: p.outq, owner: `${p.uid}:${p.gid}`,
  };
}

/** /dev/ptmx, /dev/pts/N, /dev/tty, consoles and serial lines */
const TTY_TARGET = /^\/dev\/(ptmx|pts\/\d+|tty\w*|console)$/;

/** Ids for objects whose inode number is this run's only: "pipe:[123]" → "pipe#1". */
export class InodeIds {
  private readonly ids = new Map<string, string>();
  private readonly byIno = new Map<string, string>();

  of(target: string, ino?: string): string {
    // an unlinked file: the restore makes it anew, under a new inode
    if (target.endsWith(' (deleted)') && ino !== undefined) return this.transient(`deleted ${target}`, ino, 'deleted');
    const m = /^(pipe|socket):\[(\d+)\]$/.exec(target);
    if (!m) return target;
    return this.transient(target, m[2]!, m[1]!);
  }

  private transient(target: string, ino: string, kind: string): string {
    const key = `${target}:${ino}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = `${kind}#${this.ids.size + 1}`;
      this.ids.set(key, id);
      this.byIno.set(ino, id);
    }
    return id;
  }

  /** an inode number met in fdinfo: its id when it is one of ours */
  ino(n: string): string {
    return this.byIno.get(n) ?? n;
  }
}

/** fdinfo keys whose value is about time passing or ids the kernel hands out anew */
const RUN_KEYS = new Set(['it_value', 'ticks', 'eventfd-id']);

/** The fdinfo lines as they are to be compared. */
export function fdinfoLines(text: string, ids: InodeIds): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    const key = colon > 0 ? line.slice(0, colon).trim() : line;
    if (RUN_KEYS.has(key)) continue;
    let v = colon > 0 ? line.slice(colon + 1).trim().replace(/\s+/g, ' ') : '';
    if (key === 'ino') v = ids.ino(v);
    // epoll targets (and other lines) name inodes as "ino:N" (hex)
    v = v.replace(/\bino:([0-9a-f]+)\b/g, (_, n: string) => `ino:${ids.ino(String(parseInt(n, 16)))}`);
    out.push(`${key}: ${v}`);
  }
  // the targets of an epoll, the watches of an inotify or fanotify, the locks: a set, which the
  // kernel lists in an order of its own (by address, by age)
  const many = (l: string) => /^(tfd|inotify|fanotify|lock)\b/.test(l);
  return [...out.filter((l) => !many(l)), ...out.filter(many).sort()];
}

function shown(v: number): number | string {
  return v < 0 ? String(v) : v;
}

function fcntlOf(p: FileProbe, target: string): Record<string, number | string> {
  const out: Record<string, number | string> = { F_GETFL: shown(p.fl), F_GETOWN_EX: `${p.ownerType}:${p.ownerPid}`, F_GETSIG: shown(p.sig), F_GETLEASE: shown(p.lease), fstatfs: shown(p.fsType) };
  if (p.pipeSize >= 0) out['F_GETPIPE_SZ'] = p.pipeSize;
  if (p.seals >= 0) out['F_GET_SEALS'] = p.seals;
  if (p.nread >= 0) out['FIONREAD'] = p.nread;
  if (p.outq >= 0) out['SIOCOUTQ'] = p.outq;
  if (target.startsWith('socket')) out['mode'] = p.mode;
  return out;
}

function sockoptsOf(p: FileProbe): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  SOCKET_OPTIONS.forEach((opt, i) => {
    const v = sockoptValue(opt, p.sockopts[i]);
    if (v !== undefined) out[opt.option] = v;
  });
  return out;
}

export interface FdLink {
  target: string;
  /** the inode of what it opens (an unlinked file's among them) */
  ino?: string;
}

/**
 * The descriptors of task pid, the tree's `place`th (their targets already given ids in `ids`,
 * see linksOf); `files` holds the open files of the tree met so far (openFiles).
 */
export function fdsOf(pid: number, links: Map<number, FdLink>, ids: InodeIds, files: KernelObjects<string>, place = 0): Record<string, FdPrint> {
  const out: Record<string, FdPrint> = {};
  // a file's mount by what it is, not by its id: a mount namespace of the tree's own is made anew
  // by a restore, every mount in it with a new id (kernel-internal mounts, pipefs..., keep theirs)
  // (a descriptor inherited from a parent in another mount namespace of the tree's, one it made
  // below: its mount is the parent's, looked up in the ancestors' namespaces)
  let mounts: Map<string, string> | undefined;
  const describe = (p: number) => {
    try {
      return new Map(readMountinfo(p).map((m) => [String(m.mntId), `(the ${m.fsType} mount of ${m.root} at ${m.mountPoint})`]));
    } catch {
      return new Map<string, string>(); // gone meanwhile
    }
  };
  const mountOf = (id: string): string => {
    mounts ??= describe(pid);
    let at = pid;
    for (let up = 0; !mounts.has(id) && up < 8; up++) {
      try {
        at = readStat(at).ppid;
      } catch {
        break;
      }
      if (at <= 1) break;
      for (const [k, v] of describe(at)) if (!mounts.has(k)) mounts.set(k, v);
    }
    return mounts.get(id) ?? id;
  };
  for (const [fd, { target: raw, ino }] of links) {
    const target = ids.of(raw, ino);
    let info = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    let lines = fdinfoLines(info, ids).map((l) => (l.startsWith('mnt_id: ') ? `mnt_id: ${mountOf(l.slice(8))}` : l));
    // a pidfd's inode is its process's own (pidfs): a restored process is a new one to the
    // kernel, so the inode is told by the process it stands for ("Pid:"), not by its number
    if (raw === 'anon_inode:[pidfd]' || raw.startsWith('pidfd:')) {
      const who = lines.find((l) => l.startsWith('Pid: '))?.slice(5) ?? '?';
      lines = lines.map((l) => (l.startsWith('ino: ') ? `ino: (the pidfs inode of process ${who})` : l));
    }
    const print: FdPrint = { target, fdinfo: lines, fcntl: {} };
    try {
      const same = files.findOrAdd(pid, fd, () => `${place}:${fd}`);
      if (same.found) print.file = same.value;
    } catch {
      /* closed meanwhile */
    }
    try {
      const p = probeFile(pid, fd, raw.startsWith('socket:') ? SOCKET_OPTIONS : []);
      print.fcntl = fcntlOf(p, target);
      if (raw.startsWith('socket:')) print.sockopts = sockoptsOf(p);
      if (TTY_TARGET.test(raw)) print.tty = ttyOf(probeTty(pid, fd));
    } catch (e) {
      print.fcntl = { error: (e as NodeJS.ErrnoException).code ?? String(e) };
    }
    out[String(fd)] = print;
  }
  return out;
}

/** The descriptors of task pid and what each links to, fd order. */
export function linksOf(pid: number): Map<number, FdLink> {
  const out = new Map<number, FdLink>();
  let fds: number[];
  try {
    fds = listFds(pid);
  } catch {
    return out; // gone
  }
  for (const fd of fds) {
    try {
      const target = readFdLink(pid, fd);
      let ino: string | undefined;
      try {
        ino = String(statSync(`/proc/${pid}/fd/${fd}`).ino);
      } catch {
        ino = undefined;
      }
      out.set(fd, { target, ino });
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}
