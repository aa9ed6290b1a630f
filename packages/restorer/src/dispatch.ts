/**
 * CPU dispatch after a move to a CPU with fewer features.
 *
 * glibc (and any library with IFUNC functions) picks CPU-specific variants of its string and
 * memory functions once, when the process starts, and writes each choice into a GOT slot
 * (R_X86_64_IRELATIVE relocations; calls from other objects bind to the same choice). A task
 * dumped on a CPU with AVX-512 keeps AVX-512 variants, and dies with SIGILL on a CPU without it
 * at its next strlen. When a library the task maps is the very file this process maps too
 * (same device and inode), this process's own GOT holds the choice made for this CPU at every
 * IRELATIVE slot: those slots get our choice (moved to the task's load address), and every GOT
 * slot of the task's other objects that was bound to one of the old choices gets the new one.
 *
 * Not covered: slots not bound yet (lazy binding resolves them later with the CPU description
 * the task's ld.so took at start-up), and pointers to such functions kept outside GOTs.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { TaskPlan } from './plan.js';
import { selfMappings } from './hole.js';
import { decodeDev } from '@crtools/images/facts';
import { PAGE_SIZE_BIGINT } from '@crtools/common';

export interface MemoryPatch {
  addr: bigint;
  value: bigint;
}

interface ElfFacts {
  /** ET_DYN: addresses are relative to the load base */
  dyn: boolean;
  /** r_offset of every IRELATIVE relocation */
  irelative: bigint[];
  /** .got and .got.plt: [address, size] */
  gots: [bigint, number][];
}

const R_X86_64_IRELATIVE = 37n;

function readAt(fd: number, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, off + got);
    if (n <= 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

/** What the dispatch fix needs of an ELF file, or undefined when it is not an x86-64 ELF object. */
export function elfFacts(path: string): ElfFacts | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const h = readAt(fd, 0, 64);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1 || h.readUInt16LE(18) !== 62) return undefined;
    const type = h.readUInt16LE(16);
    const shoff = Number(h.readBigUInt64LE(40));
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);
    const shstrndx = h.readUInt16LE(62);
    if ((type !== 2 && type !== 3) || !shoff || shentsize < 64 || shnum === 0 || shnum > 4096) return undefined;
    const shdrs = readAt(fd, shoff, shnum * shentsize);
    if (shdrs.length < shnum * shentsize) return undefined;
    const sh = (i: number) => {
      const o = i * shentsize;
      return {
        name: shdrs.readUInt32LE(o),
        type: shdrs.readUInt32LE(o + 4),
        addr: shdrs.readBigUInt64LE(o + 16),
        offset: Number(shdrs.readBigUInt64LE(o + 24)),
        size: Number(shdrs.readBigUInt64LE(o + 32)),
        entsize: Number(shdrs.readBigUInt64LE(o + 56)),
      };
    };
    const strs = shstrndx < shnum ? sh(shstrndx) : undefined;
    const names = strs ? readAt(fd, strs.offset, Math.min(strs.size, 1 << 20)) : Buffer.alloc(0);
    const nameOf = (off: number): string => {
      const end = names.indexOf(0, off);
      return off < names.length && end > off ? names.toString('latin1', off, end) : '';
    };
    const facts: ElfFacts = { dyn: type === 3, irelative: [], gots: [] };
    for (let i = 0; i < shnum; i++) {
      const s = sh(i);
      if (s.type === 4 /* SHT_RELA */ && s.size > 0 && s.size <= 64 << 20) {
        const ent = s.entsize || 24;
        const rel = readAt(fd, s.offset, s.size);
        for (let o = 0; o + 24 <= rel.length; o += ent) {
          if ((rel.readBigUInt64LE(o + 8) & 0xffffffffn) === R_X86_64_IRELATIVE) facts.irelative.push(rel.readBigUInt64LE(o));
        }
      } else if (s.type === 1 /* SHT_PROGBITS */ && (nameOf(s.name) === '.got' || nameOf(s.name) === '.got.plt') && s.size > 0) {
        facts.gots.push([s.addr, s.size]);
      }
    }
    return facts;
  } finally {
    closeSync(fd);
  }
}

function devIno(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    const { major, minor } = decodeDev(st.dev);
    return `${major}:${minor}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** The files this process maps, by device:inode: load base and end. */
export function selfObjects(): Map<string, { base: bigint; end: bigint }> {
  const out = new Map<string, { base: bigint; end: bigint }>();
  for (const m of selfMappings()) {
    if (m.devIno.endsWith(':0') || !m.name.startsWith('/')) continue;
    const o = out.get(m.devIno);
    if (!o && m.offset === 0n) out.set(m.devIno, { base: m.start, end: m.end });
    else if (o && m.start >= o.base && m.end > o.end) o.end = m.end;
  }
  return out;
}

interface Reader {
  read(addr: bigint): bigint | undefined;
  close(): void;
}

/** u64s of the task's memory as dumped (its pages images); undefined when not dumped. */
function dumpedReader(task: TaskPlan): Reader {
  const fds = new Map<string, number>();
  const read = (addr: bigint): bigint | undefined => {
    for (const r of task.pages) {
      if (addr < r.vaddr || addr + 8n > r.vaddr + r.npages * PAGE_SIZE_BIGINT) continue;
      const path = r.path ?? task.pagesPath;
      if (!path) return undefined;
      let fd = fds.get(path);
      if (fd === undefined) {
        try {
          fd = openSync(path, 'r');
        } catch {
          return undefined;
        }
        fds.set(path, fd);
      }
      const b = readAt(fd, Number(r.offset + addr - r.vaddr), 8);
      return b.length === 8 ? b.readBigUInt64LE(0) : undefined;
    }
    return undefined;
  };
  return { read, close: () => fds.forEach((fd) => closeSync(fd)) };
}

/** u64s of this process's memory. */
function selfReader(): Reader {
  const fd = openSync('/proc/self/mem', 'r');
  const b = Buffer.alloc(8);
  const read = (addr: bigint): bigint | undefined => {
    try {
      return readSync(fd, b, 0, 8, addr) === 8 ? b.readBigUInt64LE(0) : undefined;
    } catch {
      return undefined;
    }
  };
  return { read, close: () => closeSync(fd) };
}

/**
 * The writes that re-point the task's IFUNC choices at this CPU's (see the module comment);
 * empty when no library of the task is one this process has loaded.
 */
export function dispatchPatches(task: TaskPlan, self = selfObjects()): MemoryPatch[] {
  // each mapped file once: its lowest private mapping at file offset 0 is its load base
  const objects = new Map<string, bigint>();
  for (const v of task.vmas) {
    if (v.kind !== 'file-private' || !v.path || v.pgoff !== 0n || v.shmem !== undefined || v.ghost !== undefined) continue;
    const b = objects.get(v.path);
    if (b === undefined || v.start < b) objects.set(v.path, v.start);
  }
  const writable = (a: bigint): boolean => task.vmas.some((v) => (v.kind === 'anon' || v.kind === 'file-private') && a >= v.start && a + 8n <= v.end);
  const dumped = dumpedReader(task);
  const mine = selfReader();
  try {
    return findPatches(objects, writable, dumped.read, mine.read, self);
  } finally {
    dumped.close();
    mine.close();
  }
}

function findPatches(
  objects: Map<string, bigint>,
  writable: (a: bigint) => boolean,
  dumped: (a: bigint) => bigint | undefined,
  mine: (a: bigint) => bigint | undefined,
  self: Map<string, { base: bigint; end: bigint }>,
): MemoryPatch[] {
  const patches = new Map<bigint, bigint>();
  const moved = new Map<bigint, bigint>();
  const facts = new Map<string, ElfFacts | undefined>();
  for (const path of objects.keys()) facts.set(path, elfFacts(path));
  for (const [path, base] of objects) {
    const f = facts.get(path);
    const key = devIno(path);
    const ours = key === undefined ? undefined : self.get(key);
    if (!f || ours === undefined || f.irelative.length === 0) continue;
    const bt = f.dyn ? base : 0n;
    const bs = f.dyn ? ours.base : 0n;
    for (const off of f.irelative) {
      const old = dumped(bt + off);
      const now = mine(bs + off);
      // a resolver may return something else than a function of its own object (glibc's
      // cache-size one returns 0): only addresses inside the object move with it
      if (old === undefined || now === undefined || now < ours.base || now >= ours.end) continue;
      const want = now - bs + bt;
      if (old === want || !writable(bt + off)) continue;
      patches.set(bt + off, want);
      if (!moved.has(old)) moved.set(old, want);
    }
  }
  if (moved.size === 0) return [];
  for (const [path, base] of objects) {
    const f = facts.get(path);
    if (!f) continue;
    const bt = f.dyn ? base : 0n;
    for (const [addr, size] of f.gots) {
      for (let a = bt + addr; a + 8n <= bt + addr + BigInt(size); a += 8n) {
        if (patches.has(a)) continue;
        const v = dumped(a);
        const want = v === undefined ? undefined : moved.get(v);
        if (want !== undefined && writable(a)) patches.set(a, want);
      }
    }
  }
  return [...patches].map(([addr, value]) => ({ addr, value }));
}
