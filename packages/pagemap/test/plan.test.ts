import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PE_LAZY,
  PE_PARENT,
  PE_PRESENT,
  PME_FILE,
  PME_PRESENT,
  PME_SOFT_DIRTY,
  PME_SWAP,
  PROT_READ,
  PROT_WRITE,
  VMA_ANON_PRIVATE,
  VMA_ANON_SHARED,
  VMA_AREA_HEAP,
  VMA_AREA_REGULAR,
  VMA_AREA_VDSO,
  VMA_AREA_VSYSCALL,
  VMA_AREA_VVAR,
  VMA_FILE_PRIVATE,
} from '../src/constants.js';
import { planDump, planShmem, type PlanVma } from '../src/plan.js';

const P = 4096n;
const ANON = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
const RW = PROT_READ | PROT_WRITE;
const ANON_FLAGS = MAP_PRIVATE | MAP_ANONYMOUS;
const ZERO_PFN = 0x1234n;

/** A synthetic address space: a map from page address to its pagemap entry. */
function space(pages: Map<bigint, bigint>) {
  return (start: bigint, n: number) => {
    const out = new BigUint64Array(n);
    for (let i = 0; i < n; i++) out[i] = pages.get(start + BigInt(i) * P) ?? 0n;
    return out;
  };
}
const present = (pfn = 0x100n) => PME_PRESENT | pfn;

function fill(m: Map<bigint, bigint>, start: bigint, nr: number, pme: bigint | ((i: number) => bigint)) {
  for (let i = 0; i < nr; i++) m.set(start + BigInt(i) * P, typeof pme === 'bigint' ? pme : pme(i));
}

describe('planDump: which pages', () => {
  it('dumps present and swapped anonymous pages, skips zero-page and absent ones', async () => {
    const m = new Map<bigint, bigint>();
    const base = 0x10000000n;
    m.set(base, present());
    m.set(base + P, PME_SWAP | 0x55n);
    m.set(base + 2n * P, present(ZERO_PFN)); // the shared zero page
    // base + 3P absent
    m.set(base + 4n * P, present());
    const vmas: PlanVma[] = [{ start: base, end: base + 5n * P, prot: RW, flags: ANON_FLAGS, status: ANON }];
    const plan = await planDump({ vmas, pagemap: space(m), zeroPagePfn: ZERO_PFN });
    expect(plan.entries).toEqual([
      { vaddr: base, nrPages: 2, flags: PE_PRESENT | PE_LAZY },
      { vaddr: base + 4n * P, nrPages: 1, flags: PE_PRESENT | PE_LAZY },
    ]);
    // CRIU counts one scan step per dumped page and one per skipped run (here: the zero + absent pair);
    // the first (non-lazy) buffer CRIU creates up front stays empty, the lazy pages need a second
    expect(plan.stats).toEqual({ pagesScanned: 4, pagesWritten: 3, pagesLazy: 0, pagesSkippedParent: 0, pagePipes: 2, pagePipeBufs: 2 });
  });

  it('skips file pages of private file mappings but keeps their COW-ed pages, non-lazy', async () => {
    const m = new Map<bigint, bigint>();
    const base = 0x20000000n;
    fill(m, base, 4, present() | PME_FILE);
    m.set(base + 2n * P, present()); // written: anonymous now
    const vmas: PlanVma[] = [
      { start: base, end: base + 4n * P, prot: PROT_READ, flags: MAP_PRIVATE, status: VMA_AREA_REGULAR | VMA_FILE_PRIVATE },
    ];
    const plan = await planDump({ vmas, pagemap: space(m) });
    expect(plan.entries).toEqual([{ vaddr: base + 2n * P, nrPages: 1, flags: PE_PRESENT }]);
  });

  it('never dumps vvar or vsyscall, always dumps the whole vdso, defers shared anon to shmem', async () => {
    const m = new Map<bigint, bigint>();
    const vvar = 0x7f0000000000n;
    const vdso = vvar + 6n * P;
    fill(m, vvar, 6, present());
    // vdso pages as the kernel reports them (special pages look like file pages)
    fill(m, vdso, 2, present() | PME_FILE);
    const shared = vdso + 16n * P;
    fill(m, shared, 2, present() | PME_FILE);
    const vsys = 0xffffffffff600000n;
    const vmas: PlanVma[] = [
      { start: vvar, end: vvar + 6n * P, prot: PROT_READ, flags: ANON_FLAGS, status: ANON | VMA_AREA_VVAR },
      { start: vdso, end: vdso + 2n * P, prot: PROT_READ | 4, flags: ANON_FLAGS, status: ANON | VMA_AREA_VDSO },
      { start: shared, end: shared + 2n * P, prot: RW, flags: 0x01 | MAP_ANONYMOUS, status: VMA_AREA_REGULAR | VMA_ANON_SHARED, shmid: 77n },
      { start: vsys, end: vsys + P, prot: 4, flags: ANON_FLAGS, status: VMA_AREA_VSYSCALL | VMA_ANON_PRIVATE },
    ];
    const plan = await planDump({ vmas, pagemap: space(m) });
    expect(plan.entries).toEqual([{ vaddr: vdso, nrPages: 2, flags: PE_PRESENT }]);
    expect(plan.sharedVmas.map((v) => v.shmid)).toEqual([77n]);
  });

  it('rejects unsorted or unaligned vmas with a BAD_INPUT error', async () => {
    const pagemap = space(new Map());
    const v = (s: bigint, e: bigint): PlanVma => ({ start: s, end: e, prot: RW, flags: ANON_FLAGS, status: ANON });
    const err = await planDump({ vmas: [v(0x2000n, 0x3000n), v(0x1000n, 0x2000n)], pagemap }).catch((e) => e);
    expect(isCrtoolsError(err) && err.code).toBe('PAGEMAP_BAD_VMA');
    expect(err.exitCode).toBe(3);
    const err2 = await planDump({ vmas: [v(0x1001n, 0x3000n)], pagemap }).catch((e) => e);
    expect(err2.code).toBe('PAGEMAP_BAD_VMA');
  });
});

describe('planDump: how pages become entries (CRIU page pipe)', () => {
  it('coalesces contiguous pages across vmas of the same kind and splits at 256-page buffers', async () => {
    const m = new Map<bigint, bigint>();
    const base = 0x7f0000000000n;
    fill(m, base, 600, present());
    const vmas: PlanVma[] = [
      { start: base, end: base + 100n * P, prot: RW, flags: ANON_FLAGS, status: ANON },
      { start: base + 100n * P, end: base + 600n * P, prot: RW, flags: ANON_FLAGS, status: ANON },
    ];
    const plan = await planDump({ vmas, pagemap: space(m), windowPages: 7 });
    expect(plan.entries.map((e) => [e.vaddr - base, e.nrPages])).toEqual([
      [0n, 256],
      [256n * P, 256],
      [512n * P, 88],
    ]);
  });

  it('starts a new entry when lazy and non-lazy pages alternate', async () => {
    const m = new Map<bigint, bigint>();
    const file = 0x400000n;
    const heap = file + 2n * P;
    fill(m, file, 2, present());
    fill(m, heap, 3, present());
    const vmas: PlanVma[] = [
      { start: file, end: file + 2n * P, prot: RW, flags: MAP_PRIVATE, status: VMA_AREA_REGULAR | VMA_FILE_PRIVATE },
      { start: heap, end: heap + 3n * P, prot: RW, flags: ANON_FLAGS, status: ANON | VMA_AREA_HEAP },
    ];
    const plan = await planDump({ vmas, pagemap: space(m) });
    expect(plan.entries).toEqual([
      { vaddr: file, nrPages: 2, flags: PE_PRESENT },
      { vaddr: heap, nrPages: 3, flags: PE_PRESENT | PE_LAZY },
    ]);
  });

  it('keeps a page-aligned thread stack pointer page non-lazy (CRIU is_stack)', async () => {
    const m = new Map<bigint, bigint>();
    const stack = 0x7ffd00000000n;
    fill(m, stack, 3, present());
    const vmas: PlanVma[] = [{ start: stack, end: stack + 3n * P, prot: RW, flags: ANON_FLAGS | 0x100, status: ANON }];
    // an sp in the middle of a page: CRIU's test compares in-page offsets, so every page stays lazy
    let plan = await planDump({ vmas, pagemap: space(m), threadSps: [stack + P + 0x80n] });
    expect(plan.entries).toEqual([{ vaddr: stack, nrPages: 3, flags: PE_PRESENT | PE_LAZY }]);
    // a page-aligned sp makes every page match
    plan = await planDump({ vmas, pagemap: space(m), threadSps: [stack + P] });
    expect(plan.entries).toEqual([{ vaddr: stack, nrPages: 3, flags: PE_PRESENT }]);
  });

  it('marks lazy pages without data in a lazy dump', async () => {
    const m = new Map<bigint, bigint>();
    const base = 0x10000n;
    fill(m, base, 2, present());
    const vmas: PlanVma[] = [{ start: base, end: base + 2n * P, prot: RW, flags: ANON_FLAGS, status: ANON }];
    const plan = await planDump({ vmas, pagemap: space(m), mode: 'lazy-dump' });
    expect(plan.entries).toEqual([{ vaddr: base, nrPages: 2, flags: PE_LAZY }]);
    expect(plan.stats.pagesLazy).toBe(2);
    expect(plan.stats.pagesWritten).toBe(0);
  });

  it('writes clean pages as parent holes in an incremental dump with memory tracking', async () => {
    const m = new Map<bigint, bigint>();
    const base = 0x10000n;
    fill(m, base, 6, (i) => present() | (i === 2 || i === 3 ? PME_SOFT_DIRTY : 0n));
    const vmas: PlanVma[] = [{ start: base, end: base + 6n * P, prot: RW, flags: ANON_FLAGS, status: ANON }];
    const plan = await planDump({ vmas, pagemap: space(m), hasParent: true, trackMem: true });
    expect(plan.entries).toEqual([
      { vaddr: base, nrPages: 2, flags: PE_PARENT },
      { vaddr: base + 2n * P, nrPages: 2, flags: PE_PRESENT | PE_LAZY },
      { vaddr: base + 4n * P, nrPages: 2, flags: PE_PARENT },
    ]);
    expect(plan.stats.pagesSkippedParent).toBe(4);
    // without tracking every page is written again
    const full = await planDump({ vmas, pagemap: space(m), hasParent: true });
    expect(full.entries).toEqual([{ vaddr: base, nrPages: 6, flags: PE_PRESENT | PE_LAZY }]);
    // a dump (not pre-dump) never relies on the parent for non-readable vmas
    const noRead = await planDump({
      vmas: [{ ...vmas[0], prot: PROT_WRITE }],
      pagemap: space(m),
      hasParent: true,
      trackMem: true,
    });
    expect(noRead.entries).toEqual([{ vaddr: base, nrPages: 6, flags: PE_PRESENT | PE_LAZY }]);
  });

  it('keeps address order and 256-page buffers across a chunk flush (8 pipes per chunk)', async () => {
    // 9 buffers' worth of dirty pages followed by clean ones would still give one hole run;
    // interleave so the chunk flush lands inside a hole run.
    const m = new Map<bigint, bigint>();
    const base = 0x100000000n;
    // 1 clean page, then 8*256 dirty pages, then 2 clean pages, then 1 dirty page
    const layout: boolean[] = [false, ...Array(8 * 256).fill(true), false, false, true];
    layout.forEach((dirty, i) => m.set(base + BigInt(i) * P, present() | (dirty ? PME_SOFT_DIRTY : 0n)));
    const vmas: PlanVma[] = [
      { start: base, end: base + BigInt(layout.length) * P, prot: RW, flags: MAP_PRIVATE, status: VMA_AREA_REGULAR | VMA_FILE_PRIVATE },
    ];
    const plan = await planDump({ vmas, pagemap: space(m), hasParent: true, trackMem: true });
    // the initial non-lazy buffer plus 7 more hold 8*256 pages; the 9th buffer forces a flush
    expect(plan.entries.map((e) => [Number((e.vaddr - base) / P), e.nrPages, e.flags])).toEqual([
      [0, 1, PE_PARENT],
      ...Array.from({ length: 8 }, (_, k) => [1 + k * 256, 256, PE_PRESENT]),
      [2049, 2, PE_PARENT],
      [2051, 1, PE_PRESENT],
    ]);
  });
  it('in a pre-dump a new buffer shares the previous pipe and has only its remaining room', async () => {
    const m = new Map<bigint, bigint>();
    const file = 0x400000n;
    const anon = 0x7f0000000000n;
    fill(m, file, 3, present());
    fill(m, anon, 600, present());
    const vmas: PlanVma[] = [
      { start: file, end: file + 3n * P, prot: RW, flags: MAP_PRIVATE, status: VMA_AREA_REGULAR | VMA_FILE_PRIVATE },
      { start: anon, end: anon + 600n * P, prot: RW, flags: ANON_FLAGS, status: ANON },
    ];
    const shape = (es: { vaddr: bigint; nrPages: number }[]) => es.map((e) => e.nrPages);
    // dump (chunk mode): every buffer has its own pipe
    expect(shape((await planDump({ vmas, pagemap: space(m) })).entries)).toEqual([3, 256, 256, 88]);
    // pre-dump: the first lazy buffer continues the 3-page pipe, so it holds 253 pages
    expect(shape((await planDump({ vmas, pagemap: space(m), mode: 'pre-dump' })).entries)).toEqual([3, 253, 256, 91]);
  });
});

describe('planShmem', () => {
  it('skips zero pages and writes the rest as present entries at object offsets', async () => {
    const states = ['dirty', 'dirty', 'zero', 'dirty', 'clean'] as const;
    const plan = await planShmem({ nrPages: states.length, pageState: (i) => states[i] });
    expect(plan.entries).toEqual([
      { vaddr: 0n, nrPages: 2, flags: PE_PRESENT },
      { vaddr: 3n * P, nrPages: 2, flags: PE_PRESENT },
    ]);
    const inc = await planShmem({ nrPages: states.length, pageState: (i) => states[i], hasParent: true, trackMem: true });
    expect(inc.entries.at(-1)).toEqual({ vaddr: 4n * P, nrPages: 1, flags: PE_PARENT });
  });
});
