/**
 * The restore plan: plain data describing every task to recreate. It can be written to a file
 * (JSON with hex strings for 64-bit values) and is what `restoreTree` turns into processes.
 */

export type VmaKind = 'anon' | 'file-private' | 'file-shared' | 'vvar' | 'vdso' | 'vsyscall';

export interface VmaPlan {
  start: bigint;
  end: bigint;
  pgoff: bigint;
  prot: number;
  /** mmap flags as recorded (MAP_PRIVATE/SHARED/ANONYMOUS/GROWSDOWN...) */
  flags: number;
  kind: VmaKind;
  /** file-backed areas: the file to map, opened with openFlags */
  path?: string;
  openFlags?: number;
  /** recorded file size: the file must still have it */
  fileSize?: bigint;
  /** madvise advice bits (bit n = advice n) */
  madv?: bigint;
  /**
   * shared anonymous memory: index into RestorePlan.shmem (kind 'file-shared'; restoreTree
   * creates the object and fills in the path the tasks map it through)
   */
  shmem?: number;
  /** an unlinked file: index into RestorePlan.ghosts (`path` is its original name) */
  ghost?: number;
}

/**
 * An unlinked file a task still had open or mapped: restoreTree makes it again for the restore
 * (at `path` when that name is free, else beside it) and unlinks it once the tasks hold it.
 */
export interface GhostPlan {
  path: string;
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/** A shared memory object (MAP_SHARED|MAP_ANONYMOUS): one per object, however many tasks map it. */
export interface ShmemPlan {
  /** bytes, a page multiple */
  size: bigint;
  /** its pages; vaddr is the byte offset in the object */
  pages: PageRun[];
}

/** A run of pages read from the pages image at `offset` into `vaddr`. */
export interface PageRun {
  vaddr: bigint;
  npages: bigint;
  offset: bigint;
  /** pages image holding the run (default: the task's pagesPath) */
  path?: string;
}

export type X86Reg =
  | 'r15' | 'r14' | 'r13' | 'r12' | 'bp' | 'bx' | 'r11' | 'r10' | 'r9' | 'r8' | 'ax' | 'cx' | 'dx' | 'si' | 'di'
  | 'orig_ax' | 'ip' | 'cs' | 'flags' | 'sp' | 'ss' | 'fs_base' | 'gs_base' | 'ds' | 'es' | 'fs' | 'gs';

export const X86_REGS: readonly X86Reg[] = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
  'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
];

export interface ThreadPlan {
  tid: number;
  regs: Record<X86Reg, bigint>;
  /** the 512-byte legacy FXSAVE area */
  fxsave: Buffer;
  xstateBv: bigint;
  ymmh?: Buffer;
  opmask?: Buffer;
  zmmUpper?: Buffer;
  hi16Zmm?: Buffer;
  pkru?: number;
  blkSigset: bigint;
  sas: { sp: bigint; size: bigint; flags: number };
  clearTid: bigint;
  rseq?: { ptr: bigint; len: number; sig: number };
  comm?: string;
  /** signals pending on this thread only: raw 128-byte siginfo_t each, queued again as they are */
  pendingSignals?: Buffer[];
  /** scheduling policy (SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5), rt priority, nice (-20..19) */
  sched?: { policy: number; prio: number; nice: number };
}

export interface SigactionPlan {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export interface ItimerPlan {
  isec: bigint;
  iusec: bigint;
  vsec: bigint;
  vusec: bigint;
}

/** A POSIX timer (timer_create) to recreate with the same id, armed with what was left. */
export interface PosixTimerPlan {
  id: number;
  clockId: number;
  signo: number;
  /** sigev_notify as the kernel takes it (SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD_ID 4) */
  notify: number;
  sival: bigint;
  /** SIGEV_THREAD_ID: the thread to signal */
  notifyTid?: number;
  /** interval, then the time left until the next expiry (0 = disarmed) */
  isec: bigint;
  insec: bigint;
  vsec: bigint;
  vnsec: bigint;
}

export interface MmPlan {
  startCode: bigint; endCode: bigint; startData: bigint; endData: bigint; startStack: bigint;
  startBrk: bigint; brk: bigint; argStart: bigint; argEnd: bigint; envStart: bigint; envEnd: bigint;
}

export interface CredsPlan {
  uid: number; gid: number; euid: number; egid: number; suid: number; sgid: number; fsuid: number; fsgid: number;
  groups: number[];
  /** capability sets (bit n = capability n), securebits, no_new_privs; absent: left as inherited */
  caps?: { inh: bigint; prm: bigint; eff: bigint; bnd: bigint; amb: bigint; secbits: number; noNewPrivs: boolean };
}

export interface FdPlan {
  fd: number;
  /** index into RestorePlan.files */
  file: number;
  cloexec: boolean;
}

/** One file descriptor an epoll instance watches: its number in the owner task, events, data. */
export interface EpollTarget {
  fd: number;
  events: number;
  data: bigint;
}

/** What every file of the plan has: its open(2) flags (O_ACCMODE, O_APPEND, O_NONBLOCK...) and offset. */
interface FileBase {
  flags: number;
  pos: bigint;
}

/** A regular file (or directory, device) opened again by path; `ghost`: an unlinked one, index into RestorePlan.ghosts. */
export interface RegFilePlan extends FileBase {
  kind: 'reg';
  path: string;
  size?: bigint;
  ghost?: number;
}

/** One end of a pipe (`pipeId` joins the ends); `data`: bytes buffered in it at dump time. */
export interface PipeFilePlan extends FileBase {
  kind: 'pipe-r' | 'pipe-w';
  pipeId: number;
  data?: Buffer;
  pipeSize?: number;
}

/** eventfd: `value` its counter; signalfd: `value` its signal mask (bit n-1 = signal n). */
export interface CounterFilePlan extends FileBase {
  kind: 'eventfd' | 'signalfd';
  value: bigint;
}

/** epoll: what it watches, added by the task `owner` once its descriptors are in place. */
export interface EpollFilePlan extends FileBase {
  kind: 'epoll';
  targets: EpollTarget[];
  owner: number;
}

/** timerfd: clock, expirations not yet read, time left (0 = disarmed) and interval. */
export interface TimerFilePlan extends FileBase {
  kind: 'timerfd';
  timer: { clockId: number; ticks: bigint; vsec: bigint; vnsec: bigint; isec: bigint; insec: bigint };
}

/**
 * unix: one end of a socketpair (type SOCK_STREAM 1 / DGRAM 2 / SEQPACKET 5 in `type`), its
 * other end (index into RestorePlan.files), buffer sizes as getsockopt shows them, shutdown
 * bits (1 read, 2 write) and what sat in its receive queue, one Buffer per message.
 */
export interface UnixPairFilePlan extends FileBase {
  kind: 'unix';
  type: number;
  socket: { peer: number; sndbuf: number; rcvbuf: number; shutdown: number; queue: Buffer[] };
}

/**
 * unix-bound: a unix socket bound to a name (`address` a raw sockaddr_un, abstract names
 * start with a NUL byte), listening with `backlog` when `listen`; a stale socket file at the
 * name is replaced.
 */
export interface UnixBoundFilePlan extends FileBase {
  kind: 'unix-bound';
  type: number;
  unixBound: { address: Buffer; listen: boolean; backlog: number; sndbuf: number; rcvbuf: number };
}

/**
 * inet: an IPv4/IPv6 TCP or UDP socket that is not connected: bound to `address` (a raw
 * sockaddr; none = unbound) and listening with `backlog` when `listen`.
 */
export interface InetFilePlan extends FileBase {
  kind: 'inet';
  type: number;
  inet: {
    family: number; protocol: number; address?: Buffer; listen: boolean; backlog: number;
    reuseaddr: boolean; reuseport: boolean; v6only: boolean; sndbuf: number; rcvbuf: number;
  };
}

/** inotify: its watches, each added again under its number (wd) with its event mask. */
export interface InotifyFilePlan extends FileBase {
  kind: 'inotify';
  watches: { wd: number; mask: number; path: string }[];
}

/**
 * inherit: not made again but taken from descriptor `inheritFd` of the restoring process
 * (CRIU's --inherit-fd: an outside pipe end, socket or file the caller hands over).
 */
export interface InheritFilePlan extends FileBase {
  kind: 'inherit';
  inheritFd: number;
}

/** A file to make again (or take over), by kind: each kind carries what it needs. */
export type FilePlan =
  | RegFilePlan | PipeFilePlan | CounterFilePlan | EpollFilePlan | TimerFilePlan
  | UnixPairFilePlan | UnixBoundFilePlan | InetFilePlan | InotifyFilePlan | InheritFilePlan;

export interface TaskPlan {
  pid: number;
  /** index of the parent in RestorePlan.tasks, -1 for the root */
  parent: number;
  pgid: number;
  sid: number;
  threads: ThreadPlan[];
  vmas: VmaPlan[];
  pagesPath?: string;
  pages: PageRun[];
  fds: FdPlan[];
  cwd?: string;
  root?: string;
  umask: number;
  personality: number;
  mm: MmPlan;
  auxv: bigint[];
  exe?: string;
  /** the exe was unlinked: index into RestorePlan.ghosts (exe is its original name) */
  exeGhost?: number;
  dumpable: number;
  /** 64 entries, signal n at index n-1 */
  sigactions: SigactionPlan[];
  rlimits: { cur: bigint; max: bigint }[];
  creds: CredsPlan;
  /** real, virtual, prof */
  itimers: ItimerPlan[];
  childSubreaper: boolean;
  /** process-wide pending signals: raw 128-byte siginfo_t each */
  pendingSignals?: Buffer[];
  posixTimers?: PosixTimerPlan[];
  /** /proc/PID/oom_score_adj (-1000..1000) */
  oomScoreAdj?: number;
  /**
   * file locks taken again once the task's descriptors are in place (CRIU's filelocks.img):
   * flag 1 POSIX, 2 flock, 4 OFD; type 0 read (shared), 1 write (exclusive); len 0 = to EOF
   */
  locks?: { fd: number; flag: number; type: number; start: bigint; len: bigint }[];
  /** u64 writes into the task's memory once its pages are in (dispatch.ts) */
  patches?: { addr: bigint; value: bigint }[];
  /**
   * a zombie: the task is made (pid, pgid, sid, parent) and ends at once with this wait status
   * (exit code << 8, or the signal that killed it); nothing else of the plan applies to it
   */
  zombie?: { status: number };
}

export interface RestorePlan {
  /** root first; a parent always comes before its children */
  tasks: TaskPlan[];
  files: FilePlan[];
  shmem?: ShmemPlan[];
  ghosts?: GhostPlan[];
}
