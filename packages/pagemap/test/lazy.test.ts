import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PE_LAZY, PE_PRESENT, VMA_ANON_PRIVATE, VMA_ANON_SHARED, VMA_AREA_REGULAR } from '../src/constants.js';
import { lazyRanges } from '../src/lazy.js';
import type { ReaderEntry } from '../src/reader.js';

const P = 4096n;
const anon = (start: bigint, end: bigint) => ({ start: start * P, end: end * P, flags: MAP_PRIVATE | MAP_ANONYMOUS, status: VMA_AREA_REGULAR | VMA_ANON_PRIVATE });
const shared = (start: bigint, end: bigint) => ({ start: start * P, end: end * P, flags: MAP_SHARED | MAP_ANONYMOUS, status: VMA_AREA_REGULAR | VMA_ANON_SHARED });
const entry = (page: bigint, nrPages: number, flags = PE_PRESENT | PE_LAZY): ReaderEntry => ({ vaddr: page * P, nrPages, flags, offset: 0 });
const pages = (rs: { start: bigint; end: bigint }[]) => rs.map((r) => [Number(r.start / P), Number(r.end / P)]);

describe('lazyRanges', () => {
  it('joins entries that follow each other inside one area (a dump cuts a big area into many entries)', () => {
    const es = Array.from({ length: 1000 }, (_, i) => entry(0x100n + BigInt(i) * 4n, 4));
    expect(pages(lazyRanges(es, [anon(0x100n, 0x100n + 4000n)]))).toEqual([[0x100, 0x100 + 4000]]);
  });

  it('never across a gap (pages never touched), an area boundary, or an entry that is not lazy', () => {
    const vmas = [anon(0x10n, 0x20n), anon(0x20n, 0x30n), anon(0x40n, 0x50n)];
    const es = [
      entry(0x10n, 2), entry(0x12n, 2), // joined
      entry(0x15n, 1), // after a gap
      entry(0x1en, 4), // spans two adjacent areas: cut at 0x20
      entry(0x22n, 2), // follows the second piece: joined with it
      entry(0x24n, 2, PE_PRESENT), // not lazy
      entry(0x26n, 2),
      entry(0x48n, 4),
    ];
    expect(pages(lazyRanges(es, vmas))).toEqual([[0x10, 0x14], [0x15, 0x16], [0x1e, 0x20], [0x20, 0x24], [0x26, 0x28], [0x48, 0x4c]]);
  });

  it('only within areas that may be restored lazily (not shared memory), clipped to them', () => {
    const es = [entry(0x8n, 16), entry(0x18n, 8), entry(0x40n, 8)];
    expect(pages(lazyRanges(es, [anon(0xcn, 0x1cn), shared(0x40n, 0x48n)]))).toEqual([[0xc, 0x1c]]);
  });

  it('entries out of address order are still all found', () => {
    const vmas = [anon(0x10n, 0x20n), anon(0x30n, 0x40n)];
    expect(pages(lazyRanges([entry(0x30n, 2), entry(0x10n, 2)], vmas))).toEqual([[0x30, 0x32], [0x10, 0x12]]);
  });
});

describe('lazyRanges over a reader\'s columns', () => {
  it('gives the same ranges from columns of numbers as from entry objects', () => {
    const vmas = [anon(0x10n, 0x20n), anon(0x20n, 0x30n), anon(0x40n, 0x50n)];
    const es = [entry(0x10n, 2), entry(0x12n, 2), entry(0x15n, 1), entry(0x1en, 4), entry(0x24n, 2, PE_PRESENT), entry(0x48n, 4)];
    const cols = { count: es.length, vaddr: Float64Array.from(es, (e) => Number(e.vaddr)), nrPages: Float64Array.from(es, (e) => e.nrPages), flags: Uint32Array.from(es, (e) => e.flags) };
    expect(lazyRanges(cols, vmas)).toEqual(lazyRanges(es, vmas));
    expect(pages(lazyRanges(cols, vmas))).toEqual([[0x10, 0x14], [0x15, 0x16], [0x1e, 0x20], [0x20, 0x22], [0x48, 0x4c]]);
  });
});

describe('PageReader.lazySplit', () => {
  it('one walk: the lazy ranges as lazyRanges has them, and segments of every other page with data (the parts of a lazy entry outside lazy areas too)', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { encodeImage } = await import('@crtools/images');
    const { openPageReader } = await import('../src/reader.js');
    const dir = mkdtempSync(join(tmpdir(), 'pagemap-lazysplit-'));
    try {
      const L = PE_PRESENT | PE_LAZY;
      const es = [
        { vaddr: 0x10n * P, compat_nr_pages: 0, flags: L, nr_pages: 4n },
        { vaddr: 0x14n * P, compat_nr_pages: 0, flags: PE_PRESENT, nr_pages: 2n }, // not lazy
        { vaddr: 0x1en * P, compat_nr_pages: 0, flags: L, nr_pages: 4n }, // half in shared memory
        { vaddr: 0x40n * P, compat_nr_pages: 0, flags: PE_LAZY, nr_pages: 2n }, // lazy, data not in the images
      ];
      writeFileSync(join(dir, 'pagemap-9.img'), encodeImage({ magic: 'PAGEMAP', entries: [{ pages_id: 3 }, ...es] }));
      writeFileSync(join(dir, 'pages-3.img'), Buffer.alloc(10 * 4096));
      const vmas = [anon(0x10n, 0x20n), shared(0x20n, 0x30n), anon(0x40n, 0x50n)];
      const r = await openPageReader({ dir, id: 9 });
      const { ranges, segments } = r.lazySplit(vmas);
      expect(ranges).toEqual(lazyRanges(r.entries, vmas));
      expect(pages(ranges)).toEqual([[0x10, 0x14], [0x1e, 0x20], [0x40, 0x42]]);
      expect(segments).toEqual([
        { vaddr: 0x14n * P, nrPages: 2, path: join(dir, 'pages-3.img'), offset: 4 * 4096 },
        { vaddr: 0x20n * P, nrPages: 2, path: join(dir, 'pages-3.img'), offset: 8 * 4096 },
      ]);
      r.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
