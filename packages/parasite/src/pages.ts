import { readdirSync, readFileSync } from 'node:fs';
import { readLimits } from '@crtools/procfs';
import { CrtoolsError, PAGE_SIZE } from '@crtools/common';
import { closeFd, setPipeSize, spliceAll, takeTaskFd } from '@crtools/sys';
import { PARASITE_CMD, PARASITE_STRUCTS } from './gen-abi.js';
import { call, finishBlobCommand, startBlobCommand, type Infection } from './remote.js';

const MAX_IOV = 512;
const O_CLOEXEC = 0o2000000;
const NR_pipe2 = 293;

export interface PageRun {
  vaddr: bigint;
  nrPages: number;
}

/**
 * Zero-copy page transfer (CRIU's way): the parasite vmsplices the tracee's pages into a pipe
 * of ours (pages are referenced, not copied), and we splice the pipe into the output file.
 * Only valid while the process is infected.
 */
export interface PageTransfer {
  /** Bytes one batch may hold (the pipe's capacity). */
  readonly capacity: number;
  /** Move the pages of `runs` (in order) to the current position of fd `outFd`; returns bytes. */
  transfer(runs: readonly PageRun[], outFd: number): number;
  /** Close both pipe ends (ours and the tracee's). Never throws. */
  close(): void;
}

/**
 * `totalBytes`: at most how much will be moved (when known): a transfer that fits in one pipe
 * gets one, sized to it (each pipe costs the tracee two calls besides its vmsplices: making it
 * and closing its write end; its read end, which we take, is closed by the first vmsplice),
 * and never overlaps (there is no next batch).
 */
export function openPageTransfer(inf: Infection, pipeBytes = 1 << 20, overlap = false, totalBytes = Infinity): PageTransfer {
  if (!inf.shared) throw new CrtoolsError('NOT_INFECTED', `task ${inf.pid} is not infected`, { context: { pid: inf.pid } });
  // two pipes when overlapping: the tracee vmsplices the next batch into one while we splice the
  // other into the file; one otherwise (each batch drained before the next is started)
  const nPipes = overlap && totalBytes > pipeBytes ? 2 : 1;
  overlap = nPipes === 2;
  const size = Math.min(pipeBytes, Math.max(PAGE_SIZE, totalBytes));
  const pipes: { rd: number; wr: number; capacity: number; tracerFd: bigint; theirRd: number }[] = [];
  const closeAll = () => {
    for (const q of pipes) {
      try {
        // (the tracee's read end, taken by us, is closed by its first vmsplice: here if none ran)
        if (q.theirRd >= 0) call(inf, inf.pid, 3 /* close */, [BigInt(q.theirRd)]);
        if (q.tracerFd >= 0n) call(inf, inf.pid, 3 /* close */, [q.tracerFd]);
      } catch {
        /* cure unmaps anyway; the fd closes with the task if it is gone */
      }
      if (q.rd >= 0) closeFd(q.rd);
      if (q.wr >= 0) closeFd(q.wr);
    }
    pipes.length = 0;
  };
  try {
    for (let i = 0; i < nPipes; i++) {
      // the tracee makes the pipe (its two fds land in the shared area) and we take the read end
      // with pidfd_getfd: opening ours through /proc/OURPID/fd would need the tracee to be
      // allowed to look into crtools, which a task of another user is not
      const r = call(inf, inf.pid, NR_pipe2, [inf.sharedAddr, BigInt(O_CLOEXEC)]);
      if (r < 0n) throw new CrtoolsError('REMOTE_CALL', `task ${inf.pid}: could not make the page pipe (errno ${-r})`, { context: { pid: inf.pid } });
      const q = { rd: -1, wr: -1, capacity: 0, tracerFd: BigInt(inf.shared.readInt32LE(4)), theirRd: inf.shared.readInt32LE(0) };
      pipes.push(q);
      q.rd = takeTaskFd(inf.pid, q.theirRd);
      q.capacity = setPipeSize(q.rd, size, { pid: inf.pid });
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  const capacity = Math.min(...pipes.map((q) => q.capacity));
  const L = PARASITE_STRUCTS.vmsplice_args;
  const I = PARASITE_STRUCTS.iovec;
  const args = Buffer.alloc(L.size);
  let argsLen = 0;
  let turn = 0;

  /** Start the tracee's vmsplice of `runs` into the next pipe; the batch is in flight afterwards. */
  function start(runs: { base: bigint; len: number }[], bytes: number): { q: (typeof pipes)[number]; bytes: number } {
    const q = pipes[turn]!;
    turn = (turn + 1) % pipes.length;
    args.writeInt32LE(Number(q.tracerFd), L.fields.fd.offset);
    args.writeUInt32LE(runs.length, L.fields.nr.offset);
    // the tracee's read end goes with its first batch (one stop fewer than a close of its own)
    args.writeInt32LE(q.theirRd, L.fields.close_fd.offset);
    runs.forEach((r, i) => {
      const at = L.fields.iov.offset + i * I.size;
      args.writeBigUInt64LE(r.base, at + I.fields.base.offset);
      args.writeBigUInt64LE(BigInt(r.len), at + I.fields.len.offset);
    });
    argsLen = L.fields.iov.offset + runs.length * I.size;
    startBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, args.subarray(0, argsLen));
    q.theirRd = -1;
    return { q, bytes };
  }

  /** Wait for the batch in flight to be queued in its pipe. */
  function finish(b: { bytes: number }): void {
    const queued = finishBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, args.subarray(0, argsLen));
    if (queued !== BigInt(b.bytes)) {
      throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: vmsplice queued ${queued} of ${b.bytes} bytes`, { context: { pid: inf.pid } });
    }
  }

  /** Move a queued batch from its pipe into the file. */
  function drain(b: { q: (typeof pipes)[number]; bytes: number }, outFd: number): void {
    const moved = spliceAll(b.q.rd, outFd, b.bytes, { pid: inf.pid });
    if (moved !== b.bytes) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: spliced ${moved} of ${b.bytes} bytes`, { context: { pid: inf.pid } });
  }

  return {
    capacity,
    transfer(runs, outFd) {
      let total = 0;
      let queued: { q: (typeof pipes)[number]; bytes: number } | undefined; // in its pipe, not yet drained
      let inFlight: { q: (typeof pipes)[number]; bytes: number } | undefined; // tracee still vmsplicing
      const step = (pending: { base: bigint; len: number }[], bytes: number) => {
        if (!overlap && queued) {
          drain(queued, outFd);
          queued = undefined;
        }
        inFlight = start(pending, bytes);
        try {
          if (queued) drain(queued, outFd); // overlaps with the tracee's vmsplice
          queued = undefined;
        } finally {
          // the tracee must be stopped again before anything else happens, error or not
          const b = inFlight;
          inFlight = undefined;
          finish(b);
          queued = b;
        }
        total += bytes;
      };
      let pending: { base: bigint; len: number }[] = [];
      let bytes = 0;
      for (const r of runs) {
        let vaddr = r.vaddr;
        let left = r.nrPages * PAGE_SIZE;
        while (left > 0) {
          const take = Math.min(left, capacity - bytes);
          pending.push({ base: vaddr, len: take });
          bytes += take;
          vaddr += BigInt(take);
          left -= take;
          if (bytes === capacity || pending.length === MAX_IOV) {
            step(pending, bytes);
            pending = [];
            bytes = 0;
          }
        }
      }
      if (pending.length) step(pending, bytes);
      if (queued) drain(queued, outFd);
      return total;
    },
    close() {
      closeAll();
    },
  };
}

/** fs.pipe-max-size: how far a pipe grows without CAP_SYS_RESOURCE (1 MiB by default). */
function pipeMaxSize(): number {
  try {
    return Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim()) || 1 << 20;
  } catch {
    return 1 << 20;
  }
}

/** Descriptors this process may still open, less a reserve for the rest of the dump. */
function fdRoom(): number {
  const soft = readLimits(process.pid).find((l) => l.resource === 'RLIMIT_NOFILE')?.soft ?? 1024n;
  const max = soft > 1_000_000n ? 1_000_000 : Number(soft);
  return max - readdirSync('/proc/self/fd').length - 256;
}

/** Pages of a task held in pipes by reference (holdPages): each pipe's read end and the bytes queued in it, in order. */
export interface HeldPages {
  readonly pipes: readonly { fd: number; bytes: number }[];
  /** Bytes held in all. */
  readonly bytes: number;
  /** Close the pipe ends still open (what was not read is dropped). Never throws. */
  close(): void;
}

/**
 * Take the pages of `runs` (in order) into pipes by reference, as CRIU's splice pre-dump does:
 * the tracee vmsplices them (no copy) into pipes of `pipeBytes` it makes, whose read ends we
 * take and whose own ends it closes again; the pages are read out of the pipes once the task
 * runs again. A page the task writes after that is copied by the kernel (the pipe holds a
 * reference), and the dirty tracking counts it as written for the next round either way.
 * A pipe grows to `pipeBytes` with CAP_SYS_RESOURCE, else to fs.pipe-max-size (1 MiB): three
 * stops of the tracee per pipe (make it, vmsplice, close its end), which still beats copying
 * the pages while frozen (1 GiB: 0.6 s frozen against 2-3.5 s through /proc/PID/mem here).
 * Throws PAGES_NOT_HELD (nothing held: copy the pages instead) when a pipe cannot grow to
 * `minPipeBytes`, or the pipes would need more descriptors than we may open.
 */
export function holdPages(inf: Infection, runs: readonly PageRun[], pipeBytes = 64 << 20, minPipeBytes = 1 << 20): HeldPages {
  if (!inf.shared) throw new CrtoolsError('NOT_INFECTED', `task ${inf.pid} is not infected`, { context: { pid: inf.pid } });
  const pipes: { fd: number; bytes: number }[] = [];
  const close = () => {
    for (const p of pipes.splice(0)) if (p.fd >= 0) closeFd(p.fd);
  };
  const L = PARASITE_STRUCTS.vmsplice_args;
  const I = PARASITE_STRUCTS.iovec;
  const args = Buffer.alloc(L.size);
  let total = 0;
  try {
    const list = runs.filter((r) => r.nrPages > 0).map((r) => ({ vaddr: r.vaddr, left: r.nrPages * PAGE_SIZE }));
    let k = 0;
    while (k < list.length) {
      // a pipe of the tracee's: both its ends are closed in the tracee before the next one is made
      const r = call(inf, inf.pid, NR_pipe2, [inf.sharedAddr, BigInt(O_CLOEXEC)]);
      if (r < 0n) throw new CrtoolsError('REMOTE_CALL', `task ${inf.pid}: could not make a page pipe (errno ${-r})`, { context: { pid: inf.pid } });
      let theirRd = inf.shared.readInt32LE(0);
      const theirWr = BigInt(inf.shared.readInt32LE(4));
      let capacity = 0;
      let filled = false;
      try {
        const fd = takeTaskFd(inf.pid, theirRd);
        pipes.push({ fd, bytes: 0 });
        // (above fs.pipe-max-size only with CAP_SYS_RESOURCE: then that size)
        for (const size of [pipeBytes, pipeMaxSize()]) {
          try {
            capacity = setPipeSize(fd, Math.min(size, pipeBytes), { pid: inf.pid });
            break;
          } catch {
            capacity = 0;
          }
        }
        if (capacity < minPipeBytes) throw new CrtoolsError('PAGES_NOT_HELD', `task ${inf.pid}: a page pipe holds ${capacity} bytes, under ${minPipeBytes}`, { context: { pid: inf.pid } });
        if (pipes.length === 1) {
          // every pipe is a descriptor of ours until the pages are written: all of them must fit
          // under our limit (with room to spare for the rest of the dump), else nothing is held
          const left = list.reduce((n, r) => n + r.left, 0);
          const need = Math.ceil(left / capacity);
          const room = fdRoom();
          if (need > room) throw new CrtoolsError('PAGES_NOT_HELD', `task ${inf.pid}: ${need} page pipes would be needed, ${room} descriptors are left`, { context: { pid: inf.pid } });
        }
        const pipe = pipes[pipes.length - 1]!;
        // fill it: one command per 512 pieces (the first also closes the tracee's read end)
        while (k < list.length && pipe.bytes < capacity) {
          let nr = 0;
          let bytes = 0;
          for (let j = k; j < list.length && nr < MAX_IOV && pipe.bytes + bytes < capacity; j++) {
            const take = Math.min(list[j]!.left, capacity - pipe.bytes - bytes);
            const at = L.fields.iov.offset + nr * I.size;
            args.writeBigUInt64LE(list[j]!.vaddr, at + I.fields.base.offset);
            args.writeBigUInt64LE(BigInt(take), at + I.fields.len.offset);
            nr++;
            bytes += take;
          }
          args.writeInt32LE(Number(theirWr), L.fields.fd.offset);
          args.writeUInt32LE(nr, L.fields.nr.offset);
          args.writeInt32LE(theirRd, L.fields.close_fd.offset);
          const argsLen = L.fields.iov.offset + nr * I.size;
          startBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, args.subarray(0, argsLen));
          theirRd = -1;
          const queued = finishBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, args.subarray(0, argsLen));
          if (queued !== BigInt(bytes)) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: vmsplice queued ${queued} of ${bytes} bytes`, { context: { pid: inf.pid } });
          pipe.bytes += bytes;
          total += bytes;
          // the pieces taken: whole runs skipped, a run cut short shortened
          let done = bytes;
          while (done > 0) {
            const run = list[k]!;
            const t = Math.min(run.left, done);
            run.vaddr += BigInt(t);
            run.left -= t;
            done -= t;
            if (run.left === 0) k++;
          }
        }
        filled = true;
      } finally {
        // (its read end, if no vmsplice closed it, and its write end: the tracee keeps neither;
        // a close that fails here must not hide the error that brought us here)
        try {
          if (theirRd >= 0) call(inf, inf.pid, 3 /* close */, [BigInt(theirRd)]);
          call(inf, inf.pid, 3 /* close */, [theirWr]);
        } catch (e) {
          if (filled) throw e;
        }
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  return { pipes, bytes: total, close };
}

/** Whether holdPages declined (pipes too small, or too many for our descriptors): nothing was held, copy instead. */
export function pagesNotHeld(e: unknown): boolean {
  return e instanceof CrtoolsError && e.code === 'PAGES_NOT_HELD';
}
