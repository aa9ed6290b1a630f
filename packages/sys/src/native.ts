import type { TcpConnState, TcpRestoreArgs } from './tcp.js';
import { isNativeSysError, nativeAddon, syscallError, type NativeSysError } from '@crtools/common';

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
  /** clock_gettime(2): [seconds, nanoseconds] */
  clockGettime(clockId: number): [number, number] | NativeSysError;
  // pipes.cc
  /** Buffered bytes of the pipe behind fd (tee'd, not consumed) and its capacity. */
  peekPipe(fd: number): { size: number; data: Buffer } | NativeSysError;
  /** pipe2(O_CLOEXEC) with F_SETPIPE_SZ(size): [read fd, write fd, capacity]. */
  pipe(size: number): [number, number, number] | NativeSysError;
  /** splice(2) from a pipe to fdOut (at its file position) until len bytes moved; the bytes moved. */
  spliceAll(fdIn: number, fdOut: number, len: number): number | NativeSysError;
  closeFd(fd: number): number | NativeSysError;
  /** F_SETPIPE_SZ(size) on a pipe; the capacity it then has. */
  setPipeSize(fd: number, size: number): number | NativeSysError;
  // sockets.cc
  /** Every AF_UNIX socket of this network namespace (NETLINK_SOCK_DIAG). */
  unixDiag(): UnixSocketDiag[] | NativeSysError;
  /** The receive queue of the task's socket at fd (peeked, not consumed) and its buffer sizes. */
  sockQueue(pid: number, fd: number): SocketQueue | NativeSysError;
  /** What a copy of the task's socket at fd tells through getsockopt/getsockname/getpeername. */
  sockInfo(pid: number, fd: number): SocketInfo | NativeSysError;
  /** Listen backlog of the listening TCP socket with that inode (sock_diag); ENOENT: none. */
  listenBacklog(family: number, ino: number): number | NativeSysError;
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
  /** MADV_GUARD_INSTALL on a page of a fresh anonymous mapping of ours: 0, or why not */
  guardProbe(): number | NativeSysError;
  // cpu.cc
  /** cpuid(leaf, subleaf) -> [eax, ebx, ecx, edx] */
  cpuid(leaf: number, subleaf: number): [number, number, number, number];
  /** xgetbv(index); 0n when the OS has not enabled XSAVE */
  xgetbv(index: number): bigint;
  // tcp.cc
  /** tcpi_state of TCP_INFO */
  tcpState(fd: number): number | NativeSysError;
  /** TCP_REPAIR on (1) or off (0) */
  tcpRepair(fd: number, on: number): number | NativeSysError;
  /** a repair-mode socket's connection state and queues (peeked) */
  tcpSave(fd: number): TcpConnState | NativeSysError;
  /** a socket made in repair mode into the connection described; its descriptor */
  tcpRestore(args: TcpRestoreArgs): number | NativeSysError;
  setSockopt(fd: number, level: number, name: number, value: Buffer): number | NativeSysError;
  setFileFlags(fd: number, flags: number): number | NativeSysError;
  /** connections waiting in the accept queue of the listening TCP socket with that inode (sock_diag) */
  listenPending(family: number, ino: number): number | NativeSysError;
  // files.ts
  /** lseek(2): the resulting offset (SEEK_DATA/SEEK_HOLE past the data: ENXIO) */
  seekFile(fd: number, offset: bigint, whence: number): bigint | NativeSysError;
  /** futimens(2) with both times given */
  setFileTimes(fd: number, atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number): number | NativeSysError;
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
  /** FIONREAD (pipes, sockets), SIOCOUTQ (sockets) */
  nread: number;
  outq: number;
  /** fstatfs f_type */
  fsType: number;
  /** per (level, name, length) asked: the option's bytes, its length (length-0 queries) or -errno */
  sockopts: (Buffer | number)[];
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
  /** a queued message carries descriptors (SCM_RIGHTS) */
  rights: boolean;
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
