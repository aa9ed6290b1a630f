import { describe, expect, it } from 'vitest';
import { COMPARE, cowLayout, HUGE, LAY, writtenAreas } from '../src/cow.js';
import { uffdRunFlags } from '../src/encode.js';
import { X86_REGS, type PageRun, type RestorePlan, type TaskPlan, type ThreadPlan, type VmaPlan, type X86Reg } from '../src/plan.js';

function thread(tid: number): ThreadPlan {
  const regs = Object.fromEntries(X86_REGS.map((r) => [r, 0n])) as Record<X86Reg, bigint>;
  return { tid, regs, fxsave: Buffer.alloc(512), xstateBv: 3n, blkSigset: 0n, sas: { sp: 0n, size: 0n, flags: 2 }, clearTid: 0n };
}

function task(pid: number, parent: number, vmas: VmaPlan[], pages: PageRun[], extra: Partial<TaskPlan> = {}): TaskPlan {
  return {
    pid, parent, pgid: pid, sid: pid, threads: [thread(pid)], vmas, pages, fds: [], umask: 0o22, personality: 0, exe: '/bin/w',
    mm: { startCode: 0n, endCode: 0n, startData: 0n, endData: 0n, startStack: 0n, startBrk: 0n, brk: 0n, argStart: 0n, argEnd: 0n, envStart: 0n, envEnd: 0n },
    auxv: [], dumpable: 1, sigactions: [], rlimits: [], creds: { uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0, groups: [] },
    itimers: [], childSubreaper: false, ...extra,
  };
}

const P = 0x1000n;
const heap: VmaPlan = { start: 0x100000n, end: 0x100000n + 256n * P, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' };
const data: VmaPlan = { start: 0x400000n, end: 0x402000n, pgoff: 0x3n, prot: 3, flags: 0x2, kind: 'file-private', path: '/bin/w', openFlags: 0 };
const run = (page: bigint, npages: bigint, offset = 0n): PageRun => ({ vaddr: heap.start + page * P, npages, offset });

describe('cowLayout: which areas a child takes over from its parent', () => {
  it('matching private areas are taken over; their runs compared, the parent\'s pages the child lacks dropped', () => {
    const plan: RestorePlan = {
      tasks: [
        task(100, -1, [heap, data], [run(0n, 256n), { vaddr: data.start, npages: 2n, offset: 256n * P }]),
        // the child lacks pages 10..11 (it dropped them) and has the rest
        task(101, 0, [heap, data], [run(0n, 10n), run(12n, 244n, 10n * P), { vaddr: data.start, npages: 2n, offset: 254n * P }]),
      ],
      files: [],
    };
    const [root, child] = cowLayout(plan);
    expect(root!.inherits).toEqual([-1, -1]);
    expect(child!.inherits).toEqual([0, 1]);
    expect(child!.compare).toEqual([LAY, LAY, LAY]);
    expect(child!.drops).toEqual([{ start: heap.start + 10n * P, end: heap.start + 12n * P }]);
    // the parent may lay pages of its children over its own: it checks its runs there again after forking
    expect(root!.refill).toEqual([true, true]);
    expect(root!.lateDrops).toEqual([]);
    // runs compared are never filled through userfaultfd (the launcher's helper takes none of them)
    expect(uffdRunFlags(plan, 1)).toEqual([false, false, false]);
    expect(uffdRunFlags(plan, 0)).toEqual([true, false]);
  });

  it('private huge pages are taken over too: compared (never dropped first) where the dump found them shared (cowHuge), else written whole', () => {
    const huge: VmaPlan = { start: 0x40000000n, end: 0x40400000n, pgoff: 0n, prot: 3, flags: 0x22 | 0x40000 | (21 << 26), kind: 'anon' };
    const hrun: PageRun = { vaddr: huge.start, npages: 1024n, offset: 0n };
    for (const [cowHuge, want] of [[true, LAY | HUGE], [false, HUGE]] as const) {
      const plan: RestorePlan = {
        tasks: [task(100, -1, [huge], [hrun]), task(101, 0, [{ ...huge, ...(cowHuge ? { cowHuge } : {}) }], [{ ...hrun, offset: 1024n * P }])],
        files: [],
      };
      const [root, child] = cowLayout(plan);
      expect(child!.inherits).toEqual([0]);
      expect(child!.compare).toEqual([want]);
      // the root's own run: on huge pages too (what it lays for a child is put back the same way)
      expect(root!.compare).toEqual([HUGE]);
      expect(root!.refill).toEqual([cowHuge]);
    }
  });

  it('nothing is taken over across another program, from or by a zombie, or where the areas differ', () => {
    const base = task(100, -1, [heap], [run(0n, 4n)]);
    const cases: TaskPlan[] = [
      task(101, 0, [heap], [run(0n, 4n)], { exe: '/bin/other' }),
      task(101, 0, [], [], { zombie: { status: 0 } }),
      task(101, 0, [{ ...heap, end: heap.end - P }], [run(0n, 4n)]),
      task(101, 0, [{ ...heap, flags: 0x22 | 0x2000 }], [run(0n, 4n)]),
      task(101, 0, [{ ...heap, madv: 1n << 10n }], [run(0n, 4n)]),
      task(101, 0, [{ ...heap, kind: 'file-shared', shmem: 0 }], [run(0n, 4n)]),
    ];
    for (const child of cases) {
      const [, c] = cowLayout({ tasks: [base, child], files: [] });
      expect(c!.inherits.every((i) => i < 0)).toBe(true);
      expect(c!.compare.every((x) => x === 0)).toBe(true);
    }
  });

  it('a read-only area the parent wrote (accounted for good) is not taken over by a child that never wrote it', () => {
    const ro: VmaPlan = { ...heap, prot: 1 };
    const [, c] = cowLayout({ tasks: [task(100, -1, [ro], [run(0n, 2n)]), task(101, 0, [ro], [])], files: [] });
    expect(c!.inherits).toEqual([-1]);
    // the other way round the child makes the area writable itself: taken over, compared only
    const [, d] = cowLayout({ tasks: [task(100, -1, [ro], []), task(101, 0, [ro], [run(0n, 2n)])], files: [] });
    expect(d!.inherits).toEqual([0]);
    expect(d!.compare).toEqual([COMPARE]);
  });

  it('pages a parent may lay for its children and lacks itself are dropped again after forking them', () => {
    const plan: RestorePlan = {
      tasks: [task(100, -1, [heap], [run(0n, 4n)]), task(101, 0, [heap], [run(0n, 8n)]), task(102, 0, [heap], [run(2n, 8n, 0n)])],
      files: [],
    };
    const [root] = cowLayout(plan);
    expect(root!.refill).toEqual([true]);
    expect(root!.lateDrops).toEqual([{ start: heap.start + 4n * P, end: heap.start + 10n * P }]);
  });
});

describe('writtenAreas: the areas the restorer or the lazy-pages daemon puts pages into', () => {
  it('a lazy restore\'s ranges mark their areas, however many fall in one area, whatever the areas\' order in the plan; an area without any stays unwritten', () => {
    const a = (start: bigint, pages: bigint): VmaPlan => ({ start, end: start + pages * P, pgoff: 0n, prot: 1, flags: 0x22, kind: 'anon', lazy: true });
    const sparse = a(0x10000000n, 512n);
    const none = a(0x20000000n, 16n);
    const tail = a(0x30000000n, 4n);
    const head = a(0x1000n, 4n);
    const lazyRanges = [
      { start: head.start, end: head.start + P },
      ...Array.from({ length: 256 }, (_, i) => ({ start: sparse.start + BigInt(2 * i) * P, end: sparse.start + BigInt(2 * i + 1) * P })),
      { start: tail.start + 2n * P, end: tail.end },
    ];
    const t = task(1, -1, [tail, none, sparse, head], [], { lazyRanges });
    expect(writtenAreas(t)).toEqual([true, false, true, true]);
    expect(writtenAreas(task(1, -1, [tail, none, sparse, head], [], { lazyRanges: lazyRanges.slice(1, 200) }))).toEqual([false, false, true, false]);
  });
});
