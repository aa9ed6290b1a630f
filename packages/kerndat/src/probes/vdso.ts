import type { KerndatPart, SpecialMapping, VdsoInfo } from '../types.js';
import { isNativeSysError } from '@crtools/common';
import { native } from '../load-native.js';
import { forkProbe } from '../sys.js';
import { parseMaps, readMaps } from '@crtools/procfs';
import { readSelfMem } from '../procfs-lite.js';

const selfMaps = () => readMaps(process.pid);

const SPECIAL = ['[vvar]', '[vvar_vclock]', '[vdso]', '[vsyscall]'];

export interface ElfSymbols {
  elf_ok: boolean;
  symbols: Record<string, bigint>;
}

/**
 * The exported function symbols of a vDSO image (an ELF64 shared object linked
 * at 0): name -> offset from the start of the image. Versioned duplicates
 * (clock_gettime and __vdso_clock_gettime) both appear.
 */
export function parseVdsoElf(img: Buffer): ElfSymbols {
  const symbols: Record<string, bigint> = {};
  const bad = { elf_ok: false, symbols };
  if (img.length < 64 || img.readUInt32BE(0) !== 0x7f454c46) return bad;
  if (img[4] !== 2 || img[5] !== 1) return bad; // ELFCLASS64, little-endian
  const type = img.readUInt16LE(16);
  const machine = img.readUInt16LE(18);
  const shoff = Number(img.readBigUInt64LE(40));
  const shentsize = img.readUInt16LE(58);
  const shnum = img.readUInt16LE(60);
  if (type !== 3 || machine !== 62 || shoff === 0 || shoff + shnum * shentsize > img.length) return bad;
  const sh = (i: number) => {
    const o = shoff + i * shentsize;
    return {
      type: img.readUInt32LE(o + 4),
      offset: Number(img.readBigUInt64LE(o + 24)),
      size: Number(img.readBigUInt64LE(o + 32)),
      link: img.readUInt32LE(o + 40),
      entsize: Number(img.readBigUInt64LE(o + 56)),
    };
  };
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    if (s.type !== 11 /* SHT_DYNSYM */) continue;
    const str = sh(s.link);
    const ent = s.entsize || 24;
    for (let off = s.offset; off + ent <= s.offset + s.size && off + ent <= img.length; off += ent) {
      const nameOff = img.readUInt32LE(off);
      const info = img[off + 4]!;
      const shndx = img.readUInt16LE(off + 6);
      const value = img.readBigUInt64LE(off + 8);
      if ((info & 0xf) !== 2 /* STT_FUNC */ || shndx === 0) continue;
      const start = str.offset + nameOff;
      const end = img.indexOf(0, start);
      if (end < 0 || start >= img.length) continue;
      symbols[img.toString('latin1', start, end)] = value;
    }
  }
  return { elf_ok: Object.keys(symbols).length > 0, symbols };
}

/** Which special mappings exist, in which order and size; the vDSO's symbols; whether they can move. */
export function probeVdso(): KerndatPart {
  const areas: SpecialMapping[] = selfMaps()
    .filter((l) => SPECIAL.includes(l.name))
    .map((l) => ({ name: l.name, start: l.start, end: l.end, size: l.end - l.start }));
  const size = (n: string) => areas.find((a) => a.name === n)?.size ?? 0n;
  const vdsoArea = areas.find((a) => a.name === '[vdso]');
  let elf: ElfSymbols = { elf_ok: false, symbols: {} };
  if (vdsoArea) elf = parseVdsoElf(readSelfMem(vdsoArea.start, Number(vdsoArea.size)));

  // Move everything that is subject to ASLR in a child, then take a signal there.
  const movable = areas.filter((a) => a.name !== '[vsyscall]');
  const args: bigint[] = [];
  for (const a of movable) args.push(a.start, a.size);
  const st = forkProbe('mremap_special', args, 3000);
  const vdso: VdsoInfo = {
    areas,
    order: areas.map((a) => a.name),
    vvar_size: size('[vvar]'),
    vvar_vclock_size: size('[vvar_vclock]'),
    vdso_size: size('[vdso]'),
    has_vvar_vclock: areas.some((a) => a.name === '[vvar_vclock]'),
    has_vsyscall: areas.some((a) => a.name === '[vsyscall]'),
    symbols: elf.symbols,
    elf_ok: elf.elf_ok,
    mremap_ok: movable.length > 0 && st.exited && st.code === 0,
  };
  // CRIU's vdso_hint_reliable: after a child moves its [vdso], its maps still name the moved area [vdso]
  let hint = false;
  if (vdsoArea) {
    const r = native().vdsoMoveProbe(vdsoArea.start, vdsoArea.size, 3000);
    if (!isNativeSysError(r) && r.stopped && r.maps !== undefined)
      hint = parseMaps(r.maps).some((l) => l.name === '[vdso]' && l.start === r.newStart);
  }
  // ARCH_MAP_VDSO_32 (CRIU's test): EEXIST with a vDSO already mapped means the API exists
  const map32 = forkProbe('arch_map_vdso', [0x2002], 3000);
  const map64 = forkProbe('arch_map_vdso', [0x2003], 3000);
  return {
    vdso,
    vdso_hint_reliable: hint,
    can_map_vdso: map64.exited && map64.code === 1,
    compat_cr: map32.exited && map32.code === 1,
  };
}
