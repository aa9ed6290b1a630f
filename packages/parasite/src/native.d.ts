/**
 * The whole native surface of @crtools/parasite (native/parasite.cc).
 * Every call is synchronous and must run on the JS main thread (the tracer).
 * Numbers < 0 are -errno; TypeScript turns them into syscallError()s.
 */
export interface ParasiteNative {
  seize(pid: number, options: number): number;
  interrupt(pid: number): number;
  detach(pid: number, sig: number): number;
  cont(pid: number, sig: number): number;
  listen(pid: number): number;
  /** waitpid(pid, __WALL|WNOHANG) polled until timeoutMs: pid 0 = timed out, < 0 = -errno. */
  wait(pid: number, timeoutMs: number): { pid: number; status: number };
  getRegs(pid: number, buf: Buffer): number;
  setRegs(pid: number, buf: Buffer): number;
  /** Bytes the kernel filled, or -errno. */
  getRegset(pid: number, type: number, buf: Buffer): number;
  setRegset(pid: number, type: number, buf: Buffer): number;
  getSigmask(pid: number): bigint | number;
  /** Number of 128-byte siginfo records copied into buf, or -errno. */
  peekSiginfo(pid: number, shared: boolean, offset: number, buf: Buffer): number;
  rseqConfig(pid: number, buf: Buffer): number;
  peek(pid: number, addr: bigint): bigint | number;
  poke(pid: number, addr: bigint, word: bigint): number;
  vmRead(pid: number, addr: bigint, buf: Buffer, offset: number, length: number): number;
  vmWrite(pid: number, addr: bigint, buf: Buffer, offset: number, length: number): number;
  /** A Buffer over mmap(fd, MAP_SHARED), unmapped when garbage-collected, or -errno. */
  mapShared(fd: number, length: number): Buffer | number;
  /** Start path as a grandchild in its own session (not Node's child); its pid or -errno. */
  spawnDetached(path: string, argv: string[]): number;
  tgkill(tgid: number, tid: number, sig: number): number;
  /** PTRACE_GET_THREAD_AREA: 16-byte struct user_desc for GDT entry index. */
  getThreadArea(pid: number, index: number, buf: Buffer): number;
  /** kcmp(2): 0 when both name the same kernel object. */
  kcmp(pid1: number, pid2: number, type: number, idx1: number, idx2: number): number;
  clockGettime(clockId: number): [number, number] | number;
  /** Buffered bytes of the pipe behind fd (tee'd, not consumed) and its capacity. */
  peekPipe(fd: number): { size: number; data: Buffer } | number;
  /** Every AF_UNIX socket of this network namespace (NETLINK_SOCK_DIAG), or -errno. */
  unixDiag(): UnixSocketDiag[] | number;
  /** The receive queue of the task's socket at fd (peeked, not consumed) and its buffer sizes, or -errno. */
  sockQueue(pid: number, fd: number): SocketQueue | number;
  /** What a copy of the task's socket at fd tells through getsockopt/getsockname/getpeername, or -errno. */
  sockInfo(pid: number, fd: number): SocketInfo | number;
  /** Listen backlog of the listening TCP socket with that inode (sock_diag), or -errno. */
  listenBacklog(family: number, ino: number): number;
  /** pipe2(O_CLOEXEC) with F_SETPIPE_SZ(size): [read fd, write fd, capacity], or -errno. */
  pipe(size: number): [number, number, number] | number;
  /** splice(2) from a pipe to fdOut (at its file position) until len bytes moved; bytes or -errno. */
  spliceAll(fdIn: number, fdOut: number, len: number): number;
  closeFd(fd: number): number;
  cpuid(leaf: number, subleaf: number): [number, number, number, number];
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
