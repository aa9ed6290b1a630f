import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_LAZY, PE_PARENT, PE_PRESENT } from '../src/constants.js';
import { bufferPageSource, writePagemap, writePages, type PageSource } from '../src/writer.js';
import { openPageReader } from '../src/reader.js';
import { openLocalSink } from '../src/sink.js';
import { pageSourceFromReader } from '../src/proc-mem-source.js';
import type { PlannedEntry } from '../src/plan.js';
import { createImageWriter } from '@crtools/images';

const P = 4096;
const BASE = 0x7f0000000000n;
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-rt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Memory whose every page is distinguishable: page k holds bytes derived from k and a seed. */
function memory(pages: number, seed: number): Buffer {
  const b = Buffer.alloc(pages * P);
  for (let k = 0; k < pages; k++) for (let i = 0; i < P; i += 4) b.writeUInt32LE((k * 2654435761 + i * 40503 + seed) >>> 0, k * P + i);
  return b;
}
const at = (page: number) => BASE + BigInt(page * P);
const slice = (mem: Buffer, page: number, n: number) => mem.subarray(page * P, (page + n) * P);

describe('write then read back', () => {
  it('gives byte-identical pages and equal entries, whatever the chunk size', async () => {
    const mem = memory(40, 1);
    const entries: PlannedEntry[] = [
      { vaddr: at(0), nrPages: 3, flags: PE_PRESENT },
      { vaddr: at(5), nrPages: 9, flags: PE_PRESENT | PE_LAZY },
      { vaddr: at(20), nrPages: 4, flags: PE_LAZY }, // lazy dump: no data
      { vaddr: at(30), nrPages: 10, flags: PE_PRESENT },
    ];
    for (const chunkBytes of [P, 3 * P, 8 << 20]) {
      const dir = mkdtempSync(join(tmp, 'w-'));
      let reads = 0;
      const src = bufferPageSource(BASE, mem);
      const counting: PageSource = { read: (r, d) => (reads++, src.read(r, d)) };
      const stats = await writePagemap({ dir, id: 42, pagesId: 7, entries, source: counting, chunkBytes });
      expect(stats).toMatchObject({ entries: 4, pagesWritten: 22, bytesWritten: 22 * P });
      expect(reads).toBe(Math.ceil(22 / (chunkBytes / P)));
      expect(statSync(join(dir, 'pages-7.img')).size).toBe(22 * P);

      const r = await openPageReader({ dir, id: 42 });
      expect(r.pagesId).toBe(7);
      expect(r.entries.map(({ vaddr, nrPages, flags }) => ({ vaddr, nrPages, flags }))).toEqual(entries);
      expect(r.entries.map((e) => e.offset)).toEqual([0, 3 * P, -1, 12 * P]);
      for (const e of [entries[0], entries[1], entries[3]]) {
        const page = Number((e.vaddr - BASE) / BigInt(P));
        const buf = Buffer.alloc(e.nrPages * P);
        r.read(e.vaddr, buf);
        expect(buf.equals(slice(mem, page, e.nrPages))).toBe(true);
      }
      // a read in the middle of an entry
      const mid = Buffer.alloc(2 * P);
      r.read(at(7), mid);
      expect(mid.equals(slice(mem, 7, 2))).toBe(true);
      expect(() => r.read(at(20), Buffer.alloc(P))).toThrow(expect.objectContaining({ code: 'PAGEMAP_NOT_PRESENT' }));
      expect(() => r.read(at(15), Buffer.alloc(P))).toThrow(expect.objectContaining({ code: 'PAGEMAP_NOT_FOUND' }));
      expect(r.segments()).toEqual([
        { vaddr: at(0), nrPages: 3, path: join(dir, 'pages-7.img'), offset: 0 },
        { vaddr: at(5), nrPages: 9, path: join(dir, 'pages-7.img'), offset: 3 * P },
        { vaddr: at(30), nrPages: 10, path: join(dir, 'pages-7.img'), offset: 12 * P },
      ]);
      r.close();
    }
  });

  it('writes shmem pagemaps under their own name', async () => {
    const dir = mkdtempSync(join(tmp, 'shm-'));
    const mem = memory(2, 9);
    await writePagemap({ dir, id: 12345, kind: 'shmem', pagesId: 3, entries: [{ vaddr: 0n, nrPages: 2, flags: PE_PRESENT }], source: bufferPageSource(0n, mem) });
    const r = await openPageReader({ dir, id: 12345, kind: 'shmem' });
    const b = Buffer.alloc(2 * P);
    r.read(0n, b);
    expect(b.equals(mem)).toBe(true);
    r.close();
  });

  it('rejects bad entries and failing sources', async () => {
    const dir = mkdtempSync(join(tmp, 'bad-'));
    const mem = memory(4, 2);
    const src = bufferPageSource(BASE, mem);
    const sink = await openLocalSink({ dir, id: 1, pagesId: 1 });
    await expect(writePages({ sink, source: src, entries: [{ vaddr: at(1), nrPages: 1, flags: PE_PRESENT }, { vaddr: at(0), nrPages: 1, flags: PE_PRESENT }] })).rejects.toMatchObject({ code: 'PAGEMAP_BAD_ENTRY' });
    await expect(writePages({ sink, source: src, entries: [{ vaddr: BASE + 12n, nrPages: 1, flags: PE_PRESENT }] })).rejects.toMatchObject({ code: 'PAGEMAP_BAD_ENTRY' });
    await expect(writePages({ sink, source: src, entries: [{ vaddr: at(3), nrPages: 2, flags: PE_PRESENT }] })).rejects.toMatchObject({ code: 'PAGEMAP_SOURCE_FAULT' });
    await sink.close();
  });
});

describe('incremental dumps', () => {
  it('reads PE_PARENT entries from the parent images, across entry boundaries', async () => {
    const root = mkdtempSync(join(tmp, 'inc-'));
    const d1 = join(root, '1');
    const d2 = join(root, '2');
    mkdirSync(d1);
    mkdirSync(d2);
    symlinkSync('../1', join(d2, 'parent'));
    const old = memory(16, 3);
    await writePagemap({
      dir: d1, id: 100, pagesId: 1, source: bufferPageSource(BASE, old),
      entries: [
        { vaddr: at(0), nrPages: 6, flags: PE_PRESENT },
        { vaddr: at(6), nrPages: 10, flags: PE_PRESENT | PE_LAZY },
      ],
    });
    const cur = Buffer.from(old);
    memory(4, 77).copy(cur, 4 * P); // pages 4..7 rewritten
    await writePagemap({
      dir: d2, id: 100, pagesId: 1, source: bufferPageSource(BASE, cur),
      entries: [
        { vaddr: at(0), nrPages: 4, flags: PE_PARENT },
        { vaddr: at(4), nrPages: 4, flags: PE_PRESENT | PE_LAZY },
        { vaddr: at(8), nrPages: 8, flags: PE_PARENT },
      ],
    });
    expect(statSync(join(d2, 'pages-1.img')).size).toBe(4 * P);
    const r = await openPageReader({ dir: d2, id: 100 });
    expect(r.parent?.pagemapPath).toBe(join(d2, 'parent', 'pagemap-100.img'));
    const all = Buffer.alloc(16 * P);
    r.read(at(0), all);
    expect(all.equals(cur)).toBe(true);
    // the parent's two entries are merged into one segment where they are contiguous on disk
    expect(r.locate(at(2), 6).map((s) => [s.vaddr, s.nrPages, s.path.endsWith('parent/pages-1.img'), s.offset])).toEqual([
      [at(2), 2, true, 2 * P],
      [at(4), 4, false, 0],
    ]);
    r.close();

    // a hole the parent does not cover is refused at write time
    await expect(
      writePagemap({ dir: d2, id: 100, pagesId: 2, source: bufferPageSource(BASE, cur), entries: [{ vaddr: at(20), nrPages: 1, flags: PE_PARENT }] }),
    ).rejects.toMatchObject({ code: 'PAGEMAP_HOLE_NOT_IN_PARENT' });
  });

  it('reports a PE_PARENT entry without a parent image', async () => {
    const dir = mkdtempSync(join(tmp, 'orphan-'));
    await writePagemap({ dir, id: 5, pagesId: 1, parent: null, source: bufferPageSource(BASE, memory(1, 0)), entries: [{ vaddr: at(0), nrPages: 1, flags: PE_PARENT }] });
    const r = await openPageReader({ dir, id: 5 });
    expect(() => r.read(at(0), Buffer.alloc(P))).toThrow(expect.objectContaining({ code: 'PAGEMAP_NO_PARENT', exitCode: 3 }));
    r.close();
  });
});

describe('bad images', () => {
  it('names the file when the pages image is shorter than the pagemap says', async () => {
    const dir = mkdtempSync(join(tmp, 'trunc-'));
    await writePagemap({ dir, id: 9, pagesId: 1, source: bufferPageSource(BASE, memory(3, 0)), entries: [{ vaddr: at(0), nrPages: 3, flags: PE_PRESENT }] });
    writeFileSync(join(dir, 'pages-1.img'), readFileSync(join(dir, 'pages-1.img')).subarray(0, 2 * P + 5));
    const err = await openPageReader({ dir, id: 9 }).catch((e) => e);
    expect(err).toMatchObject({ code: 'PAGEMAP_PAGES_TRUNCATED', exitCode: 3 });
    expect(err.message).toContain(join(dir, 'pages-1.img'));
  });

  it('refuses a pagemap that is not one, or is missing', async () => {
    const dir = mkdtempSync(join(tmp, 'garbage-'));
    writeFileSync(join(dir, 'pagemap-3.img'), Buffer.from('definitely not an image'));
    const err = await openPageReader({ dir, id: 3 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.exitCode).toBe(3);
    const missing = await openPageReader({ dir, id: 4 }).catch((e) => e);
    expect(missing).toMatchObject({ code: 'PAGEMAP_NO_IMAGE', exitCode: 3 });
  });

  it('reads images of older CRIU versions (compat_nr_pages, in_parent, no flags)', async () => {
    const dir = mkdtempSync(join(tmp, 'old-'));
    const w = createImageWriter(join(dir, 'pagemap-6.img'), 'PAGEMAP');
    await w.write({ pages_id: 2 });
    await w.write({ vaddr: at(0), compat_nr_pages: 2, in_parent: true });
    await w.write({ vaddr: at(2), compat_nr_pages: 3 });
    await w.close();
    writeFileSync(join(dir, 'pages-2.img'), memory(3, 5));
    const r = await openPageReader({ dir, id: 6 });
    expect(r.entries.map(({ vaddr, nrPages, flags, offset }) => ({ vaddr, nrPages, flags, offset }))).toEqual([
      { vaddr: at(0), nrPages: 2, flags: PE_PARENT, offset: -1 },
      { vaddr: at(2), nrPages: 3, flags: PE_PRESENT, offset: 0 },
    ]);
    const b = Buffer.alloc(3 * P);
    r.read(at(2), b);
    expect(b.equals(memory(3, 5))).toBe(true);
    r.close();
  });

  it('refuses overlapping or misaligned entries, naming the entry', async () => {
    const dir = mkdtempSync(join(tmp, 'overlap-'));
    const w = createImageWriter(join(dir, 'pagemap-6.img'), 'PAGEMAP');
    await w.write({ pages_id: 1 });
    await w.write({ vaddr: at(0), compat_nr_pages: 0, flags: PE_PRESENT, nr_pages: 4n });
    await w.write({ vaddr: at(2), compat_nr_pages: 0, flags: PE_PRESENT, nr_pages: 1n });
    await w.close();
    const err = await openPageReader({ dir, id: 6 }).catch((e) => e);
    expect(err).toMatchObject({ code: 'PAGEMAP_BAD_IMAGE', exitCode: 3 });
    expect(err.message).toMatch(/pagemap-6\.img: entry 2: .* overlaps/);
  });
});


describe('pageSourceFromReader', () => {
  it('assembles short reads and fails on a read of nothing', async () => {
    const mem = memory(4, 11);
    // a reader that returns at most 1000 bytes per call, like a partial process_vm_readv
    const src = pageSourceFromReader((vaddr, dest, off, len) => {
      const start = Number(vaddr - BASE);
      if (start >= mem.length) return 0;
      const n = Math.min(len, 1000, mem.length - start);
      mem.copy(dest, off, start, start + n);
      return n;
    });
    const dest = Buffer.alloc(3 * P);
    await src.read([{ vaddr: at(1), nrPages: 2 }, { vaddr: at(0), nrPages: 1 }], dest);
    expect(dest.equals(Buffer.concat([slice(mem, 1, 2), slice(mem, 0, 1)]))).toBe(true);
    await expect(src.read([{ vaddr: at(3), nrPages: 2 }], Buffer.alloc(2 * P))).rejects.toMatchObject({ code: 'PAGEMAP_SOURCE_FAULT' });
  });
});

describe('skipUnreadable (READ-mode pre-dump)', () => {
  it('leaves out pages that vanished and splits their entries; fails without the option', async () => {
    const mem = memory(30, 21);
    const gone = new Set([3, 4, 20, 29].map((p) => at(p)));
    const base = bufferPageSource(BASE, mem);
    const source: PageSource = {
      read(ranges, dest) {
        for (const r of ranges) for (let p = 0; p < r.nrPages; p++) if (gone.has(r.vaddr + BigInt(p * P))) throw new Error('EFAULT');
        return base.read(ranges, dest);
      },
    };
    const entries: PlannedEntry[] = [
      { vaddr: at(0), nrPages: 10, flags: PE_PRESENT | PE_LAZY },
      { vaddr: at(12), nrPages: 2, flags: PE_PARENT },
      { vaddr: at(20), nrPages: 5, flags: PE_PRESENT },
      { vaddr: at(29), nrPages: 1, flags: PE_PRESENT },
    ];
    const dir = mkdtempSync(join(tmp, 'skip-'));
    await expect(writePagemap({ dir, id: 1, pagesId: 1, parent: null, entries, source })).rejects.toThrow('EFAULT');
    const dir2 = mkdtempSync(join(tmp, 'skip2-'));
    const stats = await writePagemap({ dir: dir2, id: 1, pagesId: 1, parent: null, entries, source, skipUnreadable: true, chunkBytes: 12 * P });
    expect(stats.pagesWritten).toBe(12);
    const r = await openPageReader({ dir: dir2, id: 1 });
    expect(r.entries.map((e) => [Number((e.vaddr - BASE) / BigInt(P)), e.nrPages, e.flags])).toEqual([
      [0, 3, PE_PRESENT | PE_LAZY],
      [5, 5, PE_PRESENT | PE_LAZY],
      [12, 2, PE_PARENT],
      [21, 4, PE_PRESENT],
    ]);
    for (const [pg, n] of [[0, 3], [5, 5], [21, 4]]) {
      const b = Buffer.alloc(n * P);
      r.read(at(pg), b);
      expect(b.equals(slice(mem, pg, n))).toBe(true);
    }
    r.close();
  });
});
