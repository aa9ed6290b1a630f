/**
 * The files of a restore plan: each files.img entry a task names (by descriptor, as its exe,
 * cwd or root, behind a mapping) is planned once by its kind (src/kinds/<kind>/plan.ts) and
 * gets one index in the plan's file list, however many descriptors share it.
 */
import { badImage, readImage, refuse, type Obj, type PlanKind } from './kind.js';
import { RegPlans, type FileBase, type FownPlan, type GhostPlan, type RegFilePlan } from '../kinds/reg/plan.js';
import { PipePlans, type PipeFilePlan } from '../kinds/pipe/plan.js';
import { eventfdPlan, type EventfdFilePlan } from '../kinds/eventfd/plan.js';
import { signalfdPlan, type SignalfdFilePlan } from '../kinds/signalfd/plan.js';
import { timerfdPlan, type TimerFilePlan } from '../kinds/timerfd/plan.js';
import { epollPlan, type EpollFilePlan } from '../kinds/epoll/plan.js';
import { InotifyPlans, type InotifyFilePlan } from '../kinds/inotify/plan.js';
import { fanotifyPlan, type FanotifyFilePlan } from '../kinds/fanotify/plan.js';
import { UnixPlans, type UnixBoundFilePlan, type UnixPairFilePlan } from '../kinds/unix/plan.js';
import { InetPlans, type InetFilePlan, type TcpFilePlan } from '../kinds/inet/plan.js';
import { netlinkPlan } from '../kinds/netlink/plan.js';
import { packetPlan } from '../kinds/packet/plan.js';
import type { SocketFilePlan } from '../sockopts/plan.js';
import { MemfdPlans, type MemfdFilePlan } from '../kinds/memfd/plan.js';
import { pidfdPlan, type PidfdFilePlan } from '../kinds/pidfd/plan.js';
import { NsPlans } from '../kinds/nsfs/plan.js';
import { FifoPlans, type FifoFilePlan } from '../kinds/fifo/plan.js';
import { TtyPlans, type TtyFilePlan } from '../kinds/tty/plan.js';
import { TunPlans, type TunFilePlan } from '../kinds/tun/plan.js';

/**
 * inherit: not made again but taken from descriptor `inheritFd` of the restoring process
 * (CRIU's --inherit-fd: an outside pipe end, socket or file the caller hands over).
 */
export interface InheritFilePlan extends FileBase {
  kind: 'inherit';
  inheritFd: number;
  /** a terminal: its settings and owner to set, the session whose controlling terminal it becomes */
  tty?: Pick<TtyFilePlan, 'termios' | 'termiosLocked' | 'winsize' | 'uid' | 'gid' | 'ctty'> & {
    /** its session's leader takes it from the session it is the controlling terminal of (TIOCSCTTY 1): the restore's own */
    steal?: boolean;
  };
  /**
   * a pipe end: the restore opens the pipe again through /proc/self/fd/N with the recorded
   * flags (its own open file, as CRIU's restore does: the caller's keeps its flags, and either
   * end the caller gives serves)
   */
  reopen?: boolean;
  /**
   * --shell-job: /dev/pts/N outside the tree (its master elsewhere), for which the restore's
   * terminal stands; `inheritFd` is a placeholder until the restorer picks that terminal
   */
  shellTerminal?: number;
}

/** A file to make again (or take over), by kind: each kind carries what it needs. */
export type FilePlan =
  | RegFilePlan | PipeFilePlan | EventfdFilePlan | SignalfdFilePlan | EpollFilePlan | TimerFilePlan
  | UnixPairFilePlan | UnixBoundFilePlan | InetFilePlan | TcpFilePlan | SocketFilePlan | InotifyFilePlan | FanotifyFilePlan | MemfdFilePlan | PidfdFilePlan | FifoFilePlan | TtyFilePlan | TunFilePlan | InheritFilePlan;

export interface FilePlanOptions {
  /** --inherit-fd: the name CRIU gives a file (`pipe:[ino]`, `socket:[ino]`, a path without its leading slash) → descriptor */
  inherit?: Map<string, number>;
  /** --shell-job: a pty slave whose master is not in the checkpoint is the restore's terminal (see InheritFilePlan.shellTerminal) */
  shellJob?: boolean;
  /** --ext-unix-sk: a unix socket connected to a named one outside the tree (EXTERN) connects to that name again */
  extUnixSk?: boolean;
  /** mount points the restore mounts anew (the tree's own mount namespace): files below them are not looked for before */
  madeAt?: readonly string[];
  /** --skip-file-rwx-check: a file's rwx bits may differ from the recorded mode */
  skipFileRwxCheck?: boolean;
  /** the mounts of the tree's mount namespaces below the root's: mount id → a task living there (its files are opened through its root) */
  nestedMounts?: ReadonlyMap<number, number>;
}

/** F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP: the pid types F_SETOWN_EX takes */
const PID_TYPES = [0, 1, 2];

/**
 * A kind record's fown_entry (every kind has one, ours or CRIU's) → what the restorer sets on the
 * open file; undefined when it has neither an owner nor a signal.
 */
/** the files.img types of sockets, whose entries say the network namespace they were made in (ns_id) */
const SOCKET_TYPES = new Set(['INETSK', 'UNIXSK', 'PACKETSK', 'NETLINKSK']);

function fownPlan(f: Obj | undefined, what: string): FownPlan | undefined {
  if (!f) return undefined;
  const p: FownPlan = { signum: Number(f.signum ?? 0), pidType: Number(f.pid_type ?? 0), pid: Number(f.pid ?? 0), uid: Number(f.uid ?? 0), euid: Number(f.euid ?? 0) };
  if (p.signum > 64) throw badImage(`${what}: I/O signal ${p.signum} is not a signal`, { image: 'files.img' });
  if (p.pid && !PID_TYPES.includes(p.pidType)) throw badImage(`${what}: I/O signal owner ${p.pid} has pid type ${p.pidType}`, { image: 'files.img' });
  if (!p.pid) Object.assign(p, { pidType: 0, uid: 0, euid: 0 });
  return p.pid || p.signum ? p : undefined;
}

export class FilePlanTable {
  /** the plan's file list */
  readonly files: FilePlan[] = [];
  private readonly byId = new Map<number, number>();
  private readonly reg = new RegPlans();
  private readonly unix = new UnixPlans();
  private readonly tty = new TtyPlans((path) => this.reg.madeLater(path));
  private readonly tun = new TunPlans();
  /** memfd.img: the memfd inodes descriptors and mappings name */
  readonly memfd = new MemfdPlans();
  private readonly kinds = new Map<string, PlanKind>(
    [this.reg, new PipePlans(), eventfdPlan, signalfdPlan, timerfdPlan, epollPlan, new InotifyPlans((dev, ino) => {
      const index = this.reg.ghostByInode(dev, ino);
      return index === undefined ? undefined : { index, ghost: this.reg.ghosts[index]! };
    }, (mntId) => this.reg.nestedMounts.get(mntId)), fanotifyPlan, this.unix, new InetPlans(), netlinkPlan, packetPlan, this.memfd, pidfdPlan, new NsPlans(), new FifoPlans((id) => this.reg.ghostOf.get(id), (path) => this.reg.madeLater(path)), this.tty, this.tun].map((k) => [k.type, k as PlanKind]),
  );

  private constructor(
    /** files.img by id */
    readonly entries: ReadonlyMap<number, Obj>,
    private readonly inherit: Map<string, number>,
  ) {}

  /** Reads files.img and what the kinds keep beside it (pipes-data, sk-queues, remap-fpath, ghost files). */
  static async load(dir: string, opts: FilePlanOptions = {}): Promise<FilePlanTable> {
    // (a REG entry beside another of its id, as CRIU 4.2 writes a tun file's path and flags: its twin)
    const entries = new Map<number, Obj>();
    const twins = new Map<number, Obj>();
    for (const f of (await readImage(dir, 'files.img', 'FILES', true)) ?? []) {
      const id = Number(f.id);
      const had = entries.get(id);
      if (had && f.type === 'REG') twins.set(id, f);
      else {
        if (had?.type === 'REG') twins.set(id, had);
        entries.set(id, f);
      }
    }
    const t = new FilePlanTable(entries, opts.inherit ?? new Map());
    t.tun.twins = twins;
    t.tty.shellJob = !!opts.shellJob;
    t.unix.extUnixSk = !!opts.extUnixSk;
    t.reg.madeAt = opts.madeAt ?? [];
    t.reg.skipRwxCheck = !!opts.skipFileRwxCheck;
    t.reg.nestedMounts = opts.nestedMounts ?? new Map();
    for (const k of t.kinds.values()) await k.load?.(dir, entries);
    return t;
  }

  /** The unlinked files of the checkpoint (made again from ghost-file images). */
  get ghosts(): GhostPlan[] {
    return this.reg.ghosts;
  }

  /** The processes gone whose /proc files the checkpoint holds (remap-fpath.img PROCFS). */
  get deadPids(): number[] {
    return [...this.reg.deadPids];
  }

  /** The ghost index of files.img entry `id`, when that file was unlinked. */
  ghostOf(id: number): number | undefined {
    return this.reg.ghostOf.get(id);
  }

  /** The name --inherit-fd knows a files.img entry by (as CRIU's restore does), if it has one. */
  inheritKey(f: Obj): string | undefined {
    const k = this.kinds.get(String(f.type));
    const rec = k && f[k.field];
    return rec ? k.inheritKey?.(rec) : undefined;
  }

  /** --inherit-fd keys that named no file of the checkpoint */
  unusedInherit(): string[] {
    const used = new Set([...this.entries.values()].map((f) => this.inheritKey(f)));
    return [...this.inherit.keys()].filter((k) => !used.has(k));
  }

  /** The files.img entry with this id. */
  entry(id: number, what: string): Obj {
    const f = this.entries.get(id);
    if (!f) throw badImage(`files.img: no file with id ${id} (${what})`, { image: 'files.img' });
    return f;
  }

  /**
   * Is the file at path missing now? Not for one below a mount the restore makes anew (a mount
   * namespace of the tree's, or everything under --root): it is looked for when it is opened.
   */
  gone(path: string): boolean {
    return this.reg.gone(path);
  }

  /** Is path below a mount the restore makes anew (not there to be looked at before)? */
  madeLater(path: string): boolean {
    return this.reg.madeLater(path);
  }

  /** How a regular file's record (reg-files.img) differs from the file at its path now (size, mode), if it does. */
  changedSince(reg: Obj): string | undefined {
    return this.reg.changedSince(reg);
  }

  /** The path of a regular file (an exe, cwd, root). */
  regPath(id: number, what: string): string {
    const f = this.entry(id, what);
    if (!f.reg) throw refuse(`${what}: file ${id} is a ${f.type}, not a regular file`);
    return f.reg.name;
  }

  /** Plan index of file `id`; `pid` is the task whose descriptor named it first (an epoll's owner). */
  index(id: number, what: string, pid: number): number {
    const have = this.byId.get(id);
    if (have !== undefined) return have;
    const f = this.entry(id, what);
    const kind = this.kinds.get(String(f.type));
    const rec = kind && (f[kind.field] as Obj | undefined);
    const key = this.inheritKey(f);
    const given = key === undefined ? undefined : this.inherit.get(key);
    let p: FilePlan;
    if (given !== undefined) {
      // a socketpair end whose peer is restored would need that peer made alone: not done
      if (f.usk && this.unix.peerInCheckpoint(f.usk)) throw refuse(`${what}: --inherit-fd for one end of a socketpair whose other end is in the checkpoint`);
      // (a terminal gets the settings recorded with it, and its session back, as CRIU's restore gives them)
      const tty = f.tty ? this.tty.inherited(f.tty) : undefined;
      p = { kind: 'inherit', flags: Number(rec?.flags ?? 0), pos: 0n, inheritFd: given, ...(tty ? { tty } : {}), ...(f.type === 'PIPE' ? { reopen: true } : {}) };
    } else if (kind && rec) {
      p = kind.plan(rec, { id, what, pid, index: this.files.length }) as FilePlan;
    } else {
      throw refuse(`${what}: ${f.type} files are not restored yet`);
    }
    const fown = fownPlan(rec?.fown, what);
    if (fown) p.fown = fown;
    // (a socket's namespace, as CRIU writes it: the restorer decides where it is made)
    if (given === undefined && SOCKET_TYPES.has(String(f.type)) && rec?.ns_id !== undefined && rec.ns_id !== null) p.netns = Number(rec.ns_id);
    this.files.push(p);
    this.byId.set(id, this.files.length - 1);
    return this.files.length - 1;
  }

  /** Once every task's files are planned: join what refers to other files (socketpair ends). */
  finish(): void {
    // descriptors in flight in unix sockets' queues are files of their own, held by no task
    for (const f of this.unix.inflight()) this.index(f.id, f.what, f.pid);
    for (const k of this.kinds.values()) {
      if (k === this.unix) this.unix.finish(this.files, (id) => this.byId.get(id));
      else k.finish?.(this.files);
    }
  }
}
