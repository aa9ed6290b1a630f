/**
 * VmaEntry.status bits (mm-<pid>.img): what kind of area a VMA is, as CRIU's VMA_AREA_* and
 * VMA_* flags say. Image-format facts: dump, restore and crit read them from here.
 */
export const VMA_AREA_REGULAR = 1 << 0;
export const VMA_AREA_STACK = 1 << 1;
export const VMA_AREA_VSYSCALL = 1 << 2;
export const VMA_AREA_VDSO = 1 << 3;
export const VMA_AREA_HEAP = 1 << 5;
export const VMA_FILE_PRIVATE = 1 << 6;
export const VMA_FILE_SHARED = 1 << 7;
export const VMA_ANON_SHARED = 1 << 8;
export const VMA_ANON_PRIVATE = 1 << 9;
export const VMA_AREA_SYSVIPC = 1 << 10;
export const VMA_AREA_SOCKET = 1 << 11;
export const VMA_AREA_VVAR = 1 << 12;
export const VMA_AREA_AIORING = 1 << 13;
export const VMA_AREA_MEMFD = 1 << 14;
export const VMA_AREA_SHSTK = 1 << 15;
export const VMA_AREA_GUARD = 1 << 16;
export const VMA_AREA_UPROBES = 1 << 17;
export const VMA_UNSUPP = 1 << 31;
