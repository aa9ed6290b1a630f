/**
 * Shared anonymous memory for a restore: each object of the plan is made here, in the restoring
 * process, as a MAP_SHARED|MAP_ANONYMOUS area filled with its pages; the tasks map the very same
 * shmem object through /proc/<this pid>/map_files/<area> (so their mappings are again
 * "/dev/zero (deleted)" shared memory, shared between them as when dumped). Released once the
 * tasks hold their own mappings.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { ExitCode, PAGE_SIZE, PAGE_SIZE_BIGINT, syscallError } from '@crtools/common';
import type { RestorePlan } from './plan.js';
import type { RestorerNative } from './native-api.js';
import { isSysError } from './native.js';
import { RestoreErrorCode, restoreError } from './errors.js';

export interface ShmemObjects {
  /** the path each task opens to map object i */
  paths: string[];
  /** unmap the objects from this process (idempotent) */
  release(): void;
}

const CHUNK = 1 << 20;

export function createShmem(plan: RestorePlan, native: RestorerNative): ShmemObjects {
  const made: { addr: bigint; size: bigint }[] = [];
  const release = () => {
    for (const m of made.splice(0)) native.unmap(m.addr, m.size);
  };
  const paths: string[] = [];
  try {
    for (const [i, o] of (plan.shmem ?? []).entries()) {
      if (o.size <= 0n || o.size % PAGE_SIZE_BIGINT) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: shared memory object ${i} has size ${o.size}`, {}, ExitCode.BAD_INPUT);
      const addr = native.sharedAnon(o.size);
      if (isSysError(addr)) throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot create shared memory of ${o.size} bytes: ${syscallError(addr.syscall, addr.errno).message}`);
      made.push({ addr, size: o.size });
      const path = `/proc/${process.pid}/map_files/${addr.toString(16)}-${(addr + o.size).toString(16)}`;
      paths.push(path);
      if (o.pages.length) fill(path, o.size, o.pages);
    }
  } catch (e) {
    release();
    throw e;
  }
  return { paths, release };
}

/** Copy the object's page runs from the pages images into it. */
function fill(path: string, size: bigint, runs: NonNullable<RestorePlan['shmem']>[number]['pages']): void {
  const out = openSync(path, 'r+');
  const buf = Buffer.allocUnsafe(CHUNK);
  const inputs = new Map<string, number>();
  try {
    for (const r of runs) {
      const end = r.vaddr + r.npages * PAGE_SIZE_BIGINT;
      if (end > size) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: shared memory pages at 0x${r.vaddr.toString(16)} lie past its ${size} bytes`, {}, ExitCode.BAD_INPUT);
      if (!r.path) throw restoreError(RestoreErrorCode.BAD_PLAN, 'restore plan: shared memory pages without a pages image', {}, ExitCode.BAD_INPUT);
      let fd = inputs.get(r.path);
      if (fd === undefined) inputs.set(r.path, (fd = openSync(r.path, 'r')));
      let left = Number(r.npages) * PAGE_SIZE;
      let src = Number(r.offset);
      let dst = Number(r.vaddr);
      while (left > 0) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, left), src);
        if (n === 0) throw restoreError(RestoreErrorCode.BAD_PLAN, `${r.path}: ends before the pages of shared memory at offset ${src}`, {}, ExitCode.BAD_INPUT);
        for (let w = 0; w < n; ) w += writeSync(out, buf, w, n - w, dst + w);
        left -= n;
        src += n;
        dst += n;
      }
    }
  } finally {
    closeSync(out);
    for (const fd of inputs.values()) closeSync(fd);
  }
}
