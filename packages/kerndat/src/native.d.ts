/**
 * The whole native surface of @crtools/kerndat (native/*.cc, one file per probe; see native/kerndat.h).
 * A failed system call comes back as { errno, syscall } (NativeSysError); TypeScript turns it
 * into a syscall error or a probe answer. What a probe measures (each ptrace request's errno,
 * how a probe child ended) is plain data.
 */
import type { NativeSysError } from '@crtools/common';

/** An argument of a raw system call: integers, or a Buffer passed as its address. */
export type SyscallArg = number | bigint | Buffer | boolean | null | undefined;

export interface ChildStatus {
  pid: number;
  timedOut: boolean;
  exited: boolean;
  /** exit code, -1 if it did not exit */
  code: number;
  /** terminating signal, 0 if none */
  signal: number;
}

export interface PtraceProbeResult {
  error?: string;
  /** errno of each request, 0 when it worked */
  seize?: number;
  interrupt?: number;
  interruptStop?: boolean;
  peeksiginfo?: number;
  getsigmask?: number;
  suspendSeccomp?: number;
  seccompGetFilter?: number;
  seccompFilterLen?: number;
  getRseqConf?: number;
  rseqConf?: { rseq_abi_pointer: bigint; rseq_abi_size: number; signature: number; flags: number };
  getregsetXstate?: number;
  xstateSize?: number;
  pokeDebugreg?: number;
  breakpointHit?: boolean;
}

export interface KerndatNative {
  /** syscall(2) with up to 6 arguments; Buffers are passed as pointers to their bytes. */
  syscall(nr: number, ...args: SyscallArg[]): bigint | NativeSysError;
  /** Address of a Buffer's bytes (to build iovecs and other pointer-bearing structs). */
  addressOf(buf: Buffer): bigint;
  /** Fork a child that stops itself, seize it and try what a dumper needs; the child is reaped. */
  ptraceProbe(opts?: { seccomp?: boolean; timeoutMs?: number }): PtraceProbeResult | NativeSysError;
  /** Fork a child running one raw-syscall routine; returns how it ended (reaped). */
  forkProbe(
    kind: 'mremap_special' | 'sigqueueinfo' | 'arch_map_vdso' | 'clone_parent_newpid' | 'loginuid' | 'overlayfs_maps' | 'mseal' | 'link_nsid' | 'autofs',
    args?: Array<bigint | number>,
    timeoutMs?: number,
    /** overlayfs_maps, autofs: an empty directory the child mounts over in its own mount namespace */
    path?: string,
  ): ChildStatus | NativeSysError;
  // (overlayfs_maps and autofs exit with NO_SUCH_FS_EXIT when mount(2) does not know the filesystem)
  /**
   * Fork a child that moves its [vdso] (start, size) elsewhere and stops; return
   * its /proc/PID/maps read while stopped. The child is killed and reaped.
   */
  vdsoMoveProbe(
    start: bigint,
    size: bigint,
    timeoutMs?: number,
  ): { pid: number; newStart: bigint; stopped: boolean; maps?: string; exitCode?: number } | NativeSysError;
  /** clone3() a child with set_tid = [tid]; the child exits at once and is reaped. Its pid. */
  clone3SetTid(tid: number): number | NativeSysError;
}
