import type { IdExtent } from '@crtools/procfs';
/**
 * The restore plan: plain data describing every task to recreate. It can be written to a file
 * (JSON with hex strings for 64-bit values) and is what `restoreTree` turns into processes.
 */

import type { FilePlan, GhostPlan } from '@crtools/files/plan';

export type {
  EpollFilePlan, EpollTarget, EventfdFilePlan, FifoFilePlan, TtyFilePlan, FileBase, FilePlan, FownPlan, GhostPlan, FanotifyFilePlan, InetFilePlan, InheritFilePlan, InotifyFilePlan, MemfdFilePlan, PidfdFilePlan, PipeFilePlan,
  RegFilePlan, SignalfdFilePlan, TimerFilePlan, UnixBoundFilePlan, UnixPairFilePlan,
} from '@crtools/files/plan';

export type VmaKind = 'anon' | 'file-private' | 'file-shared' | 'sysv' | 'socket' | 'vvar' | 'vdso' | 'vsyscall';

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
   * shared anonymous memory (kind 'file-shared') or a memfd (also 'file-private'): index into
   * RestorePlan.shmem (restoreTree creates the object and fills in the path the tasks map it
   * through; a memfd's is opened with openFlags)
   */
  shmem?: number;
  /** an unlinked file: index into RestorePlan.ghosts (`path` is its original name) */
  ghost?: number;
  /** kind 'sysv': the id of the SysV segment attached whole there (shmat), of the root's IPC namespace */
  shmid?: number;
  /**
   * kind 'socket': a packet socket's rings, mapped again from the task's descriptor `fd` of the
   * socket (files.img id `fileId`) once its descriptors are in place (the area is held by a
   * PROT_NONE reservation until then)
   */
  socket?: { fileId: number; fd: number };
  /** lazy restore (RestorePlan.lazy): the area is registered with the task's userfaultfd (vmaCanBeLazy) */
  lazy?: boolean;
  /**
   * an AIO ring (io_setup): mapped private and anonymous to hold the dumped ring's pages, then
   * replaced by a new ring moved over it (TaskPlan.aios); never shared with a child by fork
   */
  aio?: boolean;
  /**
   * private huge pages (MAP_HUGETLB) of which the dump found some shared copy-on-write with
   * another task of the tree (vma_entry cow_huge, crtools' own field): a child that takes the
   * area over from its parent keeps the pages whose content is its parent's, as a fork left them
   */
  cowHuge?: boolean;
}

/**
 * A shared memory object: MAP_SHARED|MAP_ANONYMOUS memory, or a memfd (`memfd` set). One per
 * object, however many tasks map it or (a memfd) have descriptors on it.
 */
export interface ShmemPlan {
  /** bytes: the object's own size (kept the memfd way), else a page multiple covering its areas */
  size: bigint;
  /** shared anonymous memory kept the memfd way: its owner and mode (memfd.img) */
  owner?: ShmemOwner;
  /** its pages; vaddr is the byte offset in the object */
  pages: PageRun[];
  memfd?: MemfdObjectPlan;
  /**
   * on huge pages: log2 of the page size << 26 (the size bits MAP_HUGETLB and MFD_HUGETLB take);
   * made with MAP_HUGETLB / MFD_HUGETLB and filled through a mapping (hugetlbfs has no write)
   */
  hugetlb?: number;
}

/** the owner and mode of a shared memory object (st_mode: the type bits too) */
export interface ShmemOwner {
  uid: number;
  gid: number;
  mode: number;
}

/** What a memfd is made again with (memfd.img): memfd_create(name), owner, mode, then its seals. */
export interface MemfdObjectPlan {
  /** as memfd_create takes it: /proc shows `/memfd:NAME (deleted)` */
  name: string;
  /** F_GET_SEALS bits; exactly F_SEAL_SEAL: made without MFD_ALLOW_SEALING */
  seals: number;
  uid: number;
  gid: number;
  /** st_mode (its permission bits are set again) */
  mode: number;
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
  /** its css set, when it is not its process's (a thread in cgroups of its own) */
  cgSet?: number;
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
  /** the thread's robust futex list (set_robust_list); absent: none */
  robustList?: { head: bigint; len: bigint };
  /** the parent-death signal (PR_SET_PDEATHSIG); 0 or absent: none */
  pdeathsig?: number;
  /** cs: the value of struct rseq's rseq_cs set again after registration (a critical section that does not restart on signals) */
  rseq?: { ptr: bigint; len: number; sig: number; cs?: bigint };
  comm?: string;
  /** signals pending on this thread only: raw 128-byte siginfo_t each, queued again as they are */
  pendingSignals?: Buffer[];
  /** scheduling policy (SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5), rt priority, nice (-20..19) */
  sched?: { policy: number; prio: number; nice: number };
  /** seccomp: strict mode, or filters; absent: none */
  seccomp?: SeccompPlan;
}

/**
 * A thread's seccomp state. Filters are installed oldest first, each with its flags
 * (SECCOMP_FILTER_FLAG_TSYNC: for the whole process; _LOG), while the launcher traces the
 * thread with PTRACE_O_SUSPEND_SECCOMP, so they act only once the task is released.
 */
export interface SeccompPlan {
  /** SECCOMP_MODE_STRICT (no filters): entered just before the final rt_sigreturn */
  strict: boolean;
  /** classic BPF programs (sock_filter[], 8 bytes an instruction), oldest first */
  filters: { filter: Buffer; flags: number }[];
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

export interface TaskPlan {
  pid: number;
  /** its css set (cgroup.img's id; core thread_core.cg_set), when the dump recorded one */
  cgSet?: number;
  /** index of the parent in RestorePlan.tasks (the task that forks it, through a helper: `viaHelper`), -1 for the root */
  parent: number;
  pgid: number;
  sid: number;
  threads: ThreadPlan[];
  vmas: VmaPlan[];
  pagesPath?: string;
  /** the runs the restorer fills (a lazy restore: the pages that are not lazy) */
  pages: PageRun[];
  /**
   * lazy restore (RestorePlan.lazy): the pages left unfilled, for the lazy-pages daemon to serve
   * on fault (lazyRanges: PE_LAZY pages of the areas that may be lazy), in address order
   */
  lazyRanges?: { start: bigint; end: bigint }[];
  /** runs of the images over the vDSO and vvar: the kernel's pages, never written (--auto-dedup punches them too) */
  kernelPages?: PageRun[];
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
  /** the working directory / root was removed: index of its ghost directory in the plan's ghosts */
  cwdGhost?: number;
  rootGhost?: number;
  dumpable: number;
  /** 64 entries, signal n at index n-1 */
  sigactions: SigactionPlan[];
  rlimits: { cur: bigint; max: bigint }[];
  creds: CredsPlan;
  /** real, virtual, prof */
  itimers: ItimerPlan[];
  childSubreaper: boolean;
  /**
   * the audit login uid (core.img loginuid; 4294967295: unset); the launcher sets it only where
   * it differs from its own, which the task inherits
   */
  loginuid?: number;
  /** PR_SET_THP_DISABLE (mm.img thp_disabled) */
  thpDisabled?: boolean;
  /** /proc/PID/coredump_filter bits (mm.img coredump_filter, crtools' own field; COREDUMP_FILTER_DEFAULT when absent): written when set */
  coredumpFilter?: number;
  /** membarrier registrations to make again (MEMBARRIER_CMD_REGISTER_* bits, core.img membarrier_registration_mask) */
  membarrier?: number;
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
  /**
   * guard regions (MADV_GUARD_INSTALL) put back once the task's memory is in: page-aligned
   * ranges, each inside the task's areas (CRIU's VMA_AREA_GUARD entries of mm.img)
   */
  guards?: { start: bigint; end: bigint }[];
  /**
   * AIO rings (CRIU's mm.img aios): each made again with io_setup(nrReq) once the task's pages
   * are in, its completed events and head/tail taken from the dumped ring at `addr` (an area of
   * `len` bytes, VmaPlan.aio), then moved there with mremap: the context id is the address
   */
  aios?: { addr: bigint; len: bigint; nrReq: number }[];
  /**
   * the task shares its parent's descriptor table (CLONE_FILES): it is made with CLONE_FILES,
   * its parent (or the first holder above it) makes the descriptors, and `fds` is empty
   */
  shareFiles?: boolean;
  /** u64 writes into the task's memory once its pages are in (dispatch.ts) */
  patches?: { addr: bigint; value: bigint }[];
  /**
   * a zombie: the task is made (pid, pgid, sid, parent) and ends at once with this wait status
   * (exit code << 8, or the signal that killed it); nothing else of the plan applies to it
   */
  zombie?: { status: number };
  /**
   * forked by a helper process of the restore (index in RestorePlan.helpers), which its host
   * (`parent`, whose address space the task starts from) forks: an orphan in a session that is
   * not its reaper's (TreeHelper of @crtools/common); the task's parent once the helper exits
   * is its reaper, as it was
   */
  viaHelper?: number;
  /**
   * the session the task was born in, when it forked children there before it made a session of
   * its own (setsid after fork): it forks those (a child of that session, or born in it too)
   * before its setsid
   */
  bornSid?: number;
  /**
   * the root's: pids of processes gone whose /proc files the tree holds (CRIU 4.2's dead pids):
   * the root makes a process with each pid before it opens the tree's files, and ends and reaps
   * it right after, so that the files name a process gone again
   */
  deadPids?: number[];
  /**
   * the root's: the /proc directory of one of those processes that is the working directory of
   * tasks of the tree (`deadCwd`): the root enters it while that process lives, and every task
   * forked after inherits it
   */
  deadDir?: string;
  /** the working directory is `deadDir`, inherited from the root: not entered again at the end */
  deadCwd?: boolean;
  /**
   * the id of the mount namespace below its parent's this task made (unshare): it unshares one
   * again first thing, which the launcher shapes into NamespacePlan.nestedMounts' (its children
   * inherit it)
   */
  unshareMnt?: number;
  /**
   * the id of the network namespace of the tree (the root's, or one below it:
   * NamespacePlan.nestedNets) this task enters first thing (setns), when it is not its parent's
   */
  netns?: number;
  /**
   * the task was dumped stopped (TASK_STOPPED): once everything is restored it is put back in
   * group-stop with this signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU) instead of resuming
   */
  stopSigno?: number;
}

/** The namespaces the root task is born in (those of the dump's root that were not criu's). */
export interface NamespacePlan {
  /** CLONE_NEW* flags of the root's clone3 */
  cloneFlags: number;
  /** the UTS namespace's names (utsns-<id>.img) */
  uts?: { nodename: string; domainname: string };
  /** the IPC namespace's sysctls (ipcns-var-<id>.img: ipc_var_entry) */
  ipcVar?: Record<string, unknown>;
  /** the IPC namespace's SysV objects (ipcns-shm/sem/msg-<id>.img), made in this order with their ids */
  sysv?: SysvPlan[];
  /** the root's network namespace (made before the root, which is born inside it: no clone flag) */
  net?: NetPlan;
  /** --empty-ns net: the root's network namespace is made empty (not dumped: its caller configures it) */
  emptyNet?: boolean;
  /**
   * the root's network namespace is the caller's (dumped as external: --external net[INO]:KEY,
   * netns-<id>.img holding only the key): joined from the descriptor given as --inherit-fd fd[N]:KEY
   */
  extNet?: { key: string; fd: number };
  /** the mount namespace's mounts (mountpoints-<id>.img), in the order they were mounted */
  mounts?: MountPlan[];
  /**
   * the mount namespaces below the root's (a task of the tree made each: TaskPlan.unshareMnt), by
   * id: their mounts and the id of the namespace each was made from (the root's, criu's, or
   * another of these, listed before it)
   */
  nestedMounts?: Map<number, { mounts: MountPlan[]; parent: number }>;
  /**
   * the network namespaces below the root's (tasks that made or entered one: TaskPlan.netns;
   * sockets made there: FileBase.netns), by id: made by the restorer with the root's, as it is
   */
  nestedNets?: Map<number, NetPlan>;
  /** the root's network namespace's id in the images (a task below a nested one may go back to it) */
  rootNetId?: number;
  /**
   * the clocks the tasks read at dump time (timens-<id>.img): the root is born in a new time
   * namespace whose offsets make CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from these
   */
  clocks?: { monotonic: { sec: bigint; nsec: bigint }; boottime: { sec: bigint; nsec: bigint } };
  /**
   * the user namespace's uid and gid maps (userns-<id>.img): the root is born in a new user
   * namespace (CLONE_NEWUSER, its other new namespaces owned by it) whose maps the launcher
   * writes before the root runs code of its own; the tasks' creds are the ids inside it
   */
  userns?: { uid: IdExtent[]; gid: IdExtent[] };
  /**
   * the user namespace of userns is one that exists (--join-ns user, its maps checked to be
   * these): the root is born in it, not in a new one; the maps give the ids' counterparts outside
   */
  userJoined?: boolean;
}

/**
 * A network namespace to make: its links and sysctls (each list in CRIU's order of names,
 * procfs NET_CONF4/NET_CONF6/NET_UNIX_CONF/NET_IPV4_SYSCTLS; null: not kept), and the raw
 * images of `ip addr/route/rule save` and `ip(6)tables-save` by kind.
 */
export interface NetPlan {
  id: number;
  links: NetLinkPlan[];
  all4: (string | null)[];
  def4: (string | null)[];
  all6: (string | null)[];
  def6: (string | null)[];
  unix: (string | null)[];
  ipv4: (string | null)[];
  raw: Partial<Record<'ifaddr' | 'route' | 'route6' | 'rule' | 'iptables' | 'ip6tables' | 'nftables', Buffer>>;
  /** the ids it knows the tree's other network namespaces by (netns-<id>.img nsids): their image id → the id (RTM_NEWNSID) */
  nsids?: Map<number, number>;
}

/** One link of a network namespace to make (net_device_entry), in netdev-<id>.img's order. */
export interface NetLinkPlan {
  kind: 'loopback' | 'veth' | 'macvlan' | 'bridge' | 'tun';
  name: string;
  ifindex: number;
  flags: number;
  mtu: number;
  /** the link-layer address (veth, macvlan, bridge) */
  address?: Buffer;
  /** the index of the bridge of the namespace it is a port of (net_device_entry master) */
  master?: number;
  /**
   * a veth's peer: its index and, when it was outside the tree, where the restore was told it
   * goes (--veth-pair, --external veth[NAME]:OUT[@BRIDGE], RPC veths): a device of that name in
   * criu's own network namespace, put in the bridge and brought up when one is named; without
   * `outside`, the peer is one of these links, or with `ns` a link of another of the tree's
   * network namespaces (its id; `name`: the peer's name there)
   */
  peer?: { ifindex: number; outside?: { name: string; bridge?: string }; ns?: { id: number; name: string } };
  /** a veth moved in from criu's namespace, where the caller made it (--external netdev[NAME]:DEVICE): that device's name */
  moveFrom?: string;
  /** a macvlan: its mode and flags, and the device of criu's namespace it hangs on (--external macvlan[NAME]:DEVICE) */
  macvlan?: { mode: number; flags?: number; lower: string };
  /** a tun/tap device (tun_link_entry): its TUNSETIFF flags (IFF_PERSIST when it was persistent), owner and group (-1: none), vnet header size, send buffer */
  tun?: { flags: number; owner: number; group: number; vnethdr: number; sndbuf: number };
  conf4: (string | null)[];
  conf6: (string | null)[];
}

/** One mount of the restored mount namespace (mnt_entry). */
export interface MountPlan {
  id: number;
  parent: number;
  /** mnt_entry.fstype (0: a file system CRIU has no code for) and the file system's name where known */
  fstype: number;
  fsname?: string;
  /** kernel device number of its file system (root_dev) */
  dev: number;
  root: string;
  mountpoint: string;
  source: string;
  options: string;
  /** per-mount flags (MS_*, propagation included) and the super block's (ro, sync, dirsync) */
  flags: number;
  sbFlags: number;
  shared: number;
  master: number;
  /** tmpfs: its files (tmpfs-dev-<dev>.tar.gz.img) */
  tar?: string;
  /** an external mount (--external mnt[KEY]:...): restored as a bind of what the restore maps KEY to (--ext-mount-map, RPC ext_mnt) */
  extKey?: string;
  /** a bind mount whose root was removed after it was mounted (mnt_entry.deleted): the root is made for the bind and removed again */
  deleted?: boolean;
}

/**
 * cgroup.img: the css sets of the tasks (each controller's path in it) and, per controller, the
 * directories dumped with their properties.
 */
export interface CgroupsPlan {
  /** each css set: per hierarchy its path and, in a tree with a cgroup namespace of its own, the length of the part above the namespace's root (cgns_prefix) */
  sets: { id: number; ctls: { name: string; path: string; cgnsPrefix?: number }[] }[];
  controllers: { cnames: string[]; dirs: CgroupDirPlan[] }[];
  /** the set the dump's criu was in (inventory root_cg_set): a task in it stays in the restorer's */
  rootSet?: number;
}

/** A dumped cgroup directory: its name (the first level: its path from the hierarchy's root), properties (each with its file's mode and owner), mode and owner, children. */
export interface CgroupDirPlan {
  name: string;
  props: { name: string; value: string; perms?: { mode: number; uid: number; gid: number } }[];
  perms?: { mode: number; uid: number; gid: number };
  children: CgroupDirPlan[];
}

/** One SysV IPC object of the restored IPC namespace. */
export interface SysvPlan {
  kind: 'shm' | 'sem' | 'msg';
  id: number;
  key: number;
  mode: number;
  uid: number;
  gid: number;
  /** its creator's ids (ipc_desc_entry cuid, cgid): it is made with them */
  cuid: number;
  cgid: number;
  /** shm: its size and its pages (pagemap-shmem-<id>.img; vaddr is the offset in the segment) */
  size?: bigint;
  pages?: PageRun[];
  /** shm on huge pages (SHM_HUGETLB): log2 of the page size << 26 (0: the default size) */
  hugetlb?: number;
  /** shm of older CRIU: its contents right after its entry instead of pages */
  inline?: Buffer;
  /** sem: the values */
  values?: number[];
  /** msg: the queue's limit and its messages in order */
  qbytes?: number;
  msgs?: { mtype: bigint; data: Buffer }[];
}

/** A helper process of the restore (TaskPlan.viaHelper names the tasks it forks). */
export interface HelperPlan {
  /** its pid: a gone leader's; 0: any (the kernel's pick) */
  pid: number;
  /** index of the task that forks it */
  host: number;
  /** it makes a session of its own (setsid); else it leads a process group of its pid (setpgid), or none when pid is 0 */
  setsid: boolean;
  /** index of the task its children go to when it exits (a subreaper is one before it forks): -1, none */
  reaper: number;
}

export interface RestorePlan {
  /** root first; a parent always comes before its children (a task forked through a helper may come before its host) */
  tasks: TaskPlan[];
  /**
   * helper processes of sessions and process groups whose leader is gone, and of orphans in
   * another session than their reaper's (TreeHelper of @crtools/common): each forked by its
   * host task, gone before the tree resumes
   */
  helpers?: HelperPlan[];
  /**
   * Descriptors of the restoring process the root takes into its file table's copy (inherited
   * across its clone): objects the tasks open as their own /proc/self/fd/N (encode.ts
   * heldFdBase), where they may not look into the restoring process's (a tree in a user
   * namespace of its own)
   */
  held?: number[];
  /**
   * where the network namespaces of the tree are among `held` (set by the launcher, which makes
   * them): the root's (a socket made elsewhere goes back to it) and those below it, by id
   */
  netHeld?: { root: number; byId: Map<number, number> };
  /** namespaces of the root's own (none: every task lives in the restorer's) */
  namespaces?: NamespacePlan;
  files: FilePlan[];
  /** cgroup.img, when the checkpoint has one */
  cgroups?: CgroupsPlan;
  shmem?: ShmemPlan[];
  ghosts?: GhostPlan[];
  /**
   * --lazy-pages: the lazy runs are left unfilled, the lazy areas registered with a userfaultfd
   * made in each task and handed to the lazy-pages daemon; no copy-on-write sharing is rebuilt
   * (each task maps its own areas: a fork would not carry the registration over)
   */
  lazy?: boolean;
  /**
   * --root: the directory the tree's mounts are made under (the tree's root once the tasks are
   * restored). The plan's paths of files are prefixed with it (rooted.ts); the path names of unix
   * sockets are not (a name is what the socket reports, at most 108 bytes): each task binds and
   * connects by such a name with this directory as its root for the call.
   */
  root?: string;
}
