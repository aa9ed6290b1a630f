/**
 * VmaEntry.status bits are a fact of CRIU's image format: their one table is in
 * @crtools/images (facts); procfs computes them from /proc/PID/maps.
 */
export { VMA, vmaStatusNames } from '@crtools/images/facts';

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

