/**
 * Deciding which pages of a task to dump, the way CRIU 4.2 does (criu/mem.c generate_vma_iovs,
 * generate_iovs, should_dump_page; criu/page-pipe.c for how pages become entries).
 */
import { CrtoolsError, ExitCode, firstEndingAfter } from '@crtools/common';
import {
  DEFAULT_PIPE_CAPACITY_PAGES,
  DEFAULT_TASK_SIZE,
  MAP_ANONYMOUS,
  MAP_DROPPABLE,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_PRIVATE,
  NR_PIPES_PER_CHUNK,
  PAGE_SIZE,
  PE_LAZY,
  PE_PARENT,
  PE_PRESENT,
  PME_FILE,
  PME_GUARD_REGION,
  PME_PFRAME_MASK,
  PME_PRESENT,
  PME_SOFT_DIRTY,
  PME_SWAP,
  PROT_READ,
  VMA_ANON_PRIVATE,
  VMA_ANON_SHARED,
  VMA_AREA_AIORING,
  VMA_AREA_GUARD,
  VMA_AREA_MEMFD,
  VMA_AREA_REGULAR,
  VMA_AREA_SHSTK,
  VMA_AREA_VDSO,
  VMA_AREA_VSYSCALL,
  VMA_AREA_VVAR,
  VMA_FILE_PRIVATE,
  VMA_FILE_SHARED,
} from './constants.js';
import { PagePipeModel, PPB_LAZY } from './_page-pipe.js';

/** The fields of a VMA the planner looks at: those of CRIU's VmaEntry (mm-<pid>.img). */
export interface PlanVma {
  start: bigint;
  end: bigint;
  /** PROT_* bits. */
  prot: number;
  /** MAP_* bits. */
  flags: number;
  /** CRIU's VMA_AREA_* / VMA_* status bits (as procfs classifies the mapping). */
  status: number;
  /** For shared mappings: the shmem id the pages are dumped under. */
  shmid?: bigint;
}

/**
 * Reads /proc/PID/pagemap entries: one 64-bit entry per page for `nrPages` pages from `start`.
 * procfs provides one; tests pass synthetic arrays.
 */
export type PagemapEntriesFn = (start: bigint, nrPages: number) => BigUint64Array | Promise<BigUint64Array>;

export type DumpMode = 'dump' | 'pre-dump' | 'lazy-dump';
export type PreDumpMode = 'splice' | 'read';

export interface PlanOptions {
  vmas: Iterable<PlanVma>;
  pagemap: PagemapEntriesFn;
  /** kerndat's zero page PFN; pages mapped to it are not dumped. Omit to not detect zero pages. */
  zeroPagePfn?: bigint;
  /** kerndat's task_size; private VMAs above it (vsyscall) are not dumped. */
  taskSize?: bigint;
  /** Stack pointers of the task's threads (CRIU keeps the page they are on non-lazy). */
  threadSps?: readonly bigint[];
  /** 'dump' (default, CRIU's chunk mode), 'pre-dump', or 'lazy-dump' (--lazy-pages). */
  mode?: DumpMode;
  /**
   * Incremental dump: a parent snapshot exists for this task (and no pid reuse was detected).
   * With `trackMem`, pages whose pagemap entry lacks the soft-dirty bit (55) become
   * PE_PARENT holes. On kernels without soft-dirty the caller may set bit 55 itself for pages
   * it knows were written (e.g. from PAGEMAP_SCAN's PAGE_IS_WRITTEN).
   */
  hasParent?: boolean;
  trackMem?: boolean;
  /** Pre-dump mode of this run and of the parent pre-dump (inventory's pre_dump_mode). */
  preDumpMode?: PreDumpMode;
  parentPreDumpMode?: PreDumpMode;
  /**
   * With a parent and trackMem: page runs ([start, end), page aligned, ascending, not
   * overlapping) the caller knows hold only ordinary present pages (not the zero page, not a
   * file's, no swap entry or PTE marker) not written since the parent, e.g. from PAGEMAP_SCAN
   * (PRESENT, none of WRITTEN, PFNZERO, FILE, SWAPPED). They become PE_PARENT holes without
   * their pagemap entries being read: the same entries as reading them gives, in a fraction
   * of the time when most of the memory was not written since (a final dump after pre-dumps).
   */
  parentRuns?: readonly { start: bigint; end: bigint }[];
  /** Pages per pipe buffer (256 without CAP_SYS_RESOURCE, see constants). */
  pipeCapacityPages?: number;
  /** How many pagemap entries to request per call (bounded memory). Default 65536 (512 KiB). */
  windowPages?: number;
}

/** One pagemap image entry to write, in order. Addresses are bigint. */
export interface PlannedEntry {
  vaddr: bigint;
  nrPages: number;
  /** PE_* bits: PE_PRESENT (data in pages image), PE_LAZY, PE_PARENT (data in parent). */
  flags: number;
}

export interface PlanStats {
  /**
   * CRIU's pages_scanned: iterations of its scan loop, i.e. one per page dumped or left to the
   * parent plus one per run of skipped pages (CRIU 4.2 with PAGEMAP_SCAN jumps over each run).
   */
  pagesScanned: number;
  /** Pages whose data goes into the pages image. */
  pagesWritten: number;
  /** Pages left for lazy restore (lazy-dump only). */
  pagesLazy: number;
  pagesSkippedParent: number;
  /** CRIU's page_pipes / page_pipe_bufs counters. */
  pagePipes: number;
  pagePipeBufs: number;
}

export interface DumpPlan {
  entries: PlannedEntry[];
  /**
   * Shared memory VMAs (VMA_ANON_SHARED, or FILE_SHARED | MEMFD, which is how CRIU 4.2 sees
   * both memfds and anonymous shared mappings): their pages are dumped once per object
   * (pagemap-shmem-<id>.img, see dumpShmemFile), not in the task's pagemap.
   */
  sharedVmas: PlanVma[];
  stats: PlanStats;
}

const PAGE = BigInt(PAGE_SIZE);
// pagemap entry bits as seen in the high 32-bit word (bit n of the entry is bit n-32 here)
const HI_PRESENT = Number(PME_PRESENT >> 32n) >>> 0;
const HI_SWAP = Number(PME_SWAP >> 32n);
const HI_FILE = Number(PME_FILE >> 32n);
const HI_GUARD = Number(PME_GUARD_REGION >> 32n);
/** the swap type of a PTE marker in a pagemap entry's low 5 bits (the last of the 32 types) */
const SWP_PTE_MARKER = 31;
const HI_SOFT_DIRTY = Number(PME_SOFT_DIRTY >> 32n);
const HI_PFN_MASK = Number(PME_PFRAME_MASK >> 32n);

function has(status: number, bit: number): boolean {
  return (status & bit) === bit;
}

/** CRIU's vma_entry_is_private. */
export function vmaIsPrivate(v: PlanVma, taskSize: bigint = DEFAULT_TASK_SIZE): boolean {
  return (
    (has(v.status, VMA_AREA_REGULAR) &&
      (has(v.status, VMA_ANON_PRIVATE) || has(v.status, VMA_FILE_PRIVATE)) &&
      v.end <= taskSize) ||
    has(v.status, VMA_AREA_SHSTK) ||
    has(v.status, VMA_AREA_AIORING)
  );
}

/** CRIU's vma_entry_can_be_lazy. */
export function vmaCanBeLazy(v: PlanVma): boolean {
  return (
    (v.flags & MAP_ANONYMOUS) !== 0 &&
    (v.flags & MAP_PRIVATE) !== 0 &&
    (v.flags & MAP_LOCKED) === 0 &&
    !has(v.status, VMA_AREA_VDSO) &&
    !has(v.status, VMA_AREA_VVAR) &&
    !has(v.status, VMA_AREA_VSYSCALL) &&
    (v.flags & MAP_HUGETLB) === 0
  );
}

/**
 * CRIU's is_stack(). Note: CRIU compares `(sp ^ vaddr) & ~PAGE_MASK`, i.e. the offsets within
 * the page, not the page numbers; for a page-aligned vaddr this is true only when a thread's sp
 * is itself page-aligned. We reproduce the test as CRIU 4.2 performs it, so that our lazy flags
 * match its images (the fixtures' stack pages are all PE_LAZY).
 */
function isStackPage(sps: readonly bigint[], vaddr: bigint): boolean {
  for (const sp of sps) if (((sp ^ vaddr) & (PAGE - 1n)) === 0n) return true;
  return false;
}

function validateVma(v: PlanVma, prevEnd: bigint): void {
  const bad = (why: string) =>
    new CrtoolsError('PAGEMAP_BAD_VMA', `vma ${v.start.toString(16)}-${v.end.toString(16)}: ${why}`, {
      exitCode: ExitCode.BAD_INPUT,
      context: { start: v.start, end: v.end },
    });
  if (typeof v.start !== 'bigint' || typeof v.end !== 'bigint') throw bad('start/end must be bigint');
  if (v.start % PAGE !== 0n || v.end % PAGE !== 0n) throw bad('not page aligned');
  if (v.end <= v.start) throw bad('empty or inverted');
  if (v.start < prevEnd) throw bad('overlaps or is not sorted after the previous vma');
}

/**
 * Plan the pagemap entries of one task. Returns the entries in the order CRIU writes them,
 * split exactly where CRIU's page pipe splits them.
 */
export async function planDump(o: PlanOptions): Promise<DumpPlan> {
  const mode = o.mode ?? 'dump';
  const preDump = mode === 'pre-dump';
  const lazy = mode === 'lazy-dump';
  const taskSize = o.taskSize ?? DEFAULT_TASK_SIZE;
  const sps = o.threadSps ?? [];
  // an area's start is page-aligned (validateVma): isStackPage's answer for it is the same for
  // every area, found once (a task of 1,000 threads and 2,000 areas: 2 million bigint tests)
  const stackAtAreaStart = isStackPage(sps, 0n);
  const window = Math.max(1, o.windowPages ?? 65536);
  const preDumpMode = o.preDumpMode ?? 'splice';
  const pipe = new PagePipeModel({
    chunkMode: !(preDump || lazy),
    lazyPages: lazy,
    transferLazy: !lazy,
    pipeCapacityPages: o.pipeCapacityPages ?? DEFAULT_PIPE_CAPACITY_PAGES,
    pipesPerChunk: NR_PIPES_PER_CHUNK,
  });
  const stats: PlanStats = { pagesScanned: 0, pagesWritten: 0, pagesLazy: 0, pagesSkippedParent: 0, pagePipes: 0, pagePipeBufs: 0 };
  const sharedVmas: PlanVma[] = [];
  const zero = o.zeroPagePfn !== undefined;
  const zeroHi = zero ? Number((o.zeroPagePfn! >> 32n) & 0x7fffffn) : 0;
  const zeroLo = zero ? Number(o.zeroPagePfn! & 0xffffffffn) : 0;
  let prevEnd = 0n;

  for (const v of o.vmas) {
    validateVma(v, prevEnd);
    prevEnd = v.end;
    if (has(v.status, VMA_AREA_GUARD)) continue;
    const isPrivate = vmaIsPrivate(v, taskSize);
    // Shared memory objects are dumped per object, not per task. CRIU 4.2 treats anonymous
    // shared mappings as memfds too (status FILE_SHARED | MEMFD on the anon-shmem device).
    if (!isPrivate && has(v.status, VMA_AREA_MEMFD) && has(v.status, VMA_FILE_SHARED)) {
      sharedVmas.push(v);
      continue;
    }
    if (!isPrivate && !has(v.status, VMA_ANON_SHARED)) continue;
    // The vvar area is never dumped: the restored task uses the kernel's own.
    if (has(v.status, VMA_AREA_VVAR)) continue;
    // MAP_DROPPABLE pages may be zeroed by the kernel at any time: not dumped.
    if (v.flags & MAP_DROPPABLE) continue;

    let hasParent = !!o.hasParent;
    if (!(v.prot & PROT_READ)) {
      if (preDumpMode === 'read' && preDump) continue;
      if ((o.parentPreDumpMode === 'read' && preDumpMode === 'splice') || !preDump) hasParent = false;
    }
    if (has(v.status, VMA_AREA_AIORING) || v.flags & MAP_HUGETLB) {
      if (preDump) continue;
      hasParent = false;
    }
    if (has(v.status, VMA_ANON_SHARED)) {
      sharedVmas.push(v);
      continue;
    }

    const dumpAll = has(v.status, VMA_AREA_VDSO) || has(v.status, VMA_AREA_AIORING);
    const filePrivate = has(v.status, VMA_FILE_PRIVATE);
    const inParentPossible = hasParent && !!o.trackMem;
    const ppbFlags = vmaCanBeLazy(v) && !stackAtAreaStart ? PPB_LAZY : 0;
    const lazyNotWritten = ppbFlags !== 0 && lazy;
    let prevKind = -1; // kind of the previous page of this vma, across windows

    // the pages of [from, to) as their pagemap entries say
    const scan = async (from: bigint, to: bigint) => {
      for (let start = from; start < to; ) {
        const left = Number((to - start) / PAGE);
        const n = Math.min(left, window);
        const pmes = await o.pagemap(start, n);
        if (!(pmes instanceof BigUint64Array) || pmes.length < n) {
          throw new CrtoolsError(
            'PAGEMAP_SHORT_READ',
            `pagemap source returned ${pmes?.length ?? 0} entries for ${n} pages at ${start.toString(16)}`,
            { exitCode: ExitCode.FAILED, context: { vaddr: start } },
          );
        }
        // Look at the entries as 32-bit halves: flags live in the high word, the PFN spans both.
        const w = new Uint32Array(pmes.buffer, pmes.byteOffset, n * 2);
        let runStart = 0;
        let runKind = 0; // 0 skip, 1 dump, 2 parent hole
        const emit = (end: number) => {
          const count = end - runStart;
          if (count <= 0 || runKind === 0) return;
          const addr = start + BigInt(runStart) * PAGE;
          if (runKind === 2) {
            pipe.addHoles(addr, count);
            stats.pagesSkippedParent += count;
          } else {
            pipe.addPages(addr, count, ppbFlags);
            if (lazyNotWritten) stats.pagesLazy += count;
            else stats.pagesWritten += count;
          }
        };
        for (let i = 0; i < n; i++) {
          const hi = w[2 * i + 1];
          const lo = w[2 * i];
          let dump: boolean;
          if (hi & HI_GUARD) dump = false;
          else if (filePrivate && hi & HI_FILE) dump = false; // not yet COW-ed: the file has it
          // a PTE marker (swap type 31, SWP_PTE_MARKER: userfaultfd write-protect of an empty
          // page, e.g. by dirty tracking) is no page: nothing to dump
          else if (hi & HI_SWAP && !(hi & HI_PRESENT) && (lo & 0x1f) === SWP_PTE_MARKER) dump = false;
          else if (hi & (HI_PRESENT | HI_SWAP)) dump = !zero || (hi & HI_PFN_MASK) !== zeroHi || lo !== zeroLo;
          else dump = false;
          const kind = !dump && !dumpAll ? 0 : inParentPossible && !(hi & HI_SOFT_DIRTY) ? 2 : 1;
          if (kind !== 0 || prevKind !== 0) stats.pagesScanned++;
          prevKind = kind;
          if (kind !== runKind) {
            emit(i);
            runStart = i;
            runKind = kind;
          }
        }
        emit(n);
        start += BigInt(n) * PAGE;
      }
    };
    let at = v.start;
    if (inParentPossible && o.parentRuns) {
      for (let k = firstEndingAfter(o.parentRuns, v.start); k < o.parentRuns.length; k++) {
        const r = o.parentRuns[k]!;
        if (r.start >= v.end) break;
        const a = r.start > at ? r.start : at;
        const b = r.end < v.end ? r.end : v.end;
        if (b <= a) continue;
        await scan(at, a);
        // (what the scan makes of them: one hole run, each page counted as scanned)
        const count = Number((b - a) / PAGE);
        pipe.addHoles(a, count);
        stats.pagesSkippedParent += count;
        stats.pagesScanned += count;
        prevKind = 2;
        at = b;
      }
    }
    await scan(at, v.end);
  }
  stats.pagePipes = pipe.pipesCreated;
  stats.pagePipeBufs = pipe.bufsAllocated;
  return { entries: pipe.entries, sharedVmas, stats };
}

/** Page state of one page of a shared memory object, for planShmem. */
export type ShmemPageState = 'zero' | 'dirty' | 'clean';

/**
 * Plan the pagemap-shmem-<shmid> entries of one shared anonymous object of `nrPages` pages
 * (criu/shmem.c do_dump_one_shmem): 'zero' pages (holes in the object) are skipped; with a
 * parent and memory tracking, 'clean' pages become PE_PARENT holes; others are PE_PRESENT.
 * Addresses are offsets within the object.
 */
export async function planShmem(o: {
  nrPages: number;
  pageState: (pfn: number) => ShmemPageState | Promise<ShmemPageState>;
  hasParent?: boolean;
  trackMem?: boolean;
  pipeCapacityPages?: number;
}): Promise<DumpPlan> {
  const pipe = new PagePipeModel({
    chunkMode: true,
    lazyPages: false,
    transferLazy: true,
    pipeCapacityPages: o.pipeCapacityPages ?? DEFAULT_PIPE_CAPACITY_PAGES,
    pipesPerChunk: NR_PIPES_PER_CHUNK,
  });
  const stats: PlanStats = { pagesScanned: o.nrPages, pagesWritten: 0, pagesLazy: 0, pagesSkippedParent: 0, pagePipes: 0, pagePipeBufs: 0 };
  for (let pfn = 0; pfn < o.nrPages; pfn++) {
    const st = await o.pageState(pfn);
    if (st === 'zero') continue;
    const addr = BigInt(pfn) * PAGE;
    if (o.hasParent && o.trackMem && st === 'clean') {
      pipe.addHole(addr);
      stats.pagesSkippedParent++;
    } else {
      pipe.addPage(addr, 0);
      stats.pagesWritten++;
    }
  }
  stats.pagePipes = pipe.pipesCreated;
  stats.pagePipeBufs = pipe.bufsAllocated;
  return { entries: pipe.entries, sharedVmas: [], stats };
}

/** Sum of pages an entry list stores in its pages image. */
export function presentPages(entries: readonly PlannedEntry[]): number {
  let n = 0;
  for (const e of entries) if (e.flags & PE_PRESENT) n += e.nrPages;
  return n;
}

