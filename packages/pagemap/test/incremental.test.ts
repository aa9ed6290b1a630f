import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAP_ANONYMOUS, MAP_PRIVATE, PE_PARENT, PE_PRESENT, PME_PRESENT, VMA_ANON_PRIVATE, VMA_AREA_REGULAR } from '../src/constants.js';
import { planDump, type PlanVma } from '../src/plan.js';
import { bufferPageSource, writePagemap } from '../src/writer.js';
import { openPageReader } from '../src/reader.js';
import { dirtyByContent } from '../src/dirty-by-content.js';

const P = 4096;
const BASE = 0x7e0000000000n;
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-inc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('incremental dump with content-based dirty tracking', () => {
  it('pre-dump, change 3 pages, dump: only those are stored, the rest read through the parent', async () => {
    const pages = 600;
    const mem = Buffer.alloc(pages * P);
    for (let i = 0; i < mem.length; i += 4) mem.writeUInt32LE((i * 2654435761) >>> 0, i);
    const vmas: PlanVma[] = [{ start: BASE, end: BASE + BigInt(pages) * 4096n, prot: 3, flags: MAP_PRIVATE | MAP_ANONYMOUS, status: VMA_AREA_REGULAR | VMA_ANON_PRIVATE }];
    const pagemap = (_s: bigint, n: number) => new BigUint64Array(n).fill(PME_PRESENT | 0x1000n);
    const d1 = join(tmp, '1');
    const d2 = join(tmp, '2');
    mkdirSync(d1);
    mkdirSync(d2);
    symlinkSync('../1', join(d2, 'parent'));

    const pre = await planDump({ vmas, pagemap, mode: 'pre-dump' });
    await writePagemap({ dir: d1, id: 10, pagesId: 1, entries: pre.entries, source: bufferPageSource(BASE, mem) });

    for (const pg of [5, 6, 400]) mem.fill(0xee, pg * P, pg * P + 100);
    const parent = await openPageReader({ dir: d1, id: 10 });
    const source = bufferPageSource(BASE, mem);
    const tracked = dirtyByContent({ pagemap, source, parent });
    const plan = await planDump({ vmas, pagemap: tracked.pagemap, hasParent: true, trackMem: true });
    parent.close();
    expect(tracked.stats).toEqual({ compared: pages, unchanged: pages - 3 });
    expect(plan.stats.pagesWritten).toBe(3);
    expect(plan.stats.pagesSkippedParent).toBe(pages - 3);
    expect(plan.entries.filter((e) => e.flags & PE_PRESENT).map((e) => [Number((e.vaddr - BASE) / 4096n), e.nrPages])).toEqual([
      [5, 2],
      [400, 1],
    ]);
    expect(plan.entries.filter((e) => e.flags & PE_PARENT).reduce((n, e) => n + e.nrPages, 0)).toBe(pages - 3);

    await writePagemap({ dir: d2, id: 10, pagesId: 1, entries: plan.entries, source });
    expect(statSync(join(d2, 'pages-1.img')).size).toBe(3 * P);
    const r = await openPageReader({ dir: d2, id: 10 });
    const back = Buffer.alloc(pages * P);
    r.read(BASE, back);
    r.close();
    expect(back.equals(mem)).toBe(true);
  });
});

describe('parentRuns: pages known clean are left to the parent without their pagemap entries', () => {
  // 3 areas; pages written since the parent carry bit 55, some pages are absent, one is the zero page
  const SOFT_DIRTY = 1n << 55n;
  const ZERO_PFN = 0x77n;
  const area = (i: number, n: number): PlanVma => ({ start: BASE + BigInt(i * 4096) * 4096n, end: BASE + BigInt(i * 4096 + n) * 4096n, prot: 3, flags: MAP_PRIVATE | MAP_ANONYMOUS, status: VMA_AREA_REGULAR | VMA_ANON_PRIVATE });
  const vmas = [area(0, 3000), area(1, 700), area(2, 1500)];
  const entry = (addr: bigint): bigint => {
    const p = Number((addr - BASE) / 4096n);
    if (p % 997 === 13) return 0n; // absent
    if (p % 1499 === 7) return PME_PRESENT | ZERO_PFN; // the zero page
    const written = (p >= 100 && p < 300) || p % 211 === 0 || (p >= 4096 + 650 && p < 4096 + 700);
    return PME_PRESENT | 0x1000n | (written ? SOFT_DIRTY : 0n);
  };
  const reads: [bigint, number][] = [];
  const pagemap = (s: bigint, n: number) => {
    reads.push([s, n]);
    return BigUint64Array.from({ length: n }, (_, i) => entry(s + BigInt(i) * 4096n));
  };
  // the clean runs as a PAGEMAP_SCAN would give them, but only some of them (a caller may know fewer)
  const runs: { start: bigint; end: bigint }[] = [];
  for (const v of vmas) {
    let run: { start: bigint; end: bigint } | undefined;
    for (let a = v.start; a < v.end; a += 4096n) {
      const e = entry(a);
      const clean = e !== 0n && (e & SOFT_DIRTY) === 0n && (e & 0xffffffffffffn) !== ZERO_PFN;
      if (clean && run && run.end === a) run.end = a + 4096n;
      else if (clean) runs.push((run = { start: a, end: a + 4096n }));
      else run = undefined;
    }
  }
  const known = runs.filter((_, i) => i % 4 !== 3);

  it('gives the entries and counts that reading every entry gives', async () => {
    const o = { vmas, hasParent: true, trackMem: true, zeroPagePfn: ZERO_PFN } as const;
    const all = await planDump({ ...o, pagemap });
    reads.length = 0;
    const fast = await planDump({ ...o, pagemap, parentRuns: known });
    expect(fast.entries).toEqual(all.entries);
    expect(fast.stats).toEqual(all.stats);
    expect(all.stats.pagesSkippedParent).toBeGreaterThan(4000);
    // no entry of a known clean page was read
    for (const [s, n] of reads) for (const r of known) expect(s + BigInt(n) * 4096n <= r.start || s >= r.end).toBe(true);
    // without a parent the runs mean nothing: every page is dumped
    const full = await planDump({ vmas, pagemap, parentRuns: known, zeroPagePfn: ZERO_PFN });
    expect(full.stats.pagesSkippedParent).toBe(0);
    expect(full.stats.pagesWritten).toBe(all.stats.pagesWritten + all.stats.pagesSkippedParent);
  });
});
