import { openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { readLimits } from '@crtools/procfs';
import { CrtoolsError, PAGE_SIZE } from '@crtools/common';
import { closeFd, setPipeSize, spliceAll, spliceSome, takeTaskFd } from '@crtools/sys';
import { PARASITE_CMD, PARASITE_STRUCTS } from './gen-abi.js';
import { blobCommandStopped, call, ensureShared, finishBlobCommand, NR, startBlobCommand, type Infection } from './remote.js';
import { DEFAULT_WAIT_MS } from './ptrace.js';

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

/** How long an empty page pipe is waited for before the tracee's command is looked at (ms). */
const PIPE_WAIT_MS = 20;

/**
 * `stream` (the default): the tracee's vmsplice and our splice run at once on the one pipe:
 * each command hands the tracee up to MAX_IOV runs of any length, its vmsplice waits for room
 * whenever the pipe is full, and we empty the pipe into the file while it runs: one ptrace round
 * trip per command instead of one per pipe-full (1,024 for 1 GiB in 1 MiB pipes, ~0.2 ms each
 * here). (The pipe's lock still keeps the tracee's vmsplice and our copy out of it from running
 * at the same moment: the gain is the round trips.) Without it, one pipe-full per command, moved
 * once the command has ended (the tracee never waits).
 * `totalBytes`: at most how much will be moved (when known): a transfer that fits in one pipe
 * gets a pipe sized to it (each pipe costs the tracee two calls besides its vmsplices: making it
 * and closing its write end; its read end, which we take, is closed by the first vmsplice).
 */
export function openPageTransfer(inf: Infection, pipeBytes = 1 << 20, stream = true, totalBytes = Infinity): PageTransfer {
  ensureShared(inf);
  const size = Math.min(pipeBytes, Math.max(PAGE_SIZE, totalBytes));
  const q = { rd: -1, capacity: 0, tracerFd: -1n, theirRd: -1 };
  let devNull = -1;
  const closeAll = () => {
    try {
      // (the tracee's read end, taken by us, is closed by its first vmsplice: here if none ran)
      inf.heldFd = -1;
      if (q.theirRd >= 0) call(inf, inf.pid, NR.close, [BigInt(q.theirRd)]);
      if (q.tracerFd >= 0n) call(inf, inf.pid, NR.close, [q.tracerFd]);
    } catch {
      /* cure unmaps anyway; the fd closes with the task if it is gone */
    }
    q.theirRd = -1;
    q.tracerFd = -1n;
    if (q.rd >= 0) closeFd(q.rd);
    q.rd = -1;
    if (devNull >= 0) closeFd(devNull);
    devNull = -1;
  };
  try {
    const their = remotePipe(inf);
    q.tracerFd = their.wr;
    q.theirRd = their.rd;
    // (a dumper dying during a command of ours: the rescue closes the write end; the read end
    // is closed by the first command itself)
    inf.heldFd = Number(their.wr);
    q.rd = takeTaskFd(inf.pid, q.theirRd);
    q.capacity = setPipeSize(q.rd, size, { pid: inf.pid });
  } catch (e) {
    closeAll();
    throw e;
  }
  const args = Buffer.alloc(L.size);
  const ctx = { pid: inf.pid };

  /** Start the tracee's vmsplice of `pieces` into the pipe. */
  function start(pieces: { base: bigint; len: number }[]): Buffer {
    const sent = vmspliceArgs(args, q.tracerFd, q.theirRd, pieces);
    startBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent);
    q.theirRd = -1;
    return sent;
  }

  /**
   * Empty the pipe into `outFd` while the command runs, up to `bytes`: what was moved. Ends
   * early when nothing comes and the command has ended (its vmsplice failed: finish says how),
   * the tracee is gone, or nothing came for DEFAULT_WAIT_MS (finish then times out).
   */
  function moveWhileRunning(outFd: number, bytes: number): number {
    let moved = 0;
    let quietSince = Date.now();
    while (moved < bytes) {
      const r = spliceSome(q.rd, outFd, bytes - moved, PIPE_WAIT_MS, ctx);
      moved += r.moved;
      if (r.eof || moved === bytes) break;
      if (r.moved > 0) quietSince = Date.now();
      else if (blobCommandStopped(inf, inf.pid) || Date.now() - quietSince > DEFAULT_WAIT_MS) break;
    }
    return moved;
  }

  /** One streamed command: started, its pages moved as they come, ended. */
  function streamed(pieces: { base: bigint; len: number }[], bytes: number, outFd: number): void {
    const sent = start(pieces);
    let moved = 0;
    let failure: unknown;
    try {
      moved = moveWhileRunning(outFd, bytes);
    } catch (e) {
      failure = e;
      // the tracee may be waiting for room in the pipe: what it still queues goes to /dev/null
      // until its command ends, so that it stops at its trap as always
      try {
        devNull = devNull >= 0 ? devNull : openSync('/dev/null', 'w');
        moveWhileRunning(devNull, 2 ** 50);
      } catch {
        /* finish below waits (and times out) if the tracee cannot end */
      }
    }
    let queued: bigint;
    try {
      queued = finishBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent);
    } catch (e) {
      throw failure ?? e;
    }
    if (failure) throw failure;
    expectQueued(inf, queued, bytes);
    // (a command that ended just after a wait for the pipe: the rest of its bytes are there)
    if (moved < bytes) moved += spliceAll(q.rd, outFd, bytes - moved, ctx);
    if (moved !== bytes) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: spliced ${moved} of ${bytes} bytes`, { context: ctx });
  }

  /** One pipe-full: queued by the tracee, then moved. */
  function batched(pieces: { base: bigint; len: number }[], bytes: number, outFd: number): void {
    const sent = start(pieces);
    expectQueued(inf, finishBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, sent), bytes);
    const moved = spliceAll(q.rd, outFd, bytes, ctx);
    if (moved !== bytes) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: spliced ${moved} of ${bytes} bytes`, { context: ctx });
  }

  const limit = stream ? Infinity : q.capacity;
  return {
    capacity: q.capacity,
    transfer(runs, outFd) {
      let total = 0;
      let pending: { base: bigint; len: number }[] = [];
      let bytes = 0;
      const step = () => {
        (stream ? streamed : batched)(pending, bytes, outFd);
        total += bytes;
        pending = [];
        bytes = 0;
      };
      for (const r of runs) {
        let vaddr = r.vaddr;
        let left = r.nrPages * PAGE_SIZE;
        while (left > 0) {
          const take = Math.min(left, limit - bytes);
          pending.push({ base: vaddr, len: take });
          bytes += take;
          vaddr += BigInt(take);
          left -= take;
          if (bytes === limit || pending.length === MAX_IOV) step();
        }
      }
      if (pending.length) step();
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
  ensureShared(inf);
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
      inf.heldFd = Number(their.wr);
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
        inf.heldFd = -1;
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
