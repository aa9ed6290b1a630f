/** What the container tests (runc, podman) share: finding the tools and a static busybox. */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import path from 'node:path';

/** Where `name` is on PATH (or in the sbin directories root has), else undefined. */
export function which(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return dirs.map((d) => path.join(d, name)).find((f) => existsSync(f));
}

/** An x86_64 ELF executable with no program interpreter (static: it runs alone in a rootfs). */
export function isStaticElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

/** A static busybox of this machine, if it has one. */
export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((b) => existsSync(b) && isStaticElf(b));

/**
 * The counting loop the container tests run: a line 1, 2, 3... appended to /tmp/count every
 * 0.1 s. (Appended, not rewritten: a rewrite killed by a checkpoint between the truncation and
 * the write leaves the file empty, and the count where it stopped unknown.)
 */
export const COUNTING_LOOP = ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.1; done'];

/** The counter in a COUNTING_LOOP file's text: its last whole line, undefined while there is none. */
export function lastCount(text: string): number | undefined {
  const lines = text.split('\n');
  // (a line without its newline is one being written)
  for (let i = lines.length - 2; i >= 0; i--) {
    const n = Number.parseInt(lines[i]!, 10);
    if (Number.isInteger(n)) return n;
  }
  return undefined;
}
