/**
 * Private: the raw /proc reads the probes need (this process's memory and pagemap words,
 * sysctls); what has a parser (maps, status, mountinfo) comes from @crtools/procfs.
 */
import { accessSync, closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { PAGE_SIZE_BIGINT } from '@crtools/common';

/** Whether this process may access a path in this mode (access(2)). */
export function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

export function readTrim(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

/** Read `len` bytes of this process's memory at `addr` through /proc/self/mem. */
export function readSelfMem(addr: bigint, len: number): Buffer {
  const fd = openSync('/proc/self/mem', 'r');
  try {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, addr + BigInt(got));
      if (n <= 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Write into this process's memory through /proc/self/mem (faults pages in as a write would). */
export function writeSelfMem(addr: bigint, data: Buffer): void {
  const fd = openSync('/proc/self/mem', 'r+');
  try {
    writeSync(fd, data, 0, data.length, Number(addr));
  } finally {
    closeSync(fd);
  }
}

/** The 64-bit pagemap entry of one virtual page of this process. */
export function pagemapEntry(addr: bigint, pageSize = PAGE_SIZE_BIGINT): bigint {
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const buf = Buffer.alloc(8);
    const n = readSync(fd, buf, 0, 8, (addr / pageSize) * 8n);
    if (n !== 8) return 0n;
    return buf.readBigUInt64LE(0);
  } finally {
    closeSync(fd);
  }
}

/** Key/value lines of /proc/self/fdinfo/FD. */
export function fdinfo(fd: number): string {
  return readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
}
