import { parseError, report, type ParseOptions } from './errors.js';
import { readProcText, setKey, type ProcOptions, type Target } from './read.js';
import { MADV, MAP, PAGE_SIZE, PROT, VMA } from './vma-flags.js';

/** What kind of area a mapping is, in words (the status bits say the same for CRIU). */
export type VmaKind =
  | 'file' // a regular file (or /dev/zero, a device) mapped
  | 'anon' // anonymous memory, including [anon:name]
  | 'heap'
  | 'stack' // [stack]
  | 'vdso'
  | 'vvar' // [vvar] and 6.13+'s [vvar_vclock]
  | 'vsyscall'
  | 'sysvipc' // SysV shared memory segment
  | 'shmem' // shmem-backed: memfd, MAP_SHARED|MAP_ANONYMOUS (/dev/zero (deleted)), [anon_shmem:]
  | 'socket' // packet socket ring
  | 'aio' // AIO ring
  | 'uprobes';

/** One line of /proc/PID/maps (or one area of smaps), typed and classified as CRIU does. */
export interface Vma {
  /** Start address; one page lower than the kernel's when the hidden stack guard gap was added back. */
  start: bigint;
  end: bigint;
  /** 'rw-p' as the kernel wrote it. */
  perms: string;
  /** PROT_* bits. */
  prot: number;
  shared: boolean;
  /** File offset in bytes. */
  pgoff: bigint;
  devMajor: number;
  devMinor: number;
  ino: bigint;
  /** Path or special name ('[heap]'), '' for plain anonymous memory; "\012" unescaped to '\n', " (deleted)" removed. */
  name: string;
  /** The kernel appended " (deleted)": the file was unlinked. */
  deleted: boolean;
  kind: VmaKind;
  /** CRIU's VmaEntry.status bits (VMA.*). */
  status: number;
  /** CRIU's VmaEntry.flags (MAP_* bits). */
  flags: number;
  /** 1 << MADV_* bits from smaps VmFlags (0n without smaps). */
  madv: bigint;
  /** For anonymous shared memory and SysV segments: the shmem inode, as CRIU's shmid. */
  shmid?: bigint;
  /** The start was moved one page down to cover the stack guard gap (stackGuardGapHidden). */
  guardGap?: boolean;
  /** smaps only: the VmFlags mnemonics. */
  vmFlags?: string[];
  /** smaps only: the "Key: N kB" counters, in bytes (values without a unit as they are). */
  smaps?: Record<string, number>;
}

/** The kernel's fields of one maps line, as text (the --raw view). */
export interface RawVma {
  start: string;
  end: string;
  perms: string;
  offset: string;
  dev: string;
  inode: string;
  pathname: string;
}

export interface MapsOptions extends ParseOptions {
  /**
   * Whether the kernel hides the stack guard gap from maps (kerndat's
   * stack_guard_gap_hidden). When true, a grows-down area that does not touch
   * the previous one starts one page lower, as CRIU records it.
   * Default false: kernels since 4.12 show the whole area (measured on this
   * machine's 6.18, and CRIU 4.2's images from it keep the kernel's start).
   */
  stackGuardGapHidden?: boolean;
  /**
   * Device of anonymous shared memory (kerndat's shmem_dev), to tell shmem
   * mappings from other files. Without it, a mapping on a major-0 device named
   * /dev/zero (deleted), /SYSV*, /memfd:* or [anon_shmem:*] counts as shmem.
   */
  shmemDev?: { major: number; minor: number };
}

const DELETED = ' (deleted)';
/** Where the kernel pads the path to: 25 + 6 * sizeof(void *) - 1 columns, then one space. */
const NAME_COLUMN = 73;

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** A small hand-rolled cursor parser: regexes per line cost too much at 60,000 lines. */
class LineParser {
  s = '';
  pos = 0;
  end = 0;
  fail = '';

  hex(stop: number): bigint | undefined {
    const s = this.s;
    const from = this.pos;
    let n = 0;
    let i = from;
    while (i < this.end) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      n = n * 16 + d;
      i++;
    }
    if (i === from || i - from > 16 || (stop >= 0 && s.charCodeAt(i) !== stop)) return undefined;
    this.pos = i + (stop >= 0 ? 1 : 0);
    return i - from <= 13 ? BigInt(n) : BigInt('0x' + s.slice(from, i));
  }

  hexNum(stop: number): number | undefined {
    const s = this.s;
    const from = this.pos;
    let n = 0;
    let i = from;
    while (i < this.end) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      n = n * 16 + d;
      i++;
    }
    if (i === from || i - from > 8 || s.charCodeAt(i) !== stop) return undefined;
    this.pos = i + 1;
    return n;
  }

  dec(): bigint | undefined {
    const s = this.s;
    const from = this.pos;
    let n = 0;
    let i = from;
    while (i < this.end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
      i++;
    }
    if (i === from || i - from > 20) return undefined;
    this.pos = i;
    return i - from <= 15 ? BigInt(n) : BigInt(s.slice(from, i));
  }
}

const parser = new LineParser();

/** The maps header fields of one line, before classification. */
interface Header {
  start: bigint;
  end: bigint;
  perms: string;
  pgoff: bigint;
  devMajor: number;
  devMinor: number;
  ino: bigint;
  rawName: string;
}

/**
 * Parse the maps line s[from, to). Returns the header or a reason it is malformed.
 */
function parseHeader(s: string, from: number, to: number): Header | string {
  const p = parser;
  p.s = s;
  p.pos = from;
  p.end = to;
  const start = p.hex(45 /* - */);
  if (start === undefined) return 'bad start address';
  const end = p.hex(32);
  if (end === undefined) return 'bad end address';
  if (end < start) return 'end below start';
  if (p.pos + 5 > to || s.charCodeAt(p.pos + 4) !== 32) return 'bad permissions';
  const perms = s.slice(p.pos, p.pos + 4);
  const r = perms.charCodeAt(0), w = perms.charCodeAt(1), x = perms.charCodeAt(2), sh = perms.charCodeAt(3);
  if ((r !== 114 && r !== 45) || (w !== 119 && w !== 45) || (x !== 120 && x !== 45) || (sh !== 112 && sh !== 115)) return 'bad permissions';
  p.pos += 5;
  const pgoff = p.hex(32);
  if (pgoff === undefined) return 'bad offset';
  const devMajor = p.hexNum(58 /* : */);
  if (devMajor === undefined) return 'bad device';
  const devMinor = p.hexNum(32);
  if (devMinor === undefined) return 'bad device';
  const ino = p.dec();
  if (ino === undefined) return 'bad inode';
  let pos = p.pos;
  let rawName = '';
  if (pos < to) {
    if (s.charCodeAt(pos) !== 32) return 'bad inode';
    pos++;
    if (pos < to) {
      // The name starts after padding to column 72 plus one space, counted from the line start.
      const nameAt = Math.max(pos + 1, from + NAME_COLUMN);
      const padEnd = Math.min(nameAt, to);
      for (let i = pos; i < padEnd; i++) if (s.charCodeAt(i) !== 32) return 'path not at its column';
      if (nameAt < to) rawName = s.slice(nameAt, to);
    }
  }
  return { start, end, perms, pgoff, devMajor, devMinor, ino, rawName };
}

function unescapeName(raw: string): string {
  // seq_path escapes only '\n', as the octal "\012"; a backslash itself is not escaped.
  return raw.indexOf('\\012') < 0 ? raw : raw.split('\\012').join('\n');
}

function isShmem(h: Header, name: string, opts: MapsOptions | undefined): boolean {
  const dev = opts?.shmemDev;
  if (dev) return h.devMajor === dev.major && h.devMinor === dev.minor;
  if (h.devMajor !== 0) return false;
  return name === '/dev/zero' || name.startsWith('/SYSV') || name.startsWith('/memfd:') || name.startsWith('[anon_shmem:');
}

/**
 * Classify a mapping as CRIU's smaps walk does (criu/proc_parse.c handle_vma),
 * from the text alone: maps says whether an area has a backing file (a device
 * or inode), and its name says which kind. What needs a stat of map_files
 * (device files other than /dev/zero, hugetlbfs) is treated as a regular file.
 */
function classify(h: Header, name: string, deleted: boolean, opts: MapsOptions | undefined): Vma {
  const prot = (h.perms.charCodeAt(0) === 114 ? PROT.READ : 0) | (h.perms.charCodeAt(1) === 119 ? PROT.WRITE : 0) | (h.perms.charCodeAt(2) === 120 ? PROT.EXEC : 0);
  const shared = h.perms.charCodeAt(3) === 115;
  let flags: number = shared ? MAP.SHARED : MAP.PRIVATE;
  let status = 0;
  let kind: VmaKind;
  let shmid: bigint | undefined;
  const backed = h.devMajor !== 0 || h.devMinor !== 0 || h.ino !== 0n || name.charCodeAt(0) === 47; /* '/' */

  const vma = (): Vma => {
    const v: Vma = { start: h.start, end: h.end, perms: h.perms, prot, shared, pgoff: h.pgoff, devMajor: h.devMajor, devMinor: h.devMinor, ino: h.ino, name, deleted, kind, status, flags, madv: 0n };
    if (shmid !== undefined) v.shmid = shmid;
    return v;
  };

  // Areas whose map_files link tells CRIU everything: sockets and AIO rings.
  if (backed && name.startsWith('socket:')) {
    kind = 'socket';
    status = VMA.AREA_SOCKET | VMA.AREA_REGULAR;
    return vma();
  }
  if (backed && name === '/[aio]') {
    kind = 'aio';
    status = VMA.AREA_AIORING;
    return vma();
  }

  kind = backed ? 'file' : 'anon';
  if (name === '[vsyscall]' || name === '[vectors]') {
    kind = 'vsyscall';
    status = VMA.AREA_VSYSCALL;
  } else if (name === '[vdso]') {
    kind = 'vdso';
    status = VMA.AREA_REGULAR | ((prot & (PROT.READ | PROT.EXEC)) === (PROT.READ | PROT.EXEC) ? VMA.AREA_VDSO : 0);
  } else if (name === '[vvar]' || name === '[vvar_vclock]') {
    kind = 'vvar';
    status = VMA.AREA_REGULAR | ((prot & PROT.READ) === PROT.READ ? VMA.AREA_VVAR : 0);
  } else if (name === '[heap]') {
    kind = 'heap';
    status = VMA.AREA_REGULAR | VMA.AREA_HEAP;
  } else if (name === '[uprobes]') {
    kind = 'uprobes';
    status = VMA.AREA_UPROBES;
  } else {
    // CRIU sets no VMA_AREA_STACK for [stack]: it is plain private anonymous memory that grows down.
    if (name === '[stack]') {
      kind = 'stack';
      flags |= MAP.GROWSDOWN;
    }
    status = VMA.AREA_REGULAR;
  }

  if (backed) {
    if (isShmem(h, name, opts)) {
      if (name.startsWith('/SYSV')) {
        kind = 'sysvipc';
        flags |= MAP.ANONYMOUS;
        status |= VMA.ANON_SHARED | VMA.AREA_SYSVIPC;
        shmid = h.ino;
        return vma();
      }
      kind = 'shmem';
      status |= VMA.AREA_MEMFD;
    }
    status |= shared ? VMA.FILE_SHARED : VMA.FILE_PRIVATE;
  } else {
    if (shared) {
      status |= VMA.ANON_SHARED;
      shmid = h.ino;
    } else {
      status |= VMA.ANON_PRIVATE;
    }
    flags |= MAP.ANONYMOUS;
  }
  return vma();
}

function buildVma(h: Header, opts: MapsOptions | undefined): Vma {
  let raw = h.rawName;
  let deleted = false;
  if (raw.charCodeAt(0) === 47 /* '/' */ && raw.endsWith(DELETED)) {
    deleted = true;
    raw = raw.slice(0, raw.length - DELETED.length);
  }
  return classify(h, unescapeName(raw), deleted, opts);
}

/** Add the guard page back to a grows-down area, as CRIU's vma_list_add does. */
function guardGap(v: Vma, prevEnd: bigint, opts: MapsOptions | undefined): void {
  if (opts?.stackGuardGapHidden && (v.flags & MAP.GROWSDOWN) !== 0 && prevEnd < v.start) {
    v.start -= PAGE_SIZE;
    v.guardGap = true;
  }
}

/** Parse one maps line (no newline) into a classified Vma; throws PROCFS_PARSE when malformed. */
export function parseMapsLine(line: string, opts?: MapsOptions, lineNo = 1): Vma {
  const h = parseHeader(line, 0, line.length);
  if (typeof h === 'string') throw parseError(opts?.path, lineNo, h, line);
  return buildVma(h, opts);
}

/**
 * Parse the text of /proc/PID/maps: one Vma per line, in order. A malformed
 * line throws PROCFS_PARSE (file and line number), or goes to opts.onError
 * and is skipped.
 */
export function* iterMaps(text: string, opts?: MapsOptions): Generator<Vma> {
  let from = 0;
  let lineNo = 0;
  let prevEnd = 0n;
  const n = text.length;
  while (from < n) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = n;
    lineNo++;
    const h = parseHeader(text, from, to);
    if (typeof h === 'string') {
      report(opts, parseError(opts?.path, lineNo, h, text.slice(from, to)));
    } else {
      const v = buildVma(h, opts);
      guardGap(v, prevEnd, opts);
      prevEnd = v.end;
      yield v;
    }
    from = to + 1;
  }
}

export function parseMaps(text: string, opts?: MapsOptions): Vma[] {
  return Array.from(iterMaps(text, opts));
}

/** The --raw view of maps: the kernel's fields as text, the path exactly as printed. */
export function* iterMapsRaw(text: string, opts?: ParseOptions): Generator<RawVma> {
  let from = 0;
  let lineNo = 0;
  const n = text.length;
  while (from < n) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = n;
    lineNo++;
    const line = text.slice(from, to);
    const h = parseHeader(text, from, to);
    if (typeof h === 'string') report(opts, parseError(opts?.path, lineNo, h, line));
    else {
      const f = line.split(' ', 5);
      const [start, end] = f[0]!.split('-') as [string, string];
      yield { start, end, perms: f[1]!, offset: f[2]!, dev: f[3]!, inode: f[4]!, pathname: h.rawName };
    }
    from = to + 1;
  }
}

function isRangeLine(s: string, from: number, to: number): boolean {
  let i = from;
  while (i < to && hexDigit(s.charCodeAt(i)) >= 0) i++;
  if (i === from || s.charCodeAt(i) !== 45) return false;
  const j = ++i;
  while (i < to && hexDigit(s.charCodeAt(i)) >= 0) i++;
  return i > j && s.charCodeAt(i) === 32;
}

const VMFLAG_MAP: Record<string, number> = { gd: MAP.GROWSDOWN, lo: MAP.LOCKED, nr: MAP.NORESERVE, ht: MAP.HUGETLB, dp: MAP.DROPPABLE };
const VMFLAG_MADV: Record<string, number> = {
  sr: MADV.SEQUENTIAL, rr: MADV.RANDOM, dc: MADV.DONTFORK, dd: MADV.DONTDUMP,
  mg: MADV.MERGEABLE, hg: MADV.HUGEPAGE, nh: MADV.NOHUGEPAGE, wf: MADV.WIPEONFORK,
};

/** Apply smaps VmFlags to a Vma as CRIU does (MAP_* flags, madvise bits, shadow stack, unsupported io/pfn maps). */
function applyVmFlags(v: Vma, list: string[]): void {
  let ioPf = false;
  let madv = 0n;
  for (const f of list) {
    const m = VMFLAG_MAP[f];
    if (m !== undefined) v.flags |= m;
    const a = VMFLAG_MADV[f];
    if (a !== undefined) madv |= 1n << BigInt(a);
    if (f === 'io' || f === 'pf') ioPf = true;
    if (f === 'ss') v.status |= VMA.AREA_SHSTK;
  }
  v.madv = madv;
  if (ioPf && (v.status & VMA.AREA_VVAR) === 0 && (v.status & VMA.FILE_SHARED) === 0 && (v.status & VMA.AREA_UPROBES) === 0) v.status = (v.status | VMA.UNSUPP) >>> 0;
  if ((v.flags & MAP.PRIVATE) !== 0 && (v.flags & MAP.DROPPABLE) !== 0) v.flags &= ~MAP.PRIVATE;
}

/**
 * Parse /proc/PID/smaps: one Vma per area with `vmFlags` and `smaps` counters.
 * Grows-down comes from VmFlags "gd" (not from the name) as in CRIU.
 */
export function* iterSmaps(text: string, opts?: MapsOptions): Generator<Vma> {
  let from = 0;
  let lineNo = 0;
  let cur: Vma | undefined;
  let inArea = false;
  let prevEnd = 0n;
  const n = text.length;
  const finish = (v: Vma): Vma => {
    guardGap(v, prevEnd, opts);
    prevEnd = v.end;
    return v;
  };
  while (from < n) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = n;
    lineNo++;
    if (isRangeLine(text, from, to)) {
      if (cur) yield finish(cur);
      cur = undefined;
      inArea = true;
      const h = parseHeader(text, from, to);
      if (typeof h === 'string') report(opts, parseError(opts?.path, lineNo, h, text.slice(from, to)));
      else {
        cur = buildVma(h, opts);
        cur.flags &= ~MAP.GROWSDOWN; // only VmFlags says so in smaps
        cur.smaps = {};
      }
    } else {
      const line = text.slice(from, to);
      const colon = line.indexOf(':');
      if (!inArea) report(opts, parseError(opts?.path, lineNo, 'counter line before any area', line));
      else if (colon <= 0) report(opts, parseError(opts?.path, lineNo, 'expected "Key: value"', line));
      else if (cur) {
        const key = line.slice(0, colon);
        const val = line.slice(colon + 1).trim();
        if (key === 'VmFlags') {
          cur.vmFlags = val ? val.split(/\s+/) : [];
          applyVmFlags(cur, cur.vmFlags);
        } else {
          const m = /^(\d+)(?:\s+kB)?$/.exec(val);
          if (!m) report(opts, parseError(opts?.path, lineNo, `bad value of ${key}`, line));
          else setKey(cur.smaps!, key, val.endsWith('kB') ? Number(m[1]) * 1024 : Number(m[1]));
        }
      }
    }
    from = to + 1;
  }
  if (cur) yield finish(cur);
}

export function parseSmaps(text: string, opts?: MapsOptions): Vma[] {
  return Array.from(iterSmaps(text, opts));
}

/** Read and parse /proc/PID/maps (or smaps with `smaps: true`). */
export function readMaps(target: Target, opts?: MapsOptions & ProcOptions & { smaps?: boolean }): Vma[] {
  const { path, text } = readProcText(target, opts?.smaps ? 'smaps' : 'maps', opts);
  const o = { ...opts, path: opts?.path ?? path };
  return opts?.smaps ? parseSmaps(text, o) : parseMaps(text, o);
}

/**
 * The VMA list CRIU builds from the areas: consecutive vvar areas ([vvar] and
 * [vvar_vclock]) merged into one, [uprobes] dropped. Throws PROCFS_PARSE when
 * two vvar areas are not adjacent; UNSUPP areas are kept (the caller decides).
 */
export function collectVmas(vmas: Iterable<Vma>): Vma[] {
  const out: Vma[] = [];
  let prev: Vma | undefined;
  for (const v of vmas) {
    if ((v.status & VMA.AREA_UPROBES) !== 0) continue;
    if (prev && (prev.status & VMA.AREA_VVAR) !== 0 && (v.status & VMA.AREA_VVAR) !== 0) {
      if (prev.end !== v.start) throw parseError('maps', 0, `two vvar areas not adjacent: ${prev.start.toString(16)}-${prev.end.toString(16)} ${v.start.toString(16)}-${v.end.toString(16)}`);
      prev.end = v.end;
      continue;
    }
    const copy = { ...v };
    out.push(copy);
    prev = copy;
  }
  return out;
}

