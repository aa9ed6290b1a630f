/**
 * Shared memory for a restore: each object of the plan is made here, in the restoring process,
 * and the tasks take the very same object from here, so that it is shared between them as when
 * dumped. Shared anonymous memory is made by a MAP_SHARED|MAP_ANONYMOUS area of this process,
 * held by a descriptor opened on its map_files link and filled with its pages, which the tasks
 * map (shared, or private: areas mapped through such a descriptor) and open through
 * /proc/<this pid>/fd/<fd> (their mappings and descriptors are again "/dev/zero (deleted)"); on
 * huge pages, the area stays and the tasks map it through /proc/<this pid>/map_files/<area>. A memfd is made with memfd_create under its name (so /proc shows
 * "/memfd:NAME (deleted)" again, on the shmem filesystem), given its size, pages, owner and
 * mode, then its seals; the tasks open each descriptor, and map each area, through
 * /proc/<this pid>/fd/<fd> with the recorded flags, but for the first read-write descriptor of
 * each, which takes this process's own open file (as memfd_create made it: see MemfdFilePlan's
 * heldFd). Released once the tasks hold their own.
 */
import { closeSync, fchmodSync, fchownSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { ExitCode, PAGE_SIZE, PAGE_SIZE_BIGINT, syscallError } from '@crtools/common';
import { hostOwner } from './userns.js';
import { MFD, SEAL } from '@crtools/files/plan';
import { MAP } from '@crtools/procfs';
import type { RestorePlan, ShmemPlan } from './plan.js';
import type { RestorerNative } from './native-api.js';
import { isSysError } from './native.js';
import { RestoreErrorCode, restoreError } from './errors.js';

export interface ShmemObjects {
  /** the path each task opens to map (or, a memfd, to open) object i */
  paths: string[];
  /**
   * this process's descriptor on object i (a memfd's from memfd_create, which the tasks inherit;
   * shared anonymous memory's; huge pages' through map_files)
   */
  fdOf: (number | undefined)[];
  /**
   * Seals that must wait until every task has mapped its areas (F_SEAL_FUTURE_WRITE forbids
   * new writable shared mappings, which a task may hold): set them (before the tasks resume).
   */
  sealLate(): void;
  /** unmap the objects from this process, close the memfds (idempotent) */
  release(): void;
}

const CHUNK = 1 << 20;

export function createShmem(plan: RestorePlan, native: RestorerNative): ShmemObjects {
  const made: { addr: bigint; size: bigint }[] = [];
  const fds: number[] = [];
  const late: { fd: number; seals: number; what: string }[] = [];
  const release = () => {
    for (const m of made.splice(0)) native.unmap(m.addr, m.size);
    for (const fd of fds.splice(0)) closeSync(fd);
  };
  const paths: string[] = [];
  const fdOf: (number | undefined)[] = [];
  try {
    for (const [i, o] of (plan.shmem ?? []).entries()) {
      if (o.memfd) {
        const fd = makeMemfd(native, o, i, fds, late, plan);
        paths.push(`/proc/${process.pid}/fd/${fd}`);
        fdOf.push(fd);
        continue;
      }
      if (o.hugetlb === undefined) {
        const fd = makeAnonShared(native, o, i, fds, plan);
        paths.push(`/proc/${process.pid}/fd/${fd}`);
        fdOf.push(fd);
        continue;
      }
      if (o.size <= 0n || o.size % PAGE_SIZE_BIGINT) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: shared memory object ${i} has size ${o.size}`, {}, ExitCode.BAD_INPUT);
      const addr = native.sharedAnon(o.size, MAP.HUGETLB | o.hugetlb);
      if (isSysError(addr)) throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot create shared memory of ${o.size} bytes on huge pages: ${syscallError(addr.syscall, addr.errno).message}`);
      made.push({ addr, size: o.size });
      paths.push(`/proc/${process.pid}/map_files/${addr.toString(16)}-${(addr + o.size).toString(16)}`);
      // (a descriptor on it too, for tasks that cannot look into this process: launch.ts)
      const fd = openSync(paths[paths.length - 1]!, 'r+');
      fds.push(fd);
      fdOf.push(fd);
      // hugetlbfs has no write(): huge pages are filled through this process's mapping
      fillMapped(addr, o.size, o.pages);
    }
  } catch (e) {
    release();
    throw e;
  }
  const sealLate = () => {
    for (const l of late.splice(0)) addSeals(native, l.fd, l.seals, l.what);
  };
  return { paths, fdOf, sealLate, release };
}

/** F_ADD_SEALS (none when the memfd was born with its only seal), checked to leave exactly `seals` set. */
function addSeals(native: RestorerNative, fd: number, seals: number, what: string): void {
  const now = native.addSeals(fd, seals === SEAL.SEAL ? 0 : seals);
  if (isSysError(now)) throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot seal ${what} (0x${seals.toString(16)}): ${syscallError(now.syscall, now.errno).message}`);
  if (now !== seals) throw restoreError(RestoreErrorCode.LAUNCH, `restore: ${what} has seals 0x${now.toString(16)} here, 0x${seals.toString(16)} were recorded`);
}

/**
 * Shared anonymous memory (not on huge pages) as the kernel makes it for MAP_SHARED|MAP_ANONYMOUS
 * (so that /proc shows it as `/dev/zero (deleted)` again), held by a descriptor of this process
 * (close-on-exec, kept in `fds`) opened on its map_files link, the area itself unmapped again:
 * then given its size (a descriptor may have truncated or grown it), pages, owner and mode.
 */
function makeAnonShared(native: RestorerNative, o: ShmemPlan, i: number, fds: number[], plan: RestorePlan): number {
  if (o.size < 0n) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: shared memory object ${i} has size ${o.size}`, {}, ExitCode.BAD_INPUT);
  // (an empty object is made one page long, then truncated)
  const len = o.size > 0n ? (o.size + PAGE_SIZE_BIGINT - 1n) & ~(PAGE_SIZE_BIGINT - 1n) : PAGE_SIZE_BIGINT;
  const addr = native.sharedAnon(len, 0);
  if (isSysError(addr)) throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot create shared memory of ${o.size} bytes: ${syscallError(addr.syscall, addr.errno).message}`);
  let fd: number;
  try {
    fd = openSync(`/proc/${process.pid}/map_files/${addr.toString(16)}-${(addr + len).toString(16)}`, 'r+');
  } finally {
    native.unmap(addr, len);
  }
  fds.push(fd);
  if (BigInt(len) !== o.size) ftruncateSync(fd, Number(o.size));
  fill(fd, o.size, o.pages);
  if (o.owner) {
    const own = hostOwner(plan, o.owner.uid, o.owner.gid, `shared memory object ${i}`);
    fchownSync(fd, own.uid, own.gid);
    fchmodSync(fd, o.owner.mode & 0o7777);
  }
  return fd;
}

/**
 * memfd_create under the recorded name (without MFD_ALLOW_SEALING when the only seal is
 * F_SEAL_SEAL, as such a memfd was born), then size, pages, owner and mode, then the seals:
 * now, or (with F_SEAL_FUTURE_WRITE) once the tasks have mapped it. The descriptor (this
 * process's, close-on-exec) is kept in `fds`.
 */
function makeMemfd(native: RestorerNative, o: ShmemPlan, i: number, fds: number[], late: { fd: number; seals: number; what: string }[], plan: RestorePlan): number {
  const m = o.memfd!;
  const what = `memfd "${m.name}"`;
  if (o.size < 0n) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: shared memory object ${i} (${what}) has size ${o.size}`, {}, ExitCode.BAD_INPUT);
  const sealing = m.seals !== SEAL.SEAL;
  const huge = o.hugetlb === undefined ? 0 : MFD.HUGETLB | o.hugetlb;
  const fd = native.memfdCreate(m.name, MFD.CLOEXEC | (sealing ? MFD.ALLOW_SEALING : 0) | huge);
  if (isSysError(fd)) throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot create ${what}${huge ? ' on huge pages' : ''}: ${syscallError(fd.syscall, fd.errno).message}`);
  fds.push(fd);
  ftruncateSync(fd, Number(o.size));
  if (!huge) fill(fd, o.size, o.pages);
  else if (o.pages.length) {
    // hugetlbfs has no write(): the pages go in through a mapping of the memfd here
    const addr = native.mapShared(fd, o.size);
    if (isSysError(addr)) throw restoreError(RestoreErrorCode.LAUNCH, `restore: cannot map ${what} (${o.size} bytes on huge pages): ${syscallError(addr.syscall, addr.errno).message}`);
    try {
      fillMapped(addr, o.size, o.pages);
    } finally {
      native.unmap(addr, o.size);
    }
  }
  const own = hostOwner(plan, m.uid, m.gid, what);
  fchownSync(fd, own.uid, own.gid);
  fchmodSync(fd, m.mode & 0o7777);
  if (!sealing) addSeals(native, fd, SEAL.SEAL, what); // checks it was born with F_SEAL_SEAL only
  else if (m.seals & SEAL.FUTURE_WRITE) late.push({ fd, seals: m.seals, what });
  else addSeals(native, fd, m.seals, what);
  return fd;
}

/**
 * Copy the object's page runs from the pages images into it (descriptor `out`, open for
 * writing). Nothing is written at or past `size` (a memfd's last page may be partly past it).
 */
function fill(out: number, size: bigint, runs: ShmemPlan['pages']): void {
  copyRuns(size, runs, (buf, keep, dst) => {
    for (let w = 0; w < keep; ) w += writeSync(out, buf, w, keep - w, dst + w);
  });
}

/**
 * Copy the object's page runs into this process's mapping of it at `addr` (through /proc/self/mem,
 * which writes any mapping: huge pages, which no write(2) on their file can fill).
 */
function fillMapped(addr: bigint, size: bigint, runs: ShmemPlan['pages']): void {
  if (!runs.length) return;
  const mem = openSync('/proc/self/mem', 'r+');
  try {
    copyRuns(size, runs, (buf, keep, dst) => {
      for (let w = 0; w < keep; ) w += writeSync(mem, buf, w, keep - w, Number(addr) + dst + w);
    });
  } finally {
    closeSync(mem);
  }
}

/** The contents of a shared memory object of `size` bytes from its page runs (a SysV segment's). */
export function shmemContents(size: bigint, runs: ShmemPlan['pages']): Buffer {
  const out = Buffer.alloc(Number(size));
  copyRuns(size, runs, (buf, keep, dst) => buf.copy(out, dst, 0, keep));
  return out;
}

/** Each piece of the page runs, clipped at `size`, given to `put` at its offset in the object. */
function copyRuns(size: bigint, runs: ShmemPlan['pages'], put: (buf: Buffer, keep: number, dst: number) => void): void {
  const buf = Buffer.allocUnsafe(CHUNK);
  const inputs = new Map<string, number>();
  const roundedSize = (size + PAGE_SIZE_BIGINT - 1n) & ~(PAGE_SIZE_BIGINT - 1n);
  try {
    for (const r of runs) {
      const end = r.vaddr + r.npages * PAGE_SIZE_BIGINT;
      if (end > roundedSize) throw restoreError(RestoreErrorCode.BAD_PLAN, `restore plan: shared memory pages at 0x${r.vaddr.toString(16)} lie past its ${size} bytes`, {}, ExitCode.BAD_INPUT);
      if (!r.path) throw restoreError(RestoreErrorCode.BAD_PLAN, 'restore plan: shared memory pages without a pages image', {}, ExitCode.BAD_INPUT);
      let fd = inputs.get(r.path);
      if (fd === undefined) inputs.set(r.path, (fd = openSync(r.path, 'r')));
      let left = Number(r.npages) * PAGE_SIZE;
      let src = Number(r.offset);
      let dst = Number(r.vaddr);
      while (left > 0) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, left), src);
        if (n === 0) throw restoreError(RestoreErrorCode.BAD_PLAN, `${r.path}: ends before the pages of shared memory at offset ${src}`, {}, ExitCode.BAD_INPUT);
        const keep = Math.max(0, Math.min(n, Number(size) - dst));
        if (keep) put(buf, keep, dst);
        left -= n;
        src += n;
        dst += n;
      }
    }
  } finally {
    for (const fd of inputs.values()) closeSync(fd);
  }
}
