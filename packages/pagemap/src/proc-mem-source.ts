/**
 * A page source that reads another process's memory through /proc/PID/mem (pure node:fs).
 * Needs ptrace access to the target (root, or same user with ptrace_scope permitting); the
 * target should be stopped (SIGSTOP, ptrace) for a consistent image. The dump normally uses
 * the parasite or process_vm_readv; this is the dependency-free fallback and test source.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CrtoolsError, ExitCode, syscallError } from '@crtools/common';
import { PAGE_SIZE } from './constants.js';
import type { PageSource } from './writer.js';

export interface ProcMemPageSource extends PageSource {
  close(): void;
}

export function procMemPageSource(pid: number, opts: { procRoot?: string } = {}): ProcMemPageSource {
  const path = `${opts.procRoot ?? '/proc'}/${pid}/mem`;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw syscallError('open', -(err.errno ?? -5), { pid, path });
  }
  let open = true;
  return {
    read(ranges, dest) {
      if (!open) throw new CrtoolsError('PAGEMAP_CLOSED', `${path}: source is closed`, { context: { pid, path } });
      let off = 0;
      for (const r of ranges) {
        const len = r.nrPages * PAGE_SIZE;
        let done = 0;
        while (done < len) {
          let n: number;
          try {
            // positions above 2^53 need a bigint
            n = readSync(fd, dest, off + done, len - done, r.vaddr + BigInt(done) as unknown as number);
          } catch (e) {
            const err = e as NodeJS.ErrnoException;
            throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', `${path}: cannot read ${r.vaddr.toString(16)}+${r.nrPages} pages (${err.code ?? err.message})`, {
              exitCode: ExitCode.FAILED,
              context: { pid, path, vaddr: r.vaddr },
              cause: e,
            });
          }
          if (n <= 0) {
            throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', `${path}: short read at ${(r.vaddr + BigInt(done)).toString(16)}`, {
              exitCode: ExitCode.FAILED,
              context: { pid, path, vaddr: r.vaddr + BigInt(done) },
            });
          }
          done += n;
        }
        off += len;
      }
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/**
 * Adapts a "read memory at address into buffer" function (e.g. the parasite package's
 * process_vm_readv wrapper `(addr, buf, off, len) => readMemory(pid, addr, buf, off, len)`)
 * into a PageSource. A short read means a page vanished: it fails the dump, as in CRIU's
 * dump (only its READ-mode pre-dump tolerates that).
 */
export function pageSourceFromReader(read: (vaddr: bigint, dest: Buffer, offset: number, length: number) => number | Promise<number>, what = 'memory'): PageSource {
  return {
    async read(ranges, dest) {
      let off = 0;
      for (const r of ranges) {
        const len = r.nrPages * PAGE_SIZE;
        let done = 0;
        while (done < len) {
          const n = await read(r.vaddr + BigInt(done), dest, off + done, len - done);
          if (!(n > 0)) {
            throw new CrtoolsError('PAGEMAP_SOURCE_FAULT', `${what}: cannot read ${(r.vaddr + BigInt(done)).toString(16)} (${len - done} bytes left of ${r.vaddr.toString(16)}+${r.nrPages} pages)`, {
              exitCode: ExitCode.FAILED,
              context: { vaddr: r.vaddr + BigInt(done) },
            });
          }
          done += n;
        }
        off += len;
      }
    },
  };
}
