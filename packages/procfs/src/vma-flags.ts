/**
 * Bit values CRIU stores in VmaEntry.status / flags / prot / madv
 * (facts of the image format: criu/include/image.h, <sys/mman.h>).
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

/** The names crit prints for status bits, lowest bit first. */
const STATUS_NAMES: [number, string][] = [
  [VMA.AREA_REGULAR, 'VMA_AREA_REGULAR'],
  [VMA.AREA_STACK, 'VMA_AREA_STACK'],
  [VMA.AREA_VSYSCALL, 'VMA_AREA_VSYSCALL'],
  [VMA.AREA_VDSO, 'VMA_AREA_VDSO'],
  [VMA.AREA_HEAP, 'VMA_AREA_HEAP'],
  [VMA.FILE_PRIVATE, 'VMA_FILE_PRIVATE'],
  [VMA.FILE_SHARED, 'VMA_FILE_SHARED'],
  [VMA.ANON_SHARED, 'VMA_ANON_SHARED'],
  [VMA.ANON_PRIVATE, 'VMA_ANON_PRIVATE'],
  [VMA.AREA_SYSVIPC, 'VMA_AREA_SYSVIPC'],
  [VMA.AREA_SOCKET, 'VMA_AREA_SOCKET'],
  [VMA.AREA_VVAR, 'VMA_AREA_VVAR'],
  [VMA.AREA_AIORING, 'VMA_AREA_AIORING'],
  [VMA.AREA_MEMFD, 'VMA_AREA_MEMFD'],
  [VMA.AREA_SHSTK, 'VMA_AREA_SHSTK'],
  [VMA.AREA_GUARD, 'VMA_AREA_GUARD'],
  [VMA.AREA_UPROBES, 'VMA_AREA_UPROBES'],
  [VMA.EXT_PLUGIN, 'VMA_EXT_PLUGIN'],
  [VMA.CLOSE, 'VMA_CLOSE'],
  [VMA.NO_PROT_WRITE, 'VMA_NO_PROT_WRITE'],
  [VMA.PREMMAPED, 'VMA_PREMMAPED'],
  [VMA.UNSUPP, 'VMA_UNSUPP'],
];

/** Status bits as names, e.g. ['VMA_AREA_REGULAR', 'VMA_FILE_PRIVATE']. */
export function vmaStatusNames(status: number): string[] {
  const out: string[] = [];
  for (const [bit, name] of STATUS_NAMES) if ((status & bit) !== 0) out.push(name);
  return out;
}

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;

export const MAP = {
  SHARED: 0x01,
  PRIVATE: 0x02,
  DROPPABLE: 0x08,
  ANONYMOUS: 0x20,
  GROWSDOWN: 0x0100,
  LOCKED: 0x2000,
  NORESERVE: 0x4000,
  HUGETLB: 0x40000,
} as const;

/** madvise advice numbers; VmaEntry.madv holds 1 << advice. */
export const MADV = {
  RANDOM: 1,
  SEQUENTIAL: 2,
  DONTFORK: 10,
  MERGEABLE: 12,
  HUGEPAGE: 14,
  NOHUGEPAGE: 15,
  DONTDUMP: 16,
  WIPEONFORK: 18,
} as const;

export const PAGE_SIZE = 4096n;
