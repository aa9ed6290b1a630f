import { readdirSync, readFileSync, readSync } from 'node:fs';
import { readLimits } from '@crtools/procfs';
import { CrtoolsError, PAGE_SIZE } from '@crtools/common';
import { closeFd, setPipeSize, spliceAll, takeTaskFd } from '@crtools/sys';
import { PARASITE_CMD, PARASITE_STRUCTS } from './gen-abi.js';
import { call, finishBlobCommand, NR, startBlobCommand, type Infection } from './remote.js';

const MAX_IOV = 512;
const O_CLOEXEC = 0o2000000;

export interface PageRun {
  vaddr: bigint;
  nrPages: number;
}

const L = PARASITE_STRUCTS.vmsplice_args;
const I = PARASITE_STRUCTS.iovec;

/**
 * The tracee makes a pipe (its two fds land in the shared area): their numbers in the tracee.
 * We take its read end with pidfd_getfd: opening ours through /proc/OURPID/fd would need the
 * tracee to be allowed to look into crtools, which a task of another user is not.
 */
function remotePipe(inf: Infection): { rd: number; wr: bigint } {
  const r = call(inf, inf.pid, NR.pipe2, [inf.sharedAddr, BigInt(O_CLOEXEC)]);
  if (r < 0n) throw new CrtoolsError('REMOTE_CALL', `task ${inf.pid}: could not make the page pipe (errno ${-r})`, { context: { pid: inf.pid } });
  return { rd: inf.shared!.readInt32LE(0), wr: BigInt(inf.shared!.readInt32LE(4)) };
}

/**
 * The VMSPLICE command's arguments, written into `args`: `pieces` (at most MAX_IOV) into the
 * tracee's pipe end `fd`, its descriptor `closeFd` closed first (-1: none; the read end we
 * took goes with a pipe's first batch, one stop fewer than a close of its own). Returns the
 * part of `args` to send.
 */
function vmspliceArgs(args: Buffer, fd: bigint, closeFd: number, pieces: readonly { base: bigint; len: number }[]): Buffer {
  args.writeInt32LE(Number(fd), L.fields.fd.offset);
  args.writeUInt32LE(pieces.length, L.fields.nr.offset);
  args.writeInt32LE(closeFd, L.fields.close_fd.offset);
  pieces.forEach((r, i) => {
    const at = L.fields.iov.offset + i * I.size;
    args.writeBigUInt64LE(r.base, at + I.fields.base.offset);
    args.writeBigUInt64LE(BigInt(r.len), at + I.fields.len.offset);
  });
  return args.subarray(0, L.fields.iov.offset + pieces.length * I.size);
}

/** A VMSPLICE command's answer: every byte asked for must be in the pipe. */
function expectQueued(inf: Infection, queued: bigint, bytes: number): void {
  if (queued !== BigInt(bytes)) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: vmsplice queued ${queued} of ${bytes} bytes`, { context: { pid: inf.pid } });
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
        if (q.theirRd >= 0) call(inf, inf.pid, NR.close, [BigInt(q.theirRd)]);
        if (q.tracerFd >= 0n) call(inf, inf.pid, NR.close, [q.tracerFd]);
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
      const their = remotePipe(inf);
      const q = { rd: -1, wr: -1, capacity: 0, tracerFd: their.wr, theirRd: their.rd };
      pipes.push(q);
      q.rd = takeTaskFd(inf.pid, q.theirRd);
      q.capacity = setPipeSize(q.rd, size, { pid: inf.pid });
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  const capacity = Math.min(...pipes.map((q) => q.capacity));
  const args = Buffer.alloc(L.size);
  let sent: Buffer = args.subarray(0, 0);
  let turn = 0;

  /** Start the tracee's vmsplice of `runs` into the next pipe; the batch is in flight afterwards. */
  function start(runs: { base: bigint; len: number }[], bytes: number): { q: (typeof pipes)[number]; bytes: number } {
    const q = pipes[turn]!;
    turn = (turn + 1) % pipes.length;
    sent = vmspliceArgs(args, q.tracerFd, q.theirRd, runs);
    startBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent);
    q.theirRd = -1;
    return { q, bytes };
  }

  /** Wait for the batch in flight to be queued in its pipe. */
  function finish(b: { bytes: number }): void {
    expectQueued(inf, finishBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent), b.bytes);
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

/** Pages of a task held in pipes by reference (holdPages), to be read out in order. */
export interface HeldPages {
  /** Pipes holding them. */
  readonly pipes: number;
  /** Bytes held in all. */
  readonly bytes: number;
  /**
   * The next `length` bytes of the pages, in the order they were taken, into `dest` at `offset`
   * (each pipe closed once read out); PAGE_TRANSFER when the pipes end before.
   */
  read(dest: Buffer, offset: number, length: number): void;
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
  // our read ends, each with the bytes still in it, in order
  const pipes: { fd: number; left: number }[] = [];
  const close = () => {
    for (const p of pipes.splice(0)) closeFd(p.fd);
  };
  const args = Buffer.alloc(L.size);
  let total = 0;
  // what the pipes are grown to: pipeBytes, or fs.pipe-max-size once that is refused (above it
  // only with CAP_SYS_RESOURCE); the capacity got, 0 when neither is granted
  let size = pipeBytes;
  const grow = (fd: number): number => {
    for (;;) {
      try {
        return setPipeSize(fd, size, { pid: inf.pid });
      } catch {
        const max = Math.min(pipeMaxSize(), pipeBytes);
        if (size === max) return 0;
        size = max;
      }
    }
  };
  try {
    const list = runs.filter((r) => r.nrPages > 0).map((r) => ({ vaddr: r.vaddr, left: r.nrPages * PAGE_SIZE }));
    let k = 0;
    while (k < list.length) {
      // a pipe of the tracee's: both its ends are closed in the tracee before the next one is made
      const their = remotePipe(inf);
      let theirRd = their.rd;
      let filled = false;
      try {
        const pipe = { fd: takeTaskFd(inf.pid, theirRd), left: 0 };
        pipes.push(pipe);
        const capacity = grow(pipe.fd);
        if (capacity < minPipeBytes) throw new CrtoolsError('PAGES_NOT_HELD', `task ${inf.pid}: a page pipe holds ${capacity} bytes, under ${minPipeBytes}`, { context: { pid: inf.pid } });
        if (pipes.length === 1) {
          // every pipe is a descriptor of ours until the pages are written: all of them must fit
          // under our limit (with room to spare for the rest of the dump), else nothing is held
          const need = Math.ceil(list.reduce((n, r) => n + r.left, 0) / capacity);
          const room = fdRoom();
          if (need > room) throw new CrtoolsError('PAGES_NOT_HELD', `task ${inf.pid}: ${need} page pipes would be needed, ${room} descriptors are left`, { context: { pid: inf.pid } });
        }
        // fill it: one command per MAX_IOV pieces (the first also closes the tracee's read end)
        while (k < list.length && pipe.left < capacity) {
          const pieces: { base: bigint; len: number }[] = [];
          let bytes = 0;
          for (let j = k; j < list.length && pieces.length < MAX_IOV && pipe.left + bytes < capacity; j++) {
            const len = Math.min(list[j]!.left, capacity - pipe.left - bytes);
            pieces.push({ base: list[j]!.vaddr, len });
            bytes += len;
          }
          const sent = vmspliceArgs(args, their.wr, theirRd, pieces);
          startBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent);
          theirRd = -1;
          expectQueued(inf, finishBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent), bytes);
          pipe.left += bytes;
          total += bytes;
          // the pieces taken: whole runs skipped, a run cut short shortened
          for (let done = bytes; done > 0; ) {
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
          if (theirRd >= 0) call(inf, inf.pid, NR.close, [BigInt(theirRd)]);
          call(inf, inf.pid, NR.close, [their.wr]);
        } catch (e) {
          if (filled) throw e;
        }
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  const count = pipes.length;
  return {
    pipes: count,
    bytes: total,
    read(dest, offset, length) {
      let off = offset;
      const end = offset + length;
      while (off < end) {
        const p = pipes[0];
        if (!p) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: the held pages ended ${end - off} bytes early`, { context: { pid: inf.pid } });
        if (p.left === 0) {
          closeFd(p.fd);
          pipes.shift();
          continue;
        }
        const n = readSync(p.fd, dest, off, Math.min(end - off, p.left), null);
        if (n <= 0) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: a page pipe ended ${p.left} bytes early`, { context: { pid: inf.pid } });
        off += n;
        p.left -= n;
      }
    },
    close,
  };
}

/** Whether holdPages declined (pipes too small, or too many for our descriptors): nothing was held, copy instead. */
export function pagesNotHeld(e: unknown): boolean {
  return e instanceof CrtoolsError && e.code === 'PAGES_NOT_HELD';
}
