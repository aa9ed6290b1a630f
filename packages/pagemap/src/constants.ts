/**
 * Numeric facts of CRIU's memory format and of the kernel's pagemap file.
 * Values are checked against CRIU 4.2 (criu/include/pagemap.h, mem.h, image.h,
 * page-pipe.h) and Documentation/admin-guide/mm/pagemap.rst.
 */
import { PM } from '@crtools/procfs';
import { PE } from './_images.js';

/** Page size on x86_64 (@crtools/common's). Every address and length in this package is a multiple of it. */
export { PAGE_SIZE, PAGE_SHIFT } from '@crtools/common';

/** Flags of a pagemap image entry (PagemapEntry.flags), from the format's one table (@crtools/images). */
export const PE_PARENT = PE.PARENT; // the pages live in the parent snapshot
export const PE_LAZY = PE.LAZY; // the pages may be restored lazily
export const PE_PRESENT = PE.PRESENT; // the pages are stored in the pages-<id>.img file

/** Bits of one 64-bit /proc/PID/pagemap entry: a kernel fact kept in @crtools/procfs (PM). */
export const PME_PRESENT = PM.PRESENT;
export const PME_SWAP = PM.SWAPPED;
export const PME_FILE = PM.FILE; // file page or shared anonymous page
export const PME_GUARD_REGION = PM.GUARD; // MADV_GUARD_INSTALL'ed page (kernel >= 6.15)
export const PME_SOFT_DIRTY = PM.SOFT_DIRTY;
/** PFN (or swap type/offset) bits 0..54. */
export const PME_PFRAME_MASK = PM.PFN_MASK;

/** VmaEntry.status bits: an image-format fact, kept in @crtools/images. */
export {
  VMA_AREA_REGULAR, VMA_AREA_STACK, VMA_AREA_VSYSCALL, VMA_AREA_VDSO, VMA_AREA_HEAP, VMA_FILE_PRIVATE, VMA_FILE_SHARED,
  VMA_ANON_SHARED, VMA_ANON_PRIVATE, VMA_AREA_SYSVIPC, VMA_AREA_SOCKET, VMA_AREA_VVAR, VMA_AREA_AIORING, VMA_AREA_MEMFD,
  VMA_AREA_SHSTK, VMA_AREA_GUARD, VMA_AREA_UPROBES, VMA_UNSUPP,
} from './_images.js';

/** mmap flags and protections as they appear in VmaEntry.flags / .prot. */
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_DROPPABLE = 0x08;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_LOCKED = 0x2000;
export const MAP_HUGETLB = 0x40000;

/** TASK_SIZE of an x86_64 process with 4-level page tables (kerndat's task_size). */
export const DEFAULT_TASK_SIZE = 0x7ffffffff000n;

/**
 * Pages one page-pipe buffer holds. CRIU grows each pipe by doubling from 16 pages; the growth
 * stops at /proc/sys/fs/pipe-max-size (1 MiB = 256 pages) without CAP_SYS_RESOURCE, which is the
 * case on this project's machines (the fixtures' dump.log shows "Grow pipe 80 -> 100" as the last
 * step). With CAP_SYS_RESOURCE the kernel lets it reach 1024 pages.
 */
export const DEFAULT_PIPE_CAPACITY_PAGES = 256;
/** Pipes per chunk in CRIU's chunk mode (NR_PIPES_PER_CHUNK). */
export const NR_PIPES_PER_CHUNK = 8;

/** Page-server command words (the PS_IOV_* of criu/page-xfer.c). */
export const PS_IOV_ADD = 1;
export const PS_IOV_HOLE = 2;
export const PS_IOV_OPEN = 3;
export const PS_IOV_OPEN2 = 4;
export const PS_IOV_PARENT = 5;
export const PS_IOV_ADD_F = 6;
export const PS_IOV_GET = 7;
export const PS_IOV_CLOSE = 0x1023;
export const PS_IOV_FORCE_CLOSE = 0x1024;
/** dst_id type tags: (id << 8) | type. */
export const PS_TYPE_PID = 1;
export const PS_TYPE_SHMEM = 2;
