import type { TcpConnState, TcpIdle, TcpRestoreArgs } from './tcp.js';
import { isNativeSysError, nativeAddon, syscallError, type NativeSysError } from '@crtools/common';

/** What sysvRead answers for one object: a segment's contents, a set's values, a queue's messages. */
export interface SysvContents {
  size?: number;
  /** shm: the device of the segment's file (the shm mount's, or hugetlbfs's) */
  devMajor?: number;
  devMinor?: number;
  data?: Buffer;
  values?: number[];
  qbytes?: number;
  /** [mtype, text], in queue order */
  msgs?: [bigint, Buffer][];
}

/** One SysV IPC object to make (kind 0 shm, 1 sem, 2 msg) with its id, key, permissions and contents. */
export interface SysvObject extends SysvContents {
  kind: number;
  id: number;
  key: number;
  mode: number;
  uid: number;
  gid: number;
  /** its creator's ids (default: uid, gid) */
  cuid?: number;
  cgid?: number;
  /** shm on huge pages: SHM_HUGETLB with the page size's bits (log2 << 26), as shmget takes them */
  hugetlb?: number;
}

/**
 * One step of mountOps: mount(source, target, fstype, flags, data), or umount2(target, flags),
 * or (pivot) target made the namespace's root, the old root detached.
 */
export interface MountOp {
  umount?: boolean;
  pivot?: boolean;
  /** a descriptor of this process on a mount's root: the mount at target joins its propagation (move_mount MOVE_MOUNT_SET_GROUP; target private before) */
  groupFrom?: number;
  /** a descriptor of this process on a mount's root: a bind of `source` (relative to that root) at target, reached even where others cover it (open_tree OPEN_TREE_CLONE + move_mount) */
  bindFd?: number;
  source?: string;
  target: string;
  fstype?: string;
  flags: number;
  data?: string;
}

/**
 * The whole native surface of @crtools/sys (native/*.cc, one file per concern). Every call is
 * synchronous; a failed system call comes back as { errno, syscall } (NativeSysError).
 */
export interface SysNative {
  // handles.cc
  /** the path, as this process sees it, of the file a kernel file handle designates on the filesystem mounted at mountDir */
  pathOfHandle(mountDir: string, type: number, handle: Buffer): string | NativeSysError;
  // process.cc
  /** kcmp(2): 0 when both name the same kernel object, 1/2 ordered, 3 different */
  kcmp(pid1: number, pid2: number, type: number, idx1: number, idx2: number): number | NativeSysError;
  /** kcmp(pid, pid, KCMP_EPOLL_TFD, fd, {efd, tfd, toff}): 0 when fd is that epoll target's file */
  kcmpEpollTfd(pid: number, fd: number, efd: number, tfd: number, toff: number): number | NativeSysError;
  /** clock_gettime(2): [seconds, nanoseconds] */
  clockGettime(clockId: number): [number, number] | NativeSysError;
  /** the inode of the user namespace owning nsPath's namespace (0: NS_GET_USERNS), or of its parent (1: NS_GET_PARENT) */
  nsRelative(nsPath: string, which: 0 | 1): number | NativeSysError;
  /** from inside the namespace nsPath names (setns on a thread of its own): write each file, then read each */
  nsFiles(nsPath: string, nsType: number, writes: [string, string][], reads: string[], optional?: boolean, asUid?: number, asGid?: number): (string | null)[] | (NativeSysError & { path?: string });
  /** SIGKILL through a pidfd to each, then (release) process_mrelease(2) on each: per pid 0 or the errno of each step (release -1: not asked) */
  killRelease(pids: number[], release: boolean): { kill: number; release: number }[];
  /** a new user namespace with these maps (uid_map, gid_map text), and with CLONE_NEWNET in alsoFlags a network namespace it owns: [user fd, net fd?] */
  usernsCreate(uidMap: string, gidMap: string, alsoFlags: number): number[] | NativeSysError;
  // netns.cc
  /** the network namespace ("" this process's) the sockets of sock_diag queries and TCP repair are made in */
  setSocketNamespace(nsPath: string): undefined;
  /** a new network namespace, held by a descriptor of ours (close-on-exec) */
  netnsCreate(userFd?: number): number | NativeSysError;
  /** one route netlink request sent from inside the namespace nsPath names ("": ours): the answer's messages (a dump's up to NLMSG_DONE) */
  rtnl(nsPath: string, request: Buffer): Buffer[] | NativeSysError;
  // sysvipc.cc
  /** from inside the IPC namespace nsPath names: each object's contents (shm), values (sem), queue (msg) */
  sysvRead(nsPath: string, nsType: number, objs: { kind: number; id: number }[]): SysvContents[] | NativeSysError;
  /** from inside the IPC namespace nsPath names: each object made again with its id, in order */
  sysvMake(nsPath: string, nsType: number, objs: SysvObject[]): undefined | NativeSysError;
  // mounts.cc
  /** from inside the mount namespace nsPath names (unshare CLONE_FS + setns on a thread of its own; and the namespaces of join): each step in order; done: the steps that succeeded */
  mountOps(nsPath: string, ops: MountOp[], join?: string[]): undefined | (NativeSysError & { done?: number });
  /** a detached copy (open_tree OPEN_TREE_CLONE, close-on-exec) of the one mount at path below root, from inside the mount namespace nsPath (with uncover: once those mount points are unmounted, last first, in a private copy of it) */
  cloneMount(nsPath: string, root: string, path: string, uncover?: string[]): number | NativeSysError;
  // pipes.cc
  /** Buffered bytes of the pipe behind fd (tee'd, not consumed) and its capacity. */
  peekPipe(fd: number): { size: number; data: Buffer } | NativeSysError;
  /** pipe2(O_CLOEXEC) with F_SETPIPE_SZ(size): [read fd, write fd, capacity]. */
  pipe(size: number): [number, number, number] | NativeSysError;
  /** splice(2) from a pipe to fdOut (at its file position) until len bytes moved; the bytes moved. */
  spliceAll(fdIn: number, fdOut: number, len: number): number | NativeSysError;
  spliceSome(fdIn: number, fdOut: number, len: number, waitMs: number): { moved: number; eof: boolean } | NativeSysError;
  closeFd(fd: number): number | NativeSysError;
  /** F_SETPIPE_SZ(size) on a pipe; the capacity it then has. */
  setPipeSize(fd: number, size: number): number | NativeSysError;
  // sockets.cc
  /** Every AF_UNIX socket of this network namespace (NETLINK_SOCK_DIAG). */
  unixDiag(): UnixSocketDiag[] | NativeSysError;
  /** Every AF_PACKET socket of this network namespace (sock_diag). */
  packetDiag(): PacketSocketDiag[] | NativeSysError;
  /** The receive queue of the task's socket at fd (peeked, not consumed) and its buffer sizes. */
  sockQueue(pid: number, fd: number, eofAtZero?: boolean): SocketQueue | NativeSysError;
  // tun.cc
  /** /dev/net/tun opened in the network namespace nsPath names ("" this thread's) and attached to device name (TUNSETIFF flags; made at ifindex when new and ifindex is not 0). */
  tunAttach(nsPath: string, name: string, flags: number, ifindex: number, openFlags: number): number | NativeSysError;
  /** What a /dev/net/tun file of ours says: its device (null: none), flags, vnet header size, send buffer, filter length, its network namespace's inode. */
  tunInfo(fd: number): TunFileInfo | NativeSysError;
  /** One setting of the device a /dev/net/tun file of ours is attached to. */
  tunSet(fd: number, what: 'owner' | 'group' | 'persist' | 'sndbuf' | 'vnethdr' | 'detach', value: number): undefined | NativeSysError;
  // source.cc (used by @crtools/cli's load-bundle, which loads this addon itself before any bundled code)
  /** The file at path, read whole into memory of its own, as a latin1 string (external: no copy into V8's heap). */
  sourceText(path: string): string | NativeSysError;
  /** The file at path, read whole into memory of its own, as a Buffer over that memory. */
  fileBytes(path: string): Buffer | NativeSysError;
  /** What a copy of the task's socket at fd tells through getsockopt/getsockname/getpeername. */
  sockInfo(pid: number, fd: number): SocketInfo | NativeSysError;
  unixSocketFile(pid: number, fd: number): UnixSocketFile | NativeSysError;
  /** Listen backlog and accept queue of the listening TCP socket with that inode (sock_diag); ENOENT: none. */
  listenQueues(family: number, ino: number): { backlog: number; pending: number } | NativeSysError;
  /** Shutdown state (RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2) of the UDP/UDP-lite socket with that inode (sock_diag); ENOENT: none. */
  inetShutdown(family: number, protocol: number, ino: number): number | NativeSysError;
  // probe.cc
  /** What fcntl, ioctl, fstat(fs) and getsockopt answer on a copy of the task's fd (values the kernel refuses: -errno). */
  fileProbe(pid: number, fd: number, sockopts: number[]): FileProbe | NativeSysError;
  /** A descriptor of ours (close-on-exec) on the task's open file at fd (pidfd_getfd). */
  takeFd(pid: number, fd: number): number | NativeSysError;
  /** The same socket option queries on a socket made here (socket(2) with these arguments): its defaults. */
  freshSocketProbe(domain: number, type: number, protocol: number, sockopts: number[]): (Buffer | number)[] | NativeSysError;
  // packets.cc
  /** socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC) */
  seqpacketPair(): [number, number] | NativeSysError;
  /** A SOCK_SEQPACKET socket bound to path and listening (close-on-exec). */
  seqpacketListen(path: string, backlog: number): number | NativeSysError;
  /** A SOCK_SEQPACKET socket connected to path (close-on-exec). */
  seqpacketConnect(path: string): number | NativeSysError;
  /** accept4 on a listening socket without waiting: the connection, or null when none is queued. */
  acceptConn(fd: number): number | null | NativeSysError;
  /** One whole message without waiting (null: none queued); data of length 0: the peer closed. */
  recvPacket(fd: number): { data: Buffer; fds: number[]; truncated: boolean } | null | NativeSysError;
  /** One message, with descriptors (SCM_RIGHTS) when fds is not empty; the bytes sent. */
  sendPacket(fd: number, data: Buffer, fds: number[]): number | NativeSysError;
  /** An AF_UNIX SOCK_STREAM socket connected to path (close-on-exec, blocking). */
  streamConnect(path: string): number | NativeSysError;
  /** An AF_UNIX SOCK_STREAM socket bound to path and listening (close-on-exec, non-blocking accept). */
  streamListen(path: string, backlog: number): number | NativeSysError;
  /** Waits for len bytes of a stream (fewer: the peer closed) and the descriptors sent with them. */
  recvExact(fd: number, len: number): { data: Buffer; fds: number[] } | NativeSysError;
  /** SO_PEERCRED of a connected socket. */
  peerCred(fd: number): { pid: number; uid: number; gid: number } | NativeSysError;
  /** cb(status, events) once, on the event loop, when fd is readable or hung up; the watch id. */
  watchReadable(fd: number, cb: (status: number, events: number) => void): number | NativeSysError;
  /** Cancel a watch that has not fired. */
  unwatch(id: number): void;
  // memory.cc
  /**
   * One PAGEMAP_SCAN ioctl on a pagemap descriptor (the kernel's pm_scan_arg fields, in order
   * from flags on): the regions found, 3 little-endian u64 each (start, end, categories), and
   * walk_end, where the kernel stopped (below end: the vector was full or max_pages reached).
   */
  pagemapScan(
    fd: number, start: bigint, end: bigint, flags: bigint, categoryInverted: bigint, categoryMask: bigint,
    categoryAnyofMask: bigint, returnMask: bigint, maxPages: bigint, vecLen: number,
  ): { regions: Buffer; walkEnd: bigint } | NativeSysError;
  /** the first len bytes of what fd maps, through a shared read-only mapping of ours unmapped again (a packet socket's rings) */
  readMapped(fd: number, len: bigint): Buffer | NativeSysError;
  /** MADV_GUARD_INSTALL on a page of a fresh anonymous mapping of ours: 0, or why not */
  guardProbe(): number | NativeSysError;
  /** UFFDIO_API on a userfaultfd asking for `features`: the features granted */
  uffdApi(fd: number, features: bigint): bigint | NativeSysError;
  /** UFFDIO_REGISTER of [start, start+len) of the userfaultfd's own mm in `mode` (1 MISSING, 2 WP, 4 MINOR) */
  uffdRegister(fd: number, start: bigint, len: bigint, mode: bigint): number | NativeSysError;
  /** UFFDIO_UNREGISTER of [start, start+len) */
  uffdUnregister(fd: number, start: bigint, len: bigint): number | NativeSysError;
  /** Whole 32-byte uffd_msg records read without waiting (empty: end of file; null: none queued) */
  uffdRead(fd: number, max: number): Buffer | null | NativeSysError;
  /** UFFDIO_COPY of src to dst: the bytes copied (short: the kernel stopped there) */
  uffdCopy(fd: number, dst: bigint, src: Buffer, dontWake: boolean): number | NativeSysError;
  /** UFFDIO_ZEROPAGE of [start, start+len): the bytes done */
  uffdZero(fd: number, start: bigint, len: bigint): number | NativeSysError;
  /** poll(2) for POLLIN on each fd: the revents, in order */
  pollIn(fds: number[], timeoutMs: number): number[] | NativeSysError;
  // cpu.cc
  /** cpuid(leaf, subleaf) -> [eax, ebx, ecx, edx] */
  cpuid(leaf: number, subleaf: number): [number, number, number, number];
  /** xgetbv(index); 0n when the OS has not enabled XSAVE */
  xgetbv(index: number): bigint;
  // tcp.cc
  /** tcpi_state of TCP_INFO */
  tcpState(fd: number): number | NativeSysError;
  tcpIdle(fd: number): TcpIdle | NativeSysError;
  /** TCP_REPAIR on (1) or off (0) */
  tcpRepair(fd: number, on: number): number | NativeSysError;
  /** a repair-mode socket's connection state and queues (peeked) */
  tcpSave(fd: number): TcpConnState | NativeSysError;
  /** a socket made in repair mode into the connection described; its descriptor */
  tcpRestore(args: TcpRestoreArgs): number | NativeSysError;
  setSockopt(fd: number, level: number, name: number, value: Buffer): number | NativeSysError;
  setFileFlags(fd: number, flags: number): number | NativeSysError;
  // files.ts
  /** lseek(2): the resulting offset (SEEK_DATA/SEEK_HOLE past the data: ENXIO) */
  seekFile(fd: number, offset: bigint, whence: number): bigint | NativeSysError;
  /** futimens(2) with both times given */
  setFileTimes(fd: number, atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number): number | NativeSysError;
  makeFifo(path: string, mode: number): number | NativeSysError;
  makeDeviceNode(path: string, mode: number, rdev: number): number | NativeSysError;
  /** readlinkat(2): the link's contents */
  readLinkAt(dirfd: number, path: string): Buffer | NativeSysError;
  /** linkat(2) with AT_SYMLINK_FOLLOW (from may be a /proc/PID/fd/N link) */
  linkFollow(from: string, to: string): number | NativeSysError;
  /** utimensat(2) with AT_SYMLINK_NOFOLLOW, both times given */
  setLinkTimes(path: string, atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number): number | NativeSysError;
  // tty.cc
  /** What the tty ioctls answer on a copy of the task's fd (values the kernel refuses: -errno). */
  ttyProbe(pid: number, fd: number): TtyProbe | NativeSysError;
  ttyQueueRead(masterFd: number, slaveFd: number): TtyQueues | NativeSysError;
  ttyQueueWrite(masterFd: number, slaveFd: number, toMaster: Buffer, toSlave: Buffer): number | NativeSysError;
}

/** A terminal's state, as the tty ioctls give it (a refused one: -errno). */
/** The bytes waiting at the two ends of a pty pair: for the master to read (the slave's output), for the slave to read (its input). */
export interface TtyQueues {
  toMaster: Buffer;
  /** a non-canonical slave: all its bytes; a canonical one: the line being typed (after `lines`) */
  toSlave: Buffer;
  /** a slave in canonical mode: its complete lines, each as a read returns it (with its NL, EOL or EOL2; without an EOF; empty: a lone EOF) */
  lines?: Buffer[];
}

export interface TtyProbe {
  /** fstat: st_rdev and st_dev (glibc's encoding), owner */
  rdev: number;
  dev: number;
  uid: number;
  gid: number;
  /** the kernel's struct termios (36 bytes: iflag, oflag, cflag, lflag, line, 19 c_cc) of TCGETS and TIOCGLCKTRMIOS */
  termios: Buffer | number;
  termiosLocked: Buffer | number;
  /** struct winsize (rows, cols, xpixel, ypixel: u16 each) */
  winsize: Buffer | number;
  /** TIOCGSID, TIOCGPGRP as this process is told */
  sid: number;
  pgrp: number;
  /** TIOCGEXCL, TIOCGPKT, TIOCGPTLCK (pty master), TIOCGPTN (pty master: the slave's index) */
  excl: number;
  pkt: number;
  lock: number;
  ptn: number;
  /** TIOCGDEV: the device of the terminal itself (what /dev/tty stands for), the kernel's encoding */
  ttyDev: number;
  /** TIOCINQ, TIOCOUTQ: bytes waiting to be read, to be sent */
  inq: number;
  outq: number;
}

export interface FileProbe {
  /** F_GETFL */
  fl: number;
  /** F_GETOWN_EX: F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2 (pid 0: no owner) */
  ownerType: number;
  ownerPid: number;
  /** F_GETOWNER_UIDS: the real and effective uid recorded with the owner (-errno where the kernel lacks it) */
  ownerUid: number;
  ownerEuid: number;
  /** F_GETSIG, F_GETLEASE, F_GETPIPE_SZ, F_GET_SEALS */
  sig: number;
  lease: number;
  pipeSize: number;
  seals: number;
  /** st_mode of fstat */
  mode: number;
  /** FIONREAD (pipes, sockets, anonymous inodes: inotify and fanotify events waiting), SIOCOUTQ (sockets) */
  nread: number;
  outq: number;
  /** sockets: poll(2) revents for POLLIN | POLLOUT | POLLRDHUP, asked without waiting (-errno: not a socket) */
  events: number;
  /** fstatfs f_type */
  fsType: number;
  /** per (level, name, length) asked: the option's bytes, its length (length-0 queries) or -errno */
  sockopts: (Buffer | number)[];
}

/** A packet socket's ring (struct packet_diag_ring). */
export interface PacketRingDiag {
  blockSize: number; blockNr: number; frameSize: number; frameNr: number; retireTmo: number; sizeofPriv: number; features: number;
}

/** An AF_PACKET socket as sock_diag describes it. */
export interface PacketSocketDiag {
  ino: number;
  /** SOCK_RAW 3, SOCK_DGRAM 2, SOCK_PACKET 10 */
  type: number;
  /** its protocol as the socket keeps it (network byte order, as socket(2) takes it) */
  protocol: number;
  /** bound interface (0: all) */
  ifindex: number;
  version: number;
  reserve: number;
  copyThresh: number;
  tstamp: number;
  /** PDI_RUNNING 1, PDI_AUXDATA 2, PDI_ORIGDEV 4, PDI_VNETHDR 8, PDI_LOSS 16 */
  flags: number;
  /** memberships (PACKET_ADD_MEMBERSHIP), each with how many times it was added */
  mclist: { index: number; count: number; type: number; addr: Buffer }[];
  /** id | type << 16 (PACKET_FANOUT's value), when in a fanout group */
  fanout?: number;
  rxRing?: PacketRingDiag;
  txRing?: PacketRingDiag;
}

export interface UnixSocketDiag {
  ino: number;
  /** SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 */
  type: number;
  /** TCP_ESTABLISHED 1 (connected), TCP_CLOSE 7, TCP_LISTEN 10 */
  state: number;
  /** inode of the peer socket, 0 for none */
  peer: number;
  /** bound name (abstract names start with a NUL byte), null when unbound */
  name: Buffer | null;
  rqueue?: number;
  wqueue?: number;
  /** RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 */
  shutdown: number;
  /** the inode a path name is bound to: its device (the kernel's dev_t, major << 20 | minor) and number */
  vfsDev?: number;
  vfsIno?: number;
  /** a listener's connections not yet accepted, in queue order: the client sockets' inodes (0: closed) */
  icons?: number[];
}

export interface SocketQueue {
  sndbuf: number;
  rcvbuf: number;
  /** one Buffer per queued message (stream sockets: all bytes in one) */
  packets: Buffer[];
  /** each message's sender address (a sockaddr_un), null when it had no name or the socket is a stream */
  addrs: (Buffer | null)[];
  /** the descriptors each message carries (SCM_RIGHTS), opened in this process: the caller closes them */
  fds: number[][];
  /** a queued message carries descriptors (SCM_RIGHTS) */
  rights: boolean;
  /** messages came with their senders' credentials (SCM_CREDENTIALS: the socket has SO_PASSCRED) */
  creds: boolean;
  /** a datagram or seqpacket socket's peek stopped at an empty read taken for its end (eofAtZero) */
  zero: boolean;
}

/** What a /dev/net/tun file says of itself (tunInfo). */
export interface TunFileInfo {
  /** the inode of the network namespace the file was opened in */
  netns: number;
  /** the device it is attached to; null: none (opened, never attached) */
  name: string | null;
  /** TUNGETIFF's flags (IFF_TUN/IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_PERSIST, IFF_MULTI_QUEUE...) */
  flags?: number;
  vnethdr?: number;
  sndbuf?: number;
  /** the length of the socket filter a tap holds (TUNGETFILTER), 0 for none */
  filter?: number;
}

/** The file a bound unix socket was bound to (SIOCUNIXFILE): its path now (" (deleted)" once unlinked), device and inode. */
export interface UnixSocketFile {
  path: string;
  dev: number;
  ino: number;
}

export interface SocketInfo {
  /** AF_UNIX 1, AF_INET 2, AF_INET6 10, … */
  domain: number;
  type: number;
  protocol: number;
  listening: boolean;
  reuseaddr: boolean;
  reuseport: boolean;
  v6only: boolean;
  sndbuf: number;
  rcvbuf: number;
  /** raw struct sockaddr of getsockname / getpeername (null: not bound / not connected) */
  local: Buffer | null;
  peer: Buffer | null;
  /** the inode of the network namespace the socket was made in (SIOCGSKNS; 0: the kernel does not say) */
  netns: number;
}

export const addon = nativeAddon<SysNative>(import.meta.url, '@crtools/sys', 'sys');

/** Use another binding (tests); pass undefined to go back to the real one. */
export function setNativeBinding(b: SysNative | undefined): void {
  addon.inject(b);
}

/** Where a failed call happened, for the error. */
export interface FailureContext {
  pid?: number;
  path?: string;
  message?: string;
}

/** The value of a native call, or a Node-shaped syscall error named `syscall` (the name a caller knows it by). */
export function orThrow<T>(r: T | NativeSysError, syscall: string, context: FailureContext = {}): T {
  if (isNativeSysError(r)) throw syscallError(syscall, r.errno, context);
  return r;
}
