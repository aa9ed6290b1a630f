/**
 * The whole native surface of @crtools/parasite (native/*.cc: ptrace, memory, tasks; see native/parasite.h).
 * Every call is synchronous and must run on the JS main thread (the tracer).
 * A failed system call comes back as { errno, syscall } (NativeSysError); TypeScript turns it
 * into a syscallError() named after the request.
 */
import type { NativeSysError } from '@crtools/common';

type Or<T> = T | NativeSysError;

export interface ParasiteNative {
  seize(pid: number, options: number): Or<number>;
  interrupt(pid: number): Or<number>;
  detach(pid: number, sig: number): Or<number>;
  cont(pid: number, sig: number): Or<number>;
  /** PTRACE_SYSCALL: run until the next system call entry or exit */
  syscallStep(pid: number, sig: number): Or<number>;
  singleStep(pid: number, sig: number): Or<number>;
  getSiginfo(pid: number, buf: Buffer): Or<number>;
  listen(pid: number): Or<number>;
  /** PTRACE_SETOPTIONS (e.g. PTRACE_O_SUSPEND_SECCOMP) */
  setOptions(pid: number, options: number): Or<number>;
  /** PTRACE_SECCOMP_GET_FILTER: instructions of filter `index` (0 = oldest) copied into buf (at least 4096 * 8 bytes) */
  seccompFilter(pid: number, index: number, buf: Buffer): Or<number>;
  /** PTRACE_SECCOMP_GET_METADATA: the flags of filter `index` (SECCOMP_FILTER_FLAG_LOG) */
  seccompMetadata(pid: number, index: number): Or<number>;
  /** waitpid(pid, __WALL|WNOHANG) polled until timeoutMs: pid 0 = timed out. */
  wait(pid: number, timeoutMs: number): Or<{ pid: number; status: number }>;
  /** state 0: nothing to collect, 1: stopped (status: signal | event << 8), 2: exited */
  peekStop(tid: number): Or<{ state: 0 | 1 | 2; status: number }>;
  getRegs(pid: number, buf: Buffer): Or<number>;
  setRegs(pid: number, buf: Buffer): Or<number>;
  /** Bytes the kernel filled. */
  getRegset(pid: number, type: number, buf: Buffer): Or<number>;
  setRegset(pid: number, type: number, buf: Buffer): Or<number>;
  getSigmask(pid: number): Or<bigint>;
  setSigmask(pid: number, mask: bigint): Or<number>;
  /** Number of 128-byte siginfo records copied into buf. */
  peekSiginfo(pid: number, shared: boolean, offset: number, buf: Buffer): Or<number>;
  rseqConfig(pid: number, buf: Buffer): Or<number>;
  peek(pid: number, addr: bigint): Or<bigint>;
  poke(pid: number, addr: bigint, word: bigint): Or<number>;
  vmRead(pid: number, addr: bigint, buf: Buffer, offset: number, length: number): Or<number>;
  vmWrite(pid: number, addr: bigint, buf: Buffer, offset: number, length: number): Or<number>;
  /** A Buffer over mmap(fd, MAP_SHARED), unmapped when garbage-collected. */
  mapShared(fd: number, length: number): Or<Buffer>;
  /** Start path as a grandchild in its own session (not Node's child); its pid. */
  spawnDetached(path: string, argv: string[]): Or<number>;
  tgkill(tgid: number, tid: number, sig: number): Or<number>;
  /** PTRACE_GET_THREAD_AREA: 16-byte struct user_desc for GDT entry index. */
  getThreadArea(pid: number, index: number, buf: Buffer): Or<number>;
}
