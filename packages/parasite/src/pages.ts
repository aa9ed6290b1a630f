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
