/**
 * Private core of the maps parser: one line's header fields as plain numbers
 * (no allocation per line), and CRIU's classification into scratch variables.
 * maps.ts builds records from it, maps-table.ts typed arrays.
 */
import { MAP, PROT, VMA } from './vma-flags.js';

/** Hex digit value of every UTF-16 code unit, 255 for non-digits (one load per character). */
const HEX = new Uint8Array(65536).fill(255);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

export function hexDigit(c: number): number {
  return HEX[c] ?? 255;
}

/** Where the kernel pads the path to: 25 + 6 * sizeof(void *) - 1 columns, then one space. */
const NAME_COLUMN = 73;
export const DELETED = ' (deleted)';

/** The 16 permission strings, indexed by r=1 w=2 x=4 s=8 bits. */
export const PERMS: string[] = [];
for (let i = 0; i < 16; i++) PERMS.push((i & 1 ? 'r' : '-') + (i & 2 ? 'w' : '-') + (i & 4 ? 'x' : '-') + (i & 8 ? 's' : 'p'));

/** Fields of the last parsed header (exact doubles; see the *Big values when WIDE). */
export const H = new Float64Array(8);
export const H_START = 0, H_END = 1, H_PGOFF = 2, H_MAJ = 3, H_MIN = 4, H_INO = 5, H_PERM = 6, H_NAME = 7;
/** Marks a field in H too wide for a double: the exact value is in `wide`. */
export const WIDE = -1;
export const wide = { start: 0n, end: 0n, pgoff: 0n, ino: 0n };
/** The name as printed (escapes and " (deleted)" still in), '' when none. */
export let rawName = '';

/** Slow path for numbers of 14+ digits (only [vsyscall]'s addresses in practice). */
function wideHex(s: string, from: number, to: number): bigint {
  return BigInt('0x' + s.slice(from, to));
}

/**
 * Parse the maps line s[from, to) into H / wide / rawName. Returns null, or
 * why the line is malformed. Written with local variables only: this runs
 * 60,000 times for a big process.
 */
export function parseHeader(s: string, from: number, to: number): string | null {
  let i = from;
  let v = 0;
  let d = 0;
  let j = 0;
  // start-
  j = i;
  while (i < to && (d = HEX[s.charCodeAt(i)]!) < 16) { v = v * 16 + d; i++; }
  if (i === j || i - j > 16 || s.charCodeAt(i) !== 45) return 'bad start address';
  if (i - j > 13) { wide.start = wideHex(s, j, i); H[H_START] = WIDE; } else H[H_START] = v;
  i++;
  // end␠
  v = 0;
  j = i;
  while (i < to && (d = HEX[s.charCodeAt(i)]!) < 16) { v = v * 16 + d; i++; }
  if (i === j || i - j > 16 || s.charCodeAt(i) !== 32) return 'bad end address';
  if (i - j > 13) { wide.end = wideHex(s, j, i); H[H_END] = WIDE; } else H[H_END] = v;
  i++;
  if (H[H_START] !== WIDE && H[H_END] !== WIDE ? H[H_END]! < H[H_START]! : (H[H_START] === WIDE ? wide.start : BigInt(H[H_START]!)) > (H[H_END] === WIDE ? wide.end : BigInt(H[H_END]!))) return 'end below start';
  // perms␠
  if (i + 5 > to || s.charCodeAt(i + 4) !== 32) return 'bad permissions';
  const r = s.charCodeAt(i), w = s.charCodeAt(i + 1), x = s.charCodeAt(i + 2), sh = s.charCodeAt(i + 3);
  if ((r !== 114 && r !== 45) || (w !== 119 && w !== 45) || (x !== 120 && x !== 45) || (sh !== 112 && sh !== 115)) return 'bad permissions';
  H[H_PERM] = (r === 114 ? 1 : 0) | (w === 119 ? 2 : 0) | (x === 120 ? 4 : 0) | (sh === 115 ? 8 : 0);
  i += 5;
  // offset␠
  v = 0;
  j = i;
  while (i < to && (d = HEX[s.charCodeAt(i)]!) < 16) { v = v * 16 + d; i++; }
  if (i === j || i - j > 16 || s.charCodeAt(i) !== 32) return 'bad offset';
  if (i - j > 13) { wide.pgoff = wideHex(s, j, i); H[H_PGOFF] = WIDE; } else H[H_PGOFF] = v;
  i++;
  // major:minor␠
  v = 0;
  j = i;
  while (i < to && (d = HEX[s.charCodeAt(i)]!) < 16) { v = v * 16 + d; i++; }
  if (i === j || v > 0xfff || s.charCodeAt(i) !== 58) return 'bad device';
  H[H_MAJ] = v;
  i++;
  v = 0;
  j = i;
  while (i < to && (d = HEX[s.charCodeAt(i)]!) < 16) { v = v * 16 + d; i++; }
  if (i === j || v > 0xfffff || s.charCodeAt(i) !== 32) return 'bad device';
  H[H_MIN] = v;
  i++;
  // inode (decimal)
  v = 0;
  j = i;
  while (i < to && (d = s.charCodeAt(i) - 48) >= 0 && d <= 9) { v = v * 10 + d; i++; }
  if (i === j || i - j > 20) return 'bad inode';
  if (i - j > 15) {
    wide.ino = BigInt(s.slice(j, i));
    if (wide.ino > 0xffffffffffffffffn) return 'bad inode';
    H[H_INO] = WIDE;
  } else H[H_INO] = v;
  rawName = '';
  if (i < to) {
    if (s.charCodeAt(i) !== 32) return 'bad inode';
    i++;
    if (i < to) {
      // The name starts after padding to column 72 plus one space, counted from the line start.
      const nameAt = i + 1 > from + NAME_COLUMN ? i + 1 : from + NAME_COLUMN;
      const padEnd = nameAt < to ? nameAt : to;
      for (; i < padEnd; i++) if (s.charCodeAt(i) !== 32) return 'path not at its column';
      if (nameAt < to) rawName = s.slice(nameAt, to);
    }
  }
  return null;
}

/** Output of splitName(). */
export const nameOut = { name: '', deleted: false };

/** Split the printed name into the name and the deleted flag, decoding "\012" (into nameOut). */
export function splitName(raw: string): void {
  let deleted = false;
  if (raw.length > 10 && raw.charCodeAt(0) === 47 /* '/' */ && raw.endsWith(DELETED)) {
    deleted = true;
    raw = raw.slice(0, raw.length - DELETED.length);
  }
  // seq_path escapes only '\n', as the octal "\012"; a backslash itself is not escaped.
  nameOut.name = raw.indexOf('\\012') < 0 ? raw : raw.split('\\012').join('\n');
  nameOut.deleted = deleted;
}

/** Kinds in the order of their numeric codes in MapsTable.kind. */
export const KIND_NAMES = ['anon', 'file', 'heap', 'stack', 'vdso', 'vvar', 'vsyscall', 'sysvipc', 'shmem', 'socket', 'aio', 'uprobes'] as const;
export const K = { anon: 0, file: 1, heap: 2, stack: 3, vdso: 4, vvar: 5, vsyscall: 6, sysvipc: 7, shmem: 8, socket: 9, aio: 10, uprobes: 11 } as const;

/** Output of classify(). */
export const cls = { kind: 0, status: 0, flags: 0, shmid: false };

/**
 * Classify a mapping as CRIU's smaps walk does (criu/proc_parse.c handle_vma),
 * from the text alone: maps says whether an area has a backing file (a device
 * or inode), and its name says which kind. What needs a stat of map_files
 * (device files other than /dev/zero, hugetlbfs) is treated as a regular file.
 * Result in `cls` (shmid true: CRIU's shmid is the inode).
 */
export function classify(
  name: string, permBits: number, devMajor: number, devMinor: number, inoZero: boolean, shmemDev: { major: number; minor: number } | undefined,
  hugetlbDevs?: readonly HugetlbDev[],
): void {
  const shared = (permBits & 8) !== 0;
  const prot = permBits & 7;
  const c0 = name.charCodeAt(0);
  const backed = devMajor !== 0 || devMinor !== 0 || !inoZero || c0 === 47; /* '/' */
  cls.flags = shared ? MAP.SHARED : MAP.PRIVATE;
  cls.shmid = false;

  // Areas whose map_files link tells CRIU everything: sockets and AIO rings.
  if (backed && c0 === 115 /* s */ && name.startsWith('socket:')) {
    cls.kind = K.socket;
    cls.status = VMA.AREA_SOCKET | VMA.AREA_REGULAR;
    return;
  }
  if (backed && c0 === 47 && name === '/[aio]') {
    cls.kind = K.aio;
    cls.status = VMA.AREA_AIORING;
    return;
  }

  let status: number = VMA.AREA_REGULAR;
  cls.kind = backed ? K.file : K.anon;
  if (c0 === 91 /* [ */) {
    if (name === '[vsyscall]' || name === '[vectors]') {
      cls.kind = K.vsyscall;
      status = VMA.AREA_VSYSCALL;
    } else if (name === '[vdso]') {
      cls.kind = K.vdso;
      status = VMA.AREA_REGULAR | ((prot & (PROT.READ | PROT.EXEC)) === (PROT.READ | PROT.EXEC) ? VMA.AREA_VDSO : 0);
    } else if (name === '[vvar]' || name === '[vvar_vclock]') {
      cls.kind = K.vvar;
      status = VMA.AREA_REGULAR | ((prot & PROT.READ) === PROT.READ ? VMA.AREA_VVAR : 0);
    } else if (name === '[heap]') {
      cls.kind = K.heap;
      status = VMA.AREA_REGULAR | VMA.AREA_HEAP;
    } else if (name === '[uprobes]') {
      cls.kind = K.uprobes;
      status = VMA.AREA_UPROBES;
    } else if (name === '[stack]') {
      // CRIU sets no VMA_AREA_STACK for [stack]: it is plain private anonymous memory that grows down.
      cls.kind = K.stack;
      cls.flags |= MAP.GROWSDOWN;
    }
  }

  if (backed && hugetlbDevs) {
    const h = hugetlbDevs.find((d) => d.major === devMajor && d.minor === devMinor);
    if (h) {
      hugetlbArea(name, shared, status, h.sizeFlag);
      return;
    }
  }
  if (backed) {
    const shmem = shmemDev
      ? devMajor === shmemDev.major && devMinor === shmemDev.minor
      : devMajor === 0 && (name === '/dev/zero' || name.startsWith('/SYSV') || name.startsWith('/memfd:') || name.startsWith('[anon_shmem:'));
    if (shmem) {
      if (name.startsWith('/SYSV')) {
        sysvArea(status);
        return;
      }
      cls.kind = K.shmem;
      status |= VMA.AREA_MEMFD;
    }
    status |= shared ? VMA.FILE_SHARED : VMA.FILE_PRIVATE;
  } else {
    if (shared) {
      status |= VMA.ANON_SHARED;
      cls.shmid = true;
    } else {
      status |= VMA.ANON_PRIVATE;
    }
    cls.flags |= MAP.ANONYMOUS;
  }
  cls.status = status;
}

/** A SysV attach (its shmid: the inode). */
function sysvArea(status: number): void {
  cls.kind = K.sysvipc;
  cls.flags |= MAP.ANONYMOUS;
  cls.status = status | VMA.ANON_SHARED | VMA.AREA_SYSVIPC;
  cls.shmid = true;
}

/** A device of the kernel's internal hugetlbfs mounts (kerndat's hugetlb_dev), with its page size as mmap's size bits. */
export interface HugetlbDev {
  major: number;
  minor: number;
  /** log2(huge page size) << MAP_HUGE_SHIFT (26), as MAP_HUGETLB and MFD_HUGETLB take it */
  sizeFlag: number;
}

/**
 * An area on a hugetlb device, as CRIU 4.2 classifies it (memfd_hugetlb kernels): a SysV
 * segment on huge pages (no size bits, as CRIU records it); private anonymous huge pages
 * (`/anon_hugepage`, MAP_PRIVATE) as private anonymous memory, pages in the task's pagemap;
 * anything else (shared anonymous huge pages, a hugetlb memfd, shared or private) the memfd
 * way, the object's pages in pagemap-shmem. MAP_HUGETLB (VmFlags "ht" says so too) and the
 * size bits go into the flags.
 */
function hugetlbArea(name: string, shared: boolean, status: number, sizeFlag: number): void {
  cls.flags |= MAP.HUGETLB;
  if (name.startsWith('/SYSV')) {
    sysvArea(status);
    return;
  }
  cls.flags |= sizeFlag;
  if (!shared && name.startsWith(ANON_HUGEPAGE)) {
    cls.kind = K.anon;
    cls.flags |= MAP.ANONYMOUS;
    cls.status = status | VMA.ANON_PRIVATE;
    return;
  }
  cls.kind = K.shmem;
  cls.status = status | VMA.AREA_MEMFD | (shared ? VMA.FILE_SHARED : VMA.FILE_PRIVATE);
}

/** how /proc names anonymous memory on huge pages (MAP_ANONYMOUS|MAP_HUGETLB) */
export const ANON_HUGEPAGE = '/anon_hugepage';

/** Line-by-line driver: calls `line(from, to, lineNo)` for each line of text. */
export function forEachLine(text: string, line: (from: number, to: number, lineNo: number) => void): void {
  let from = 0;
  let lineNo = 0;
  const n = text.length;
  while (from < n) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = n;
    line(from, to, ++lineNo);
    from = to + 1;
  }
}
