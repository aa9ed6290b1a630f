/**
 * SysV IPC objects of another task's IPC namespace: read (a segment's contents, a semaphore set's
 * values, a queue's messages copied with MSG_COPY, none consumed) and made again with the same
 * ids, from a thread of this process that joins the namespace and ends with the call.
 */
import { isNativeSysError, syscallError } from '@crtools/common';
import { addon } from './native.js';
import { NS_TYPE } from './process.js';
import type { SysvContents, SysvObject } from './native.js';

/** The kinds of SysV object, as sysvRead/sysvMake number them. */
export const SYSV_KIND = { shm: 0, sem: 1, msg: 2 } as const;
export type SysvKind = keyof typeof SYSV_KIND;

/** The contents of each object (kind, id) of task pid's IPC namespace, in order. */
export function readSysvObjects(pid: number, objs: readonly { kind: SysvKind; id: number }[]): SysvContents[] {
  const r = addon.get().sysvRead(`/proc/${pid}/ns/ipc`, NS_TYPE.ipc, objs.map((o) => ({ kind: SYSV_KIND[o.kind], id: o.id })));
  if (isNativeSysError(r)) throw syscallError(r.syscall, r.errno, { pid });
  return r;
}

/** Make each object again in task pid's IPC namespace, with its id (in order: ids are set one by one). */
/** shmget's flag for a segment on huge pages (the page size's bits, log2 << 26, beside it) */
export const SHM_HUGETLB = 0o4000;

export function makeSysvObjects(pid: number, objs: readonly (Omit<SysvObject, 'kind'> & { kind: SysvKind })[]): void {
  const r = addon.get().sysvMake(`/proc/${pid}/ns/ipc`, NS_TYPE.ipc, objs.map((o) => ({ ...o, kind: SYSV_KIND[o.kind] })));
  if (isNativeSysError(r)) throw syscallError(r.syscall, r.errno, { pid });
}
