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
}
