import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PE_LAZY, PE_PRESENT, PME_FILE, PME_PRESENT, VMA_FILE_PRIVATE } from '../src/constants.js';
import { openPageReader } from '../src/reader.js';
import { planDump, type PlanVma } from '../src/plan.js';
import { writePagemap, type PageSource } from '../src/writer.js';
import { fixturesRoot, referenceCrit, referenceCritUsable } from '@crtools/common/testing';

/** The pattern task's VMAs as CRIU recorded them in mm-2716.img: start, end, prot, flags, status. */
const PATTERN_VMAS: [string, string, number, number, number][] = [
  ['55eead7bb000', '55eead7bc000', 1, 0x2, 0x41],
  ['55eead7bc000', '55eead7bd000', 5, 0x2, 0x41],
  ['55eead7bd000', '55eead7be000', 1, 0x2, 0x41],
  ['55eead7be000', '55eead7bf000', 1, 0x2, 0x41],
  ['55eead7bf000', '55eead7c0000', 3, 0x2, 0x41],
  ['55eed31d0000', '55eed31f1000', 3, 0x22, 0x221],
  ['7f01fb200000', '7f01fba00000', 3, 0x22, 0x201],
  ['7f01fba49000', '7f01fba4c000', 3, 0x22, 0x201],
  ['7f01fba4c000', '7f01fba72000', 1, 0x2, 0x41],
  ['7f01fba72000', '7f01fbbc8000', 5, 0x2, 0x41],
  ['7f01fbbc8000', '7f01fbc1b000', 1, 0x2, 0x41],
  ['7f01fbc1b000', '7f01fbc1f000', 1, 0x2, 0x41],
  ['7f01fbc1f000', '7f01fbc21000', 3, 0x2, 0x41],
  ['7f01fbc21000', '7f01fbc2e000', 3, 0x22, 0x201],
  ['7f01fbc37000', '7f01fbc39000', 3, 0x22, 0x201],
  ['7f01fbc39000', '7f01fbc3f000', 1, 0x22, 0x1201],
  ['7f01fbc3f000', '7f01fbc41000', 5, 0x22, 0x209],
  ['7f01fbc41000', '7f01fbc42000', 1, 0x2, 0x41],
  ['7f01fbc42000', '7f01fbc68000', 5, 0x2, 0x41],
  ['7f01fbc68000', '7f01fbc72000', 1, 0x2, 0x41],
  ['7f01fbc72000', '7f01fbc74000', 1, 0x2, 0x41],
  ['7f01fbc74000', '7f01fbc76000', 3, 0x2, 0x41],
  ['7fff8555b000', '7fff8557c000', 3, 0x122, 0x201],
  ['ffffffffff600000', 'ffffffffff601000', 4, 0x22, 0x204],
];

const FIX = resolve(fixturesRoot(), 'criu-4.2');
const have = existsSync(join(FIX, 'pattern', 'pagemap-2716.img'));

describe.skipIf(!have)('CRIU 4.2 fixtures (skipped: fixtures not found at ' + FIX + ')', () => {
  it('pattern: the 8 MiB anonymous mapping holds the workload pattern', async () => {
    const r = await openPageReader({ dir: join(FIX, 'pattern'), id: 2716 });
    expect(r.pagesId).toBe(1);
    // CRIU 4.2 writes nr_pages (field 5) and leaves compat_nr_pages 0; we read nr_pages
    const big = r.entries.filter((e) => e.vaddr >= 0x7f01fb200000n && e.vaddr < 0x7f01fba00000n);
    expect(big.map((e) => e.nrPages)).toEqual([254, 256, 256, 256, 256, 256, 256, 256, 2]);
    expect(big.every((e) => e.flags === (PE_LAZY | PE_PRESENT))).toBe(true);
    const total = r.entries.reduce((n, e) => n + (e.flags & PE_PRESENT ? e.nrPages : 0), 0);
    expect(total * 4096).toBe(statSync(join(FIX, 'pattern', 'pages-1.img')).size);

    const mem = Buffer.alloc(8 << 20);
    r.read(0x7f01fb200000n, mem);
    const K = 0x9e3779b97f4a7c15n;
    let bad = 0;
    const words = new BigUint64Array(mem.buffer, mem.byteOffset, mem.length / 8);
    for (let i = 0; i < words.length; i++) if (words[i] !== BigInt.asUintN(64, BigInt(i) * K)) bad++;
    expect(bad).toBe(0);
    r.close();
  });

  it('pattern: entries are those CRIU logged (vdso whole, non-lazy file pages)', async () => {
    const r = await openPageReader({ dir: join(FIX, 'pattern'), id: 2716 });
    const hex = r.entries.map((e) => [e.vaddr.toString(16), e.nrPages, e.flags]);
    expect(hex.slice(0, 4)).toEqual([
      ['55eead7bc000', 1, PE_PRESENT],
      ['55eead7be000', 2, PE_PRESENT],
      ['55eed31d0000', 2, PE_PRESENT | PE_LAZY],
      ['7f01fb200000', 254, PE_PRESENT | PE_LAZY],
    ]);
    expect(hex).toContainEqual(['7f01fbc3f000', 2, PE_PRESENT]); // [vdso]
    expect(hex).toContainEqual(['7f01fbc1b000', 6, PE_PRESENT]); // libc relro + data, one iovec over two vmas
    expect(hex.at(-1)).toEqual(['7fff85578000', 4, PE_PRESENT | PE_LAZY]); // stack
    r.close();
  });

  it('sleep: every segment reads and the segments cover the pages image exactly', async () => {
    const r = await openPageReader({ dir: join(FIX, 'sleep'), id: 2680 });
    const segs = r.segments();
    const size = statSync(join(FIX, 'sleep', 'pages-1.img')).size;
    expect(segs.reduce((n, s) => n + s.nrPages, 0) * 4096).toBe(size);
    let expectOff = 0;
    for (const s of segs) {
      expect(s.offset).toBe(expectOff);
      expectOff += s.nrPages * 4096;
      const b = Buffer.alloc(s.nrPages * 4096);
      r.read(s.vaddr, b);
    }
    r.close();
  });

  it('planDump reproduces the entries CRIU wrote for the pattern task', async () => {
    const r = await openPageReader({ dir: join(FIX, 'pattern'), id: 2716 });
    const dumped = new Set<bigint>();
    for (const e of r.entries) for (let i = 0; i < e.nrPages; i++) dumped.add(e.vaddr + BigInt(i) * 4096n);
    const vmas: PlanVma[] = PATTERN_VMAS.map(([s, e, prot, flags, status]) => ({ start: BigInt('0x' + s), end: BigInt('0x' + e), prot, flags, status }));
    const ZERO = 0x77n;
    // A pagemap consistent with that dump: dumped pages are anonymous, file mappings' other
    // pages are still the file's, anonymous mappings' other pages map the zero page.
    const pagemap = (start: bigint, n: number) => {
      const v = vmas.find((x) => x.start <= start && start < x.end)!;
      const out = new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const a = start + BigInt(i) * 4096n;
        if (dumped.has(a)) out[i] = PME_PRESENT | 0x1000n;
        else if (v.status & VMA_FILE_PRIVATE) out[i] = PME_PRESENT | PME_FILE | 0x2000n;
        else out[i] = PME_PRESENT | ZERO;
      }
      return out;
    };
    const plan = await planDump({ vmas, pagemap, zeroPagePfn: ZERO });
    expect(plan.entries).toEqual(r.entries.map(({ vaddr, nrPages, flags }) => ({ vaddr, nrPages, flags })));
    expect(plan.stats.pagesWritten).toBe(dumped.size);
    r.close();
  });

  it('re-writing the pattern dump through a reader-backed source reproduces both files byte for byte', async () => {
    const r = await openPageReader({ dir: join(FIX, 'pattern'), id: 2716 });
    const dir = mkdtempSync(join(tmpdir(), 'pagemap-fix-'));
    try {
      const source: PageSource = {
        read(ranges, dest) {
          let off = 0;
          for (const g of ranges) {
            r.read(g.vaddr, dest.subarray(off, off + g.nrPages * 4096));
            off += g.nrPages * 4096;
          }
        },
      };
      const entries = r.entries.map(({ vaddr, nrPages, flags }) => ({ vaddr, nrPages, flags }));
      await writePagemap({ dir, id: 2716, pagesId: 1, entries, source, chunkBytes: 1 << 20 });
      expect(readFileSync(join(dir, 'pagemap-2716.img')).equals(readFileSync(join(FIX, 'pattern', 'pagemap-2716.img')))).toBe(true);
      expect(readFileSync(join(dir, 'pages-1.img')).equals(readFileSync(join(FIX, 'pattern', 'pages-1.img')))).toBe(true);
    } finally {
      r.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const critOk = referenceCritUsable();
const critCache = new Map<string, any>();
/** Debian's crit is slow to start: decode each image once. */
const crit = (p: string) => {
  if (!critCache.has(p)) critCache.set(p, JSON.parse(referenceCrit(['decode', '-i', p]).toString('utf8')));
  return critCache.get(p);
};

describe.skipIf(!have || !critOk)("every CRIU 4.2 fixture task (skipped: needs the fixtures and Debian's crit to decode mm/core/pstree)", { timeout: 120_000 }, () => {
  const tasks: [string, string][] = [];
  if (have) {
    for (const fx of readdirSync(FIX).filter((d) => d !== 'src' && d !== 'bin'))
      for (const f of readdirSync(join(FIX, fx))) {
        const m = /^pagemap-(\d+)\.img$/.exec(f);
        if (m) tasks.push([fx, m[1]]);
      }
  }
  async function planTask(dir: string, pid: string) {
    const r = await openPageReader({ dir, id: Number(pid) });
    const mm = crit(join(dir, `mm-${pid}.img`)).entries[0];
    const vmas: PlanVma[] = mm.vmas.map((v: Record<string, number>) => ({ start: BigInt(v.start), end: BigInt(v.end), prot: v.prot, flags: v.flags, status: v.status }));
    const item = crit(join(dir, 'pstree.img')).entries.find((p: { pid: number }) => String(p.pid) === pid);
    const threadSps = item.threads.map((t: number) => BigInt(crit(join(dir, `core-${t}.img`)).entries[0].thread_info.gpregs.sp));
    const dumped = new Set<bigint>();
    for (const e of r.entries) for (let i = 0; i < e.nrPages; i++) dumped.add(e.vaddr + BigInt(i) * 4096n);
    const ZERO = 0x77n;
    // A pagemap consistent with that dump: dumped pages are anonymous, file mappings' other
    // pages are still the file's, anonymous mappings' other pages map the zero page.
    const pagemap = (start: bigint, n: number) => {
      const v = vmas.find((x) => x.start <= start && start < x.end)!;
      const out = new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const a = start + BigInt(i) * 4096n;
        out[i] = dumped.has(a) ? PME_PRESENT | 0x1000n : v.status & VMA_FILE_PRIVATE ? PME_PRESENT | PME_FILE | 1n : PME_PRESENT | ZERO;
      }
      return out;
    };
    const plan = await planDump({ vmas, pagemap, zeroPagePfn: ZERO, threadSps });
    const entries = r.entries.map(({ vaddr, nrPages, flags }) => ({ vaddr, nrPages, flags }));
    r.close();
    return { plan, entries };
  }

  it.each(tasks)('%s pid %s: planDump reproduces CRIU\'s entries (VMAs from mm, thread sps from core)', async (fx, pid) => {
    const { plan, entries } = await planTask(join(FIX, fx), pid);
    expect(plan.entries).toEqual(entries);
  });

  const fixtures = [...new Set(tasks.map(([fx]) => fx))];
  it.each(fixtures)('%s: plan counters equal CRIU\'s stats-dump (pages scanned/written, pipes, buffers)', async (fx) => {
    const sum = { pages_scanned: 0, pages_written: 0, pages_skipped_parent: 0, pages_lazy: 0, page_pipes: 0, page_pipe_bufs: 0 };
    for (const [f, pid] of tasks) {
      if (f !== fx) continue;
      const { stats } = (await planTask(join(FIX, fx), pid)).plan;
      sum.pages_scanned += stats.pagesScanned;
      sum.pages_written += stats.pagesWritten;
      sum.pages_skipped_parent += stats.pagesSkippedParent;
      sum.pages_lazy += stats.pagesLazy;
      sum.page_pipes += stats.pagePipes;
      sum.page_pipe_bufs += stats.pagePipeBufs;
    }
    expect(crit(join(FIX, fx, 'stats-dump')).entries[0].dump).toMatchObject(sum);
  });
});

