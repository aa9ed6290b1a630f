/**
 * VmaEntry.status bits under CRIU's constant names (VMA_AREA_REGULAR ...), taken from the one
 * table in facts/vma.ts.
 */
import { VMA } from './facts/vma.js';

export const VMA_AREA_REGULAR = VMA.AREA_REGULAR;
export const VMA_AREA_STACK = VMA.AREA_STACK;
export const VMA_AREA_VSYSCALL = VMA.AREA_VSYSCALL;
export const VMA_AREA_VDSO = VMA.AREA_VDSO;
export const VMA_AREA_HEAP = VMA.AREA_HEAP;
export const VMA_FILE_PRIVATE = VMA.FILE_PRIVATE;
export const VMA_FILE_SHARED = VMA.FILE_SHARED;
export const VMA_ANON_SHARED = VMA.ANON_SHARED;
export const VMA_ANON_PRIVATE = VMA.ANON_PRIVATE;
export const VMA_AREA_SYSVIPC = VMA.AREA_SYSVIPC;
export const VMA_AREA_SOCKET = VMA.AREA_SOCKET;
export const VMA_AREA_VVAR = VMA.AREA_VVAR;
export const VMA_AREA_AIORING = VMA.AREA_AIORING;
export const VMA_AREA_MEMFD = VMA.AREA_MEMFD;
export const VMA_AREA_SHSTK = VMA.AREA_SHSTK;
export const VMA_AREA_GUARD = VMA.AREA_GUARD;
export const VMA_AREA_UPROBES = VMA.AREA_UPROBES;
export const VMA_UNSUPP = VMA.UNSUPP;
