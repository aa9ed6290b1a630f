/**
 * VmaEntry.status bits (mm-<pid>.img): what kind of area a VMA is, as CRIU's VMA_AREA_* and
 * VMA_* say (criu/include/image.h). The one table: procfs computes them, the dump writes them,
 * the restore plan and crit read them.
 */
export const VMA = {
  AREA_NONE: 0,
  AREA_REGULAR: 1 << 0,
  AREA_STACK: 1 << 1,
  AREA_VSYSCALL: 1 << 2,
  AREA_VDSO: 1 << 3,
  AREA_HEAP: 1 << 5,
  FILE_PRIVATE: 1 << 6,
  FILE_SHARED: 1 << 7,
  ANON_SHARED: 1 << 8,
  ANON_PRIVATE: 1 << 9,
  AREA_SYSVIPC: 1 << 10,
  AREA_SOCKET: 1 << 11,
  AREA_VVAR: 1 << 12,
  AREA_AIORING: 1 << 13,
  AREA_MEMFD: 1 << 14,
  AREA_SHSTK: 1 << 15,
  AREA_GUARD: 1 << 16,
  AREA_UPROBES: 1 << 17,
  EXT_PLUGIN: 1 << 27,
  CLOSE: 1 << 28,
  NO_PROT_WRITE: 1 << 29,
  PREMMAPED: 1 << 30,
  UNSUPP: 2 ** 31,
} as const;

export type VmaStatusName = keyof typeof VMA;

/** The bits CRIU's crit names in --pretty output (pycriu's mmap_status_map), in its order. */
export const CRIT_VMA_STATUS: readonly VmaStatusName[] = [
  'AREA_NONE', 'AREA_REGULAR', 'AREA_STACK', 'AREA_VSYSCALL', 'AREA_VDSO', 'AREA_HEAP', 'FILE_PRIVATE', 'FILE_SHARED',
  'ANON_SHARED', 'ANON_PRIVATE', 'AREA_SYSVIPC', 'AREA_SOCKET', 'AREA_VVAR', 'AREA_AIORING', 'AREA_MEMFD', 'AREA_SHSTK',
  'AREA_UPROBES', 'UNSUPP',
];

/** Status bits as CRIU's names, lowest bit first, e.g. ['VMA_AREA_REGULAR', 'VMA_FILE_PRIVATE']. */
export function vmaStatusNames(status: number): string[] {
  const out: string[] = [];
  for (const [name, bit] of Object.entries(VMA)) if (bit !== 0 && (status & bit) !== 0) out.push(`VMA_${name}`);
  return out;
}
