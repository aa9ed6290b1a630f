import { parseError, type ParseOptions } from './errors.js';
import { readProcBytes, type ProcOptions, type Target } from './read.js';

/** Names of the auxiliary vector types (<elf.h> AT_*). */
export const AT_NAMES: Record<number, string> = {
  0: 'AT_NULL', 1: 'AT_IGNORE', 2: 'AT_EXECFD', 3: 'AT_PHDR', 4: 'AT_PHENT', 5: 'AT_PHNUM', 6: 'AT_PAGESZ',
  7: 'AT_BASE', 8: 'AT_FLAGS', 9: 'AT_ENTRY', 10: 'AT_NOTELF', 11: 'AT_UID', 12: 'AT_EUID', 13: 'AT_GID',
  14: 'AT_EGID', 15: 'AT_PLATFORM', 16: 'AT_HWCAP', 17: 'AT_CLKTCK', 23: 'AT_SECURE', 24: 'AT_BASE_PLATFORM',
  25: 'AT_RANDOM', 26: 'AT_HWCAP2', 27: 'AT_RSEQ_FEATURE_SIZE', 28: 'AT_RSEQ_ALIGN', 29: 'AT_HWCAP3',
  30: 'AT_HWCAP4', 31: 'AT_EXECFN', 32: 'AT_SYSINFO', 33: 'AT_SYSINFO_EHDR', 51: 'AT_MINSIGSTKSZ',
};

export interface AuxvEntry {
  type: number;
  name: string;
  value: bigint;
}

/**
 * Parse /proc/PID/auxv: native-endian u64 (type, value) pairs up to and
 * including AT_NULL. A length that is not a multiple of 16 is PROCFS_PARSE.
 */
export function parseAuxv(data: Uint8Array, opts?: ParseOptions): AuxvEntry[] {
  if (data.length % 16 !== 0) throw parseError(opts?.path, 1, `length ${data.length} is not a multiple of 16`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: AuxvEntry[] = [];
  for (let off = 0; off < data.length; off += 16) {
    const t = dv.getBigUint64(off, true);
    const value = dv.getBigUint64(off + 8, true);
    const type = t > 0xffffffffn ? -1 : Number(t);
    out.push({ type, name: AT_NAMES[type] ?? `AT_${t}`, value });
    if (t === 0n) break;
  }
  return out;
}

/** The u64 words as CRIU's mm image stores them (mm_saved_auxv): type, value, type, value… */
export function auxvWords(entries: AuxvEntry[]): bigint[] {
  return entries.flatMap((e) => [BigInt(e.type), e.value]);
}

export function readAuxv(target: Target, opts?: ProcOptions): AuxvEntry[] {
  const { path, data } = readProcBytes(target, 'auxv', opts);
  return parseAuxv(data, { path });
}
