import { PAGE_SIZE } from '@crtools/common';
import { parseError, report } from './errors.js';
import { classify, cls, H, H_END, H_INO, H_MAJ, H_MIN, H_PERM, H_PGOFF, H_START, KIND_NAMES, nameOut, parseHeader, PERMS, rawName, splitName, WIDE, wide } from './maps-line.js';
import type { MapsOptions, Vma, VmaKind } from './maps.js';
import { MAP } from './vma-flags.js';

/**
 * Compact form of a maps file: one typed-array column per field, row i is
 * line i. 60,000 areas cost a few MiB and no object per area; `vmaAt` gives
 * the record view of one row.
 */
export interface MapsTable {
  length: number;
  start: BigUint64Array;
  end: BigUint64Array;
  pgoff: BigUint64Array;
  ino: BigUint64Array;
  /** r=1 w=2 x=4 shared=8 */
  permBits: Uint8Array;
  devMajor: Uint16Array;
  devMinor: Uint32Array;
  /** Index into MAPS_KINDS. */
  kind: Uint8Array;
  status: Uint32Array;
  flags: Uint32Array;
  /** 1: " (deleted)" was stripped. */
  deleted: Uint8Array;
  /** 1: the start was moved down one page (stackGuardGapHidden). */
  guardGap: Uint8Array;
  /** 1: CRIU's shmid is the inode (shared anonymous, SysV). */
  shmid: Uint8Array;
  /** Decoded names, '' for none. */
  name: string[];
}

/** VmaKind of each MapsTable.kind code. */
export const MAPS_KINDS: readonly VmaKind[] = KIND_NAMES;

const TWO32 = 4294967296;

function put(col: BigUint64Array, u32: Uint32Array, i: number, v: number, w: bigint): void {
  if (v === WIDE) col[i] = w;
  else {
    u32[2 * i] = v >>> 0;
    u32[2 * i + 1] = (v / TWO32) >>> 0;
  }
}

/**
 * Parse maps text into a MapsTable (same classification, guard gap and error
 * handling as parseMaps).
 */
export function parseMapsTable(text: string, opts?: MapsOptions): MapsTable {
  let cap = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) cap++;
  if (text.length > 0 && text.charCodeAt(text.length - 1) !== 10) cap++;
  const t: MapsTable = {
    length: 0,
    start: new BigUint64Array(cap), end: new BigUint64Array(cap), pgoff: new BigUint64Array(cap), ino: new BigUint64Array(cap),
    permBits: new Uint8Array(cap), devMajor: new Uint16Array(cap), devMinor: new Uint32Array(cap), kind: new Uint8Array(cap),
    status: new Uint32Array(cap), flags: new Uint32Array(cap), deleted: new Uint8Array(cap), guardGap: new Uint8Array(cap),
    shmid: new Uint8Array(cap), name: new Array<string>(cap),
  };
  const s32 = new Uint32Array(t.start.buffer), e32 = new Uint32Array(t.end.buffer), p32 = new Uint32Array(t.pgoff.buffer), i32 = new Uint32Array(t.ino.buffer);
  const gap = !!opts?.stackGuardGapHidden;
  const shmemDev = opts?.shmemDev;
  let prevEnd = 0;
  let n = 0;
  let from = 0;
  let lineNo = 0;
  const len = text.length;
  while (from < len) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = len;
    lineNo++;
    const why = parseHeader(text, from, to);
    if (why !== null) {
      report(opts, parseError(opts?.path, lineNo, why, text.slice(from, to)));
      from = to + 1;
      continue;
    }
    let name = '';
    let deleted = false;
    if (rawName !== '') {
      splitName(rawName);
      name = nameOut.name;
      deleted = nameOut.deleted;
    }
    const bits = H[H_PERM]!;
    const ino = H[H_INO]!;
    classify(name, bits, H[H_MAJ]!, H[H_MIN]!, ino === 0, shmemDev, opts?.hugetlbDevs);
    let start = H[H_START]!;
    const end = H[H_END]!;
    if (gap && (cls.flags & MAP.GROWSDOWN) !== 0 && start !== WIDE && prevEnd !== WIDE && prevEnd < start) {
      start -= PAGE_SIZE;
      t.guardGap[n] = 1;
    }
    prevEnd = end;
    put(t.start, s32, n, start, wide.start);
    put(t.end, e32, n, end, wide.end);
    put(t.pgoff, p32, n, H[H_PGOFF]!, wide.pgoff);
    put(t.ino, i32, n, ino, wide.ino);
    t.permBits[n] = bits;
    t.devMajor[n] = H[H_MAJ]!;
    t.devMinor[n] = H[H_MIN]!;
    t.kind[n] = cls.kind;
    t.status[n] = cls.status;
    t.flags[n] = cls.flags;
    t.deleted[n] = deleted ? 1 : 0;
    t.shmid[n] = cls.shmid ? 1 : 0;
    t.name[n] = name;
    n++;
    from = to + 1;
  }
  t.length = n;
  if (n < cap) t.name.length = n;
  return t;
}

/** The record view of row i. */
export function vmaAt(t: MapsTable, i: number): Vma {
  const bits = t.permBits[i]!;
  const ino = t.ino[i]!;
  return {
    start: t.start[i]!, end: t.end[i]!, perms: PERMS[bits]!, prot: bits & 7, shared: (bits & 8) !== 0, pgoff: t.pgoff[i]!,
    devMajor: t.devMajor[i]!, devMinor: t.devMinor[i]!, ino, name: t.name[i]!, deleted: t.deleted[i] === 1,
    kind: MAPS_KINDS[t.kind[i]!]!, status: t.status[i]!, flags: t.flags[i]!, madv: 0n,
    shmid: t.shmid[i] ? ino : undefined, guardGap: t.guardGap[i] ? true : undefined,
  };
}

/** Every row as a Vma. */
export function* tableVmas(t: MapsTable): Generator<Vma> {
  for (let i = 0; i < t.length; i++) yield vmaAt(t, i);
}
