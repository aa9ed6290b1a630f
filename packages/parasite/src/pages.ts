import { CrtoolsError, syscallError } from '@crtools/common';
import { PARASITE_CMD, PARASITE_STRUCTS } from './gen-abi.js';
import { native } from './load-native.js';
import { call, runBlobCommand, type Infection } from './remote.js';

const PAGE = 4096;
const MAX_IOV = 512;
const O_WRONLY_CLOEXEC = 0o2000001;
const AT_FDCWD = -100n;
const NR_openat = 257;

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

export function openPageTransfer(inf: Infection, pipeBytes = 1 << 20): PageTransfer {
  const n = native();
  const p = n.pipe(pipeBytes);
  if (typeof p === 'number') throw syscallError('pipe2', -p, { pid: inf.pid });
  const [rd, wr, capacity] = p;
  let tracerFd = -1n;
  try {
    if (!inf.shared) throw new CrtoolsError('NOT_INFECTED', `task ${inf.pid} is not infected`, { context: { pid: inf.pid } });
    // the tracee opens our pipe's write end through /proc: the path goes through the shared area
    const path = `/proc/${process.pid}/fd/${wr}\0`;
    inf.shared.write(path, 0, 'latin1');
    tracerFd = call(inf, inf.pid, NR_openat, [AT_FDCWD, inf.sharedAddr, BigInt(O_WRONLY_CLOEXEC), 0n]);
    if (tracerFd < 0n) throw new CrtoolsError('REMOTE_CALL', `task ${inf.pid}: could not open the page pipe (errno ${-tracerFd})`, { context: { pid: inf.pid } });
  } catch (e) {
    n.closeFd(rd);
    n.closeFd(wr);
    throw e;
  }
  const L = PARASITE_STRUCTS.vmsplice_args;
  const I = PARASITE_STRUCTS.iovec;
  const args = Buffer.alloc(L.size);

  function batch(runs: { base: bigint; len: number }[], bytes: number, outFd: number): void {
    args.writeInt32LE(Number(tracerFd), L.fields.fd.offset);
    args.writeUInt32LE(runs.length, L.fields.nr.offset);
    runs.forEach((r, i) => {
      const at = L.fields.iov.offset + i * I.size;
      args.writeBigUInt64LE(r.base, at + I.fields.base.offset);
      args.writeBigUInt64LE(BigInt(r.len), at + I.fields.len.offset);
    });
    const queued = runBlobCommand(inf, inf.pid, PARASITE_CMD.VMSPLICE, args.subarray(0, L.fields.iov.offset + runs.length * I.size));
    if (queued !== BigInt(bytes)) {
      throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: vmsplice queued ${queued} of ${bytes} bytes`, { context: { pid: inf.pid } });
    }
    const moved = n.spliceAll(rd, outFd, bytes);
    if (moved < 0) throw syscallError('splice', -moved, { pid: inf.pid });
    if (moved !== bytes) throw new CrtoolsError('PAGE_TRANSFER', `task ${inf.pid}: spliced ${moved} of ${bytes} bytes`, { context: { pid: inf.pid } });
  }

  return {
    capacity,
    transfer(runs, outFd) {
      let pending: { base: bigint; len: number }[] = [];
      let bytes = 0;
      let total = 0;
      for (const r of runs) {
        let vaddr = r.vaddr;
        let left = r.nrPages * PAGE;
        while (left > 0) {
          const room = capacity - bytes;
          const take = Math.min(left, room);
          pending.push({ base: vaddr, len: take });
          bytes += take;
          vaddr += BigInt(take);
          left -= take;
          if (bytes === capacity || pending.length === MAX_IOV) {
            batch(pending, bytes, outFd);
            total += bytes;
            pending = [];
            bytes = 0;
          }
        }
      }
      if (pending.length) {
        batch(pending, bytes, outFd);
        total += bytes;
      }
      return total;
    },
    close() {
      try {
        if (tracerFd >= 0n) call(inf, inf.pid, 3 /* close */, [tracerFd]);
      } catch {
        /* cure unmaps anyway; the fd closes with the task if it is gone */
      }
      n.closeFd(rd);
      n.closeFd(wr);
    },
  };
}
