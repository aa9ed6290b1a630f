/** The whole native surface of @crtools/restorer (build/Release/restorer.node). */
import type { NativeSysError } from '@crtools/common';
export type { NativeSysError };

export interface LaunchArgs {
  blob: Buffer;
  plan: Buffer;
  regionStart: bigint;
  regionSize: bigint;
  codeSize: bigint;
  planOff: bigint;
  statusOff: bigint;
  statusSize: bigint;
  stackTop: bigint;
  rootPid: number;
  cloneParent: boolean;
  /** CLONE_NEW* flags: the namespaces the root task is born in */
  cloneFlags: number;
  /**
   * namespaces that exist already (descriptors holding them; setns type; /proc/PID/ns name) the
   * root is born in: the tree's network namespace, --join-ns (mount, time and user ones joined by
   * a helper, which in a user one takes uid and gid where given)
   */
  joinNs?: { fd: number; type: number; name: string; uid?: number; gid?: number }[];
  /** the root is born in a new time namespace with these offsets (timens_offsets text: "clockid sec nsec" lines) */
  timensOffsets?: string;
}

export interface WaitResult {
  pid: number;
  exited?: boolean;
  code?: number;
  signaled?: boolean;
  signal?: number;
}

export interface RestorerNative {
  /** map blob + plan at regionStart and start the root task in the blob */
  launch(args: LaunchArgs): { pid: number; status: ArrayBuffer } | NativeSysError;
  /** publish the go word (1 resume, 2 abort) and wake every task */
  /** publish the word at `offset` of the status area (default: the go word) and wake its waiters */
  go(status: ArrayBuffer, value: number, offset?: number): number;
  /** unmap the launcher's view of the status area */
  release(status: ArrayBuffer): void;
  waitpid(pid: number, nohang: boolean): WaitResult | NativeSysError;
  /**
   * Publish "go", let every thread run to the blob's last wait (park: counted at parkedOff of
   * the status), stop them there, let them on (lastOff) and trace each through its final
   * rt_sigreturn by syscall stops, unmap the
   * restorer region in each task, restore the registers and detach; a task with a stopSigno
   * gets that signal with the detach, before it runs any code of its own (0: it just runs).
   * A task with suspendSeccomp is traced with PTRACE_O_SUSPEND_SECCOMP (its threads install
   * their seccomp filters or strict mode after "go": they act only once it is detached).
   */
  finish(args: {
    status: ArrayBuffer;
    tasks: { tids: number[]; regionStart: bigint; regionSize: bigint; stopSigno: number; suspendSeccomp: boolean }[];
    syscallAddr: bigint;
    timeoutMs: number;
    parkedOff: number;
    lastOff: number;
  }): { ok: true } | (NativeSysError & { pid: number });
  /** a MAP_SHARED|MAP_ANONYMOUS area of `size` bytes in this process (its address); `flags`: MAP_HUGETLB and its size bits */
  sharedAnon(size: bigint, flags?: number): bigint | NativeSysError;
  /** a read-write MAP_SHARED mapping of `size` bytes of descriptor `fd` in this process (its address) */
  mapShared(fd: number, size: bigint): bigint | NativeSysError;
  /** munmap */
  unmap(address: bigint, size: bigint): 0 | NativeSysError;
  /** memfd_create(name, flags): a descriptor of this process */
  memfdCreate(name: string, flags: number): number | NativeSysError;
  /** fcntl(F_ADD_SEALS) with `seals` (none: only asked), then F_GET_SEALS: the seals now set */
  addSeals(fd: number, seals: number): number | NativeSysError;
  /** the launcher's share of the UFFDIO_COPY work, over the status area (see assist) */
  pageHelper(status: ArrayBuffer, args: PageHelperArgs): PageHelperHandle;
  /**
   * Copy pieces of every task that published its userfaultfd; with nothing to take, wait up
   * to waitMs for one to publish. Returns the number of pieces copied.
   */
  assist(helper: PageHelperHandle, waitMs: number): number;
}

declare const pageHelperBrand: unique symbol;
export interface PageHelperHandle {
  readonly [pageHelperBrand]: true;
}

export interface PageHelperArgs {
  tasksOff: number;
  recordSize: number;
  pubOff: number;
  chunk: number;
  /** byte offsets of the status record's fields */
  fields: Record<'state' | 'pid' | 'uffd' | 'chunks' | 'claimed' | 'copied' | 'help_err', number>;
  /** the status record's failed state */
  failed: number;
  /** per task, its runs flagged for UFFDIO_COPY, in plan order */
  tasks: { vaddr: bigint; len: bigint; off: bigint; path: string }[][];
}
