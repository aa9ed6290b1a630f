import { parseError, report, type ParseOptions } from './errors.js';
import { procPath, readProcLines, readProcText, setKey, type ProcOptions, type Target } from './read.js';
import { PAGE_SIZE_BIGINT } from '@crtools/common';
import { MADV, MAP, VMA } from './vma-flags.js';
import { classify, cls, type HugetlbDev, H, H_END, H_INO, H_MAJ, H_MIN, H_PERM, H_PGOFF, H_START, hexDigit, KIND_NAMES, nameOut, parseHeader, PERMS, rawName, splitName, WIDE, wide } from './maps-line.js';

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
  /** smaps only: the VmFlags mnemonics (a frozen list, shared by the areas whose VmFlags line is the same). */
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

export type { HugetlbDev } from './maps-line.js';
export { ANON_HUGEPAGE } from './maps-line.js';

export interface MapsOptions extends ParseOptions {
  /**
   * CRIU's kdat.stack_guard_gap_hidden: maps shows grows-down areas one page
   * higher than they really start (kernels before 4.12 hid the guard page).
   * When true, a grows-down area that does not touch the previous one starts
   * one page lower, as CRIU's vma_list_add records it. Default false: 6.18
   * shows the real start (CRIU's probe then says false, and CRIU 4.2's images
   * from this kernel keep the kernel's start). See README.
   */
  stackGuardGapHidden?: boolean;
  /**
   * Device of anonymous shared memory (kerndat's shmem_dev), to tell shmem
   * mappings from other files. Without it, a mapping on a major-0 device named
   * /dev/zero (deleted), /SYSV*, /memfd:* or [anon_shmem:*] counts as shmem.
   */
  shmemDev?: { major: number; minor: number };
  /**
   * Devices of the kernel's hugetlbfs mounts (kerndat's hugetlb_dev) with their size bits:
   * areas on them are classified as CRIU 4.2 does (see hugetlbArea). Without it, such areas
   * count as files.
   */
  hugetlbDevs?: readonly HugetlbDev[];
  /**
   * smaps: keep each area's "Key: N kB" counters in `smaps` (default true). false reads VmFlags
   * only (the dump's use: the counters of 60,000 areas were 1.5 million object keys).
   */
  counters?: boolean;
}

/** Bigints for parsed numbers; a value equal to the previous one reuses its bigint. */
class BigCache {
  private n = -1;
  private b = 0n;
  get(n: number, big: bigint): bigint {
    if (n === WIDE) return big;
    if (n === 0) return 0n;
    if (n !== this.n) {
      this.n = n;
      this.b = BigInt(n);
    }
    return this.b;
  }
}
const addrCache = new BigCache();
const inoCache = new BigCache();

function buildVma(opts: MapsOptions | undefined): Vma {
  splitName(rawName);
  const name = nameOut.name, deleted = nameOut.deleted;
  const bits = H[H_PERM]!;
  const ino = inoCache.get(H[H_INO]!, wide.ino);
  const maj = H[H_MAJ]!, min = H[H_MIN]!;
  classify(name, bits, maj, min, ino === 0n, opts?.shmemDev, opts?.hugetlbDevs);
  const pg = H[H_PGOFF]!;
  // Every Vma gets the same property order (one hidden class); optional ones stay undefined.
  return {
    start: addrCache.get(H[H_START]!, wide.start), end: addrCache.get(H[H_END]!, wide.end), perms: PERMS[bits]!, prot: bits & 7,
    shared: (bits & 8) !== 0, pgoff: pg === WIDE ? wide.pgoff : pg === 0 ? 0n : BigInt(pg),
    devMajor: maj, devMinor: min, ino, name, deleted,
    kind: KIND_NAMES[cls.kind]!, status: cls.status, flags: cls.flags, madv: 0n,
    shmid: cls.shmid ? ino : undefined, guardGap: undefined,
  };
}

/** Add the guard page back to a grows-down area, as CRIU's vma_list_add does. */
function guardGap(v: Vma, prevEnd: bigint, opts: MapsOptions | undefined): void {
  if (opts?.stackGuardGapHidden && (v.flags & MAP.GROWSDOWN) !== 0 && prevEnd < v.start) {
    v.start -= PAGE_SIZE_BIGINT;
    v.guardGap = true;
  }
}

/** Parse one maps line (no newline) into a classified Vma; throws PROCFS_PARSE when malformed. */
export function parseMapsLine(line: string, opts?: MapsOptions, lineNo = 1): Vma {
  const why = parseHeader(line, 0, line.length);
  if (why !== null) throw parseError(opts?.path, lineNo, why, line);
  return buildVma(opts);
}

/**
 * The Vma of one maps line (text[from, to)), or undefined for a malformed line, which throws
 * PROCFS_PARSE (file and line number) or goes to opts.onError. `last` carries the previous
 * area's end across lines, for the guard gap adjustment.
 */
function lineVma(text: string, from: number, to: number, lineNo: number, last: { end: bigint }, opts: MapsOptions | undefined): Vma | undefined {
  const why = parseHeader(text, from, to);
  if (why !== null) {
    report(opts, parseError(opts?.path, lineNo, why, text.slice(from, to)));
    return undefined;
  }
  const v = buildVma(opts);
  if (opts?.stackGuardGapHidden) guardGap(v, last.end, opts);
  last.end = v.end;
  return v;
}

/** Parse the text of /proc/PID/maps: one Vma per line, in order (errors: see lineVma). */
export function parseMaps(text: string, opts?: MapsOptions): Vma[] {
  // a plain loop, not the generator below: ~40% faster on 60,000 lines
  const out: Vma[] = [];
  const last = { end: 0n };
  for (let from = 0, lineNo = 1; from < text.length; lineNo++) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    const v = lineVma(text, from, to, lineNo, last, opts);
    if (v) out.push(v);
    from = to + 1;
  }
  return out;
}

/** parseMaps as a generator, for streaming: records come out one line at a time. */
export function* iterMaps(text: string, opts?: MapsOptions): Generator<Vma> {
  const last = { end: 0n };
  for (let from = 0, lineNo = 1; from < text.length; lineNo++) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    const v = lineVma(text, from, to, lineNo, last, opts);
    if (v) yield v;
    from = to + 1;
  }
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
    const why = parseHeader(text, from, to);
    if (why !== null) report(opts, parseError(opts?.path, lineNo, why, line));
    else {
      const f = line.split(' ', 5);
      const [start, end] = f[0]!.split('-') as [string, string];
      yield { start, end, perms: f[1]!, offset: f[2]!, dev: f[3]!, inode: f[4]!, pathname: rawName };
    }
    from = to + 1;
  }
}

/** "123 kB" → bytes, "5" → 5, anything else → -1 (no regex: smaps has ~25 of these per area). */
function counterValue(val: string): number {
  let n = 0;
  let i = 0;
  for (; i < val.length; i++) {
    const c = val.charCodeAt(i);
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  if (i === 0 || i > 15) return -1;
  if (i === val.length) return n;
  let j = i;
  while (j < val.length && val.charCodeAt(j) === 32) j++;
  return j > i && val.slice(j) === 'kB' ? n * 1024 : -1;
}

function isRangeLine(s: string, from: number, to: number): boolean {
  let i = from;
  while (i < to && hexDigit(s.charCodeAt(i)) <= 15) i++;
  if (i === from || s.charCodeAt(i) !== 45) return false;
  const j = ++i;
  while (i < to && hexDigit(s.charCodeAt(i)) <= 15) i++;
  return i > j && s.charCodeAt(i) === 32;
}

const VMFLAG_MAP: Record<string, number> = { gd: MAP.GROWSDOWN, lo: MAP.LOCKED, nr: MAP.NORESERVE, ht: MAP.HUGETLB, dp: MAP.DROPPABLE };
const VMFLAG_MADV: Record<string, number> = {
  sr: MADV.SEQUENTIAL, rr: MADV.RANDOM, dc: MADV.DONTFORK, dd: MADV.DONTDUMP,
  mg: MADV.MERGEABLE, hg: MADV.HUGEPAGE, nh: MADV.NOHUGEPAGE, wf: MADV.WIPEONFORK,
};

/** What a VmFlags code does, one lookup each (most codes do nothing): a MAP_* flag, an madvise bit (all below 32), io/pf, shadow stack. */
type FlagAction = { map: number; madv: number; ioPf: boolean; shstk: boolean };
const VMFLAG_ACTIONS = new Map<string, FlagAction>();
for (const [code, map] of Object.entries(VMFLAG_MAP)) VMFLAG_ACTIONS.set(code, { map, madv: 0, ioPf: false, shstk: false });
for (const [code, bit] of Object.entries(VMFLAG_MADV)) VMFLAG_ACTIONS.set(code, { map: 0, madv: 2 ** bit, ioPf: false, shstk: false });
for (const code of ['io', 'pf']) VMFLAG_ACTIONS.set(code, { map: 0, madv: 0, ioPf: true, shstk: false });
VMFLAG_ACTIONS.set('ss', { map: 0, madv: 0, ioPf: false, shstk: true });

/** Apply smaps VmFlags to a Vma as CRIU does (MAP_* flags, madvise bits, shadow stack, unsupported io/pfn maps). */
function applyVmFlags(v: Vma, list: string[]): void {
  let ioPf = false;
  let madv = 0;
  for (let i = 0; i < list.length; i++) {
    const a = VMFLAG_ACTIONS.get(list[i]!);
    if (a === undefined) continue;
    v.flags |= a.map;
    madv |= a.madv;
    if (a.ioPf) ioPf = true;
    if (a.shstk) v.status |= VMA.AREA_SHSTK;
  }
  v.madv = madv === 0 ? 0n : BigInt(madv);
  if (ioPf && (v.status & VMA.AREA_VVAR) === 0 && (v.status & VMA.FILE_SHARED) === 0 && (v.status & VMA.AREA_UPROBES) === 0) v.status = (v.status | VMA.UNSUPP) >>> 0;
  if ((v.flags & MAP.PRIVATE) !== 0 && (v.flags & MAP.DROPPABLE) !== 0) v.flags &= ~MAP.PRIVATE;
}

/**
 * The mnemonics of a VmFlags line's value: one frozen list per distinct line, shared by the areas
 * that show it (a process of 60,000 areas has a handful of distinct lines: no list and no
 * strings made per area).
 */
function vmFlagsOf(val: string): string[] {
  let list = VMFLAG_LISTS.get(val);
  if (list === undefined) {
    list = Object.freeze(val ? val.split(/\s+/) : []) as string[];
    if (VMFLAG_LISTS.size >= 4096) VMFLAG_LISTS.clear();
    VMFLAG_LISTS.set(val, list);
  }
  return list;
}
const VMFLAG_LISTS = new Map<string, string[]>();

/**
 * Parse /proc/PID/smaps: one Vma per area with `vmFlags` and `smaps` counters.
 * Grows-down comes from VmFlags "gd" (not from the name) as in CRIU.
 */
export function* iterSmaps(text: string, opts?: MapsOptions): Generator<Vma> {
  yield* iterSmapsPieces([text], opts);
}

/** iterSmaps over the text given in pieces, each of whole lines (read.ts readProcLines). */
export function* iterSmapsPieces(pieces: Iterable<string>, opts?: MapsOptions): Generator<Vma> {
  let lineNo = 0;
  let cur: Vma | undefined;
  let inArea = false;
  let prevEnd = 0n;
  const counters = opts?.counters !== false;
  const finish = (v: Vma): Vma => {
    guardGap(v, prevEnd, opts);
    prevEnd = v.end;
    return v;
  };
  for (const text of pieces) {
    let from = 0;
    const n = text.length;
    while (from < n) {
      let to = text.indexOf('\n', from);
      if (to < 0) to = n;
      lineNo++;
      if (isRangeLine(text, from, to)) {
        if (cur) yield finish(cur);
        cur = undefined;
        inArea = true;
        const why = parseHeader(text, from, to);
        if (why !== null) report(opts, parseError(opts?.path, lineNo, why, text.slice(from, to)));
        else {
          cur = buildVma(opts);
          cur.flags &= ~MAP.GROWSDOWN; // only VmFlags says so in smaps
          if (counters) cur.smaps = {};
        }
        if (!counters) {
          // the counters not kept: the lines up to the area's VmFlags are passed over here, only
          // their first character looked at (a counter's key starts with a capital letter; a
          // line that does not is left to the loop below: a header, or one it reports)
          let at = to + 1;
          while (at < n) {
            const c = text.charCodeAt(at);
            if (c < 65 || c > 90 || (c === 86 && text.startsWith('VmFlags:', at))) break;
            lineNo++;
            const e = text.indexOf('\n', at);
            at = e < 0 ? n + 1 : e + 1;
          }
          to = at - 1;
        }
      } else if (!counters && inArea && !text.startsWith('VmFlags:', from)) {
        // (a counter not kept)
      } else {
        const line = text.slice(from, to);
        const colon = line.indexOf(':');
        if (!inArea) report(opts, parseError(opts?.path, lineNo, 'counter line before any area', line));
        else if (colon <= 0) report(opts, parseError(opts?.path, lineNo, 'expected "Key: value"', line));
        else if (cur) {
          const key = line.slice(0, colon);
          const val = line.slice(colon + 1).trim();
          if (key === 'VmFlags') {
            cur.vmFlags = vmFlagsOf(val);
            applyVmFlags(cur, cur.vmFlags);
          } else {
            const v = counterValue(val);
            if (v < 0) report(opts, parseError(opts?.path, lineNo, `bad value of ${key}`, line));
            else setKey(cur.smaps!, key, v);
          }
        }
      }
      from = to + 1;
    }
  }
  if (cur) yield finish(cur);
}

export function parseSmaps(text: string, opts?: MapsOptions): Vma[] {
  return Array.from(iterSmaps(text, opts));
}

/** Read and parse /proc/PID/maps (or smaps with `smaps: true`). */
export function readMaps(target: Target, opts?: MapsOptions & ProcOptions & { smaps?: boolean }): Vma[] {
  if (opts?.smaps) {
    // (smaps is ~25 lines an area: read and parsed a piece at a time)
    return Array.from(iterSmapsPieces(readProcLines(target, 'smaps', opts), { ...opts, path: opts.path ?? procPath(target, 'smaps', opts) }));
  }
  const { path, text } = readProcText(target, 'maps', opts);
  return parseMaps(text, { ...opts, path: opts?.path ?? path });
}

/**
 * The VMA list CRIU builds from the areas: consecutive vvar areas ([vvar] and
 * [vvar_vclock]) merged into one, [uprobes] dropped. Throws PROCFS_PARSE when
 * two vvar areas are not adjacent; UNSUPP areas are kept (the caller decides). The list holds
 * the given objects (a merged vvar area is a new one); none of them is changed.
 */
export function collectVmas(vmas: Iterable<Vma>): Vma[] {
  const out: Vma[] = [];
  let prev: Vma | undefined;
  for (const v of vmas) {
    if ((v.status & VMA.AREA_UPROBES) !== 0) continue;
    if (prev && (prev.status & VMA.AREA_VVAR) !== 0 && (v.status & VMA.AREA_VVAR) !== 0) {
      if (prev.end !== v.start) throw parseError('maps', 0, `two vvar areas not adjacent: ${prev.start.toString(16)}-${prev.end.toString(16)} ${v.start.toString(16)}-${v.end.toString(16)}`);
      // (the merged area a copy: the given ones are left as they were)
      prev = { ...prev, end: v.end };
      out[out.length - 1] = prev;
      continue;
    }
    // (the areas themselves, not copies: a spread copy of each of 60,000 areas cost ~10x a
    // literal, and made objects slower to read in every later pass)
    out.push(v);
    prev = v;
  }
  return out;
}


const hexOf = (v: bigint): string => '0x' + v.toString(16);

/**
 * One Vma as a line of JSON, the same text as JSON.stringify(v, hexReplacer)
 * but several times faster (no replacer call per key).
 */
export function vmaJson(v: Vma): string {
  let s = `{"start":"${hexOf(v.start)}","end":"${hexOf(v.end)}","perms":"${v.perms}","prot":${v.prot},"shared":${v.shared},"pgoff":"${hexOf(v.pgoff)}","devMajor":${v.devMajor},"devMinor":${v.devMinor},"ino":"${hexOf(v.ino)}","name":${JSON.stringify(v.name)},"deleted":${v.deleted},"kind":"${v.kind}","status":${v.status},"flags":${v.flags},"madv":"${hexOf(v.madv)}"`;
  if (v.shmid !== undefined) s += `,"shmid":"${hexOf(v.shmid)}"`;
  if (v.guardGap !== undefined) s += `,"guardGap":${v.guardGap}`;
  if (v.smaps !== undefined) s += `,"smaps":${JSON.stringify(v.smaps)}`;
  if (v.vmFlags !== undefined) s += `,"vmFlags":${JSON.stringify(v.vmFlags)}`;
  return s + '}';
}
