/** Kernel facts about memfds (linux/fcntl.h, linux/memfd.h, linux/magic.h). */

/** F_ADD_SEALS / F_GET_SEALS bits */
export const SEAL = {
  SEAL: 0x1,
  SHRINK: 0x2,
  GROW: 0x4,
  WRITE: 0x8,
  FUTURE_WRITE: 0x10,
  EXEC: 0x20,
} as const;

/** memfd_create flags */
export const MFD = {
  CLOEXEC: 0x1,
  ALLOW_SEALING: 0x2,
  HUGETLB: 0x4,
} as const;

/** where memfd_create (MFD_HUGETLB) and mmap (MAP_HUGETLB) take log2 of the huge page size */
export const MFD_HUGE_SHIFT = 26;

/** statfs f_type of the filesystems a memfd lives on */
export const FS_MAGIC = {
  TMPFS: 0x01021994,
  HUGETLBFS: 0x958458f6,
} as const;

/** how /proc names a memfd: `/memfd:NAME (deleted)` */
export const MEMFD_PREFIX = '/memfd:';
