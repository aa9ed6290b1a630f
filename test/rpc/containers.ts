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

/** The counting loop the container tests run: /tmp/count holds 1, 2, 3... every 0.1 s. */
export const COUNTING_LOOP = ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'];
