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
