import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_PARENT, PE_PRESENT } from '../src/constants.js';
import { bufferPageSource, writePagemap } from '../src/writer.js';
import { openPageReader } from '../src/reader.js';
import { dedup, type PunchHoleFn } from '../src/dedup.js';

const P = 4096;
const BASE = 0x600000000000n;
const at = (page: number) => BASE + BigInt(page * P);
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-dedup-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function memory(pages: number, seed: number): Buffer {
  const b = Buffer.alloc(pages * P);
  for (let k = 0; k < pages; k++) b.fill((k * 7 + seed) % 251 + 1, k * P, (k + 1) * P);
  return b;
}

let haveFallocate = true;
try {
  execFileSync('fallocate', ['--version'], { stdio: 'ignore' });
} catch {
  haveFallocate = false;
}

/** Three generations: 1 (all 12 pages), 2 (rewrites 2..5, rest in parent), 3 (rewrites 4..9). */
async function generations() {
  const root = mkdtempSync(join(tmp, 'gen-'));
  const dirs = ['1', '2', '3'].map((n) => join(root, n));
  dirs.forEach((d) => mkdirSync(d));
  symlinkSync('../1', join(dirs[1], 'parent'));
  symlinkSync('../2', join(dirs[2], 'parent'));
  const m1 = memory(12, 1);
  await writePagemap({ dir: dirs[0], id: 7, pagesId: 1, source: bufferPageSource(BASE, m1), entries: [{ vaddr: at(0), nrPages: 12, flags: PE_PRESENT }] });
  const m2 = Buffer.from(m1);
  memory(4, 50).copy(m2, 2 * P);
  await writePagemap({
    dir: dirs[1], id: 7, pagesId: 1, source: bufferPageSource(BASE, m2),
    entries: [
      { vaddr: at(0), nrPages: 2, flags: PE_PARENT },
      { vaddr: at(2), nrPages: 4, flags: PE_PRESENT },
      { vaddr: at(6), nrPages: 6, flags: PE_PARENT },
    ],
  });
  const m3 = Buffer.from(m2);
  memory(6, 100).copy(m3, 4 * P);
  await writePagemap({
    dir: dirs[2], id: 7, pagesId: 1, source: bufferPageSource(BASE, m3),
    entries: [
      { vaddr: at(0), nrPages: 4, flags: PE_PARENT },
      { vaddr: at(4), nrPages: 6, flags: PE_PRESENT },
      { vaddr: at(10), nrPages: 2, flags: PE_PARENT },
    ],
  });
  return { dirs, m3 };
}

describe('dedup', () => {
  it('punches exactly the overridden ranges in every ancestor (recorded puncher)', async () => {
    const { dirs, m3 } = await generations();
    const calls: [string, number, number][] = [];
    const rec: PunchHoleFn = async (path, off, len) => void calls.push([path.slice(dirs[2].length + 1), off, len]);
    const res = await dedup({ dir: dirs[2], punchHole: rec });
    expect(res.pagemaps).toBe(1);
    // gen 3 rewrote pages 4..9: gen 2 holds 4,5 at offsets 2..3 of its pages file; gen 1 holds 4..9
    expect(calls.sort()).toEqual([
      ['parent/pages-1.img', 2 * P, 2 * P],
      ['parent/parent/pages-1.img', 4 * P, 6 * P],
    ]);
    expect(res.bytesPunched).toBe(8 * P);
    // nothing the newest dump needs was touched
    const r = await openPageReader({ dir: dirs[2], id: 7 });
    const b = Buffer.alloc(12 * P);
    r.read(at(0), b);
    expect(b.equals(m3)).toBe(true);
    r.close();
  });

  it.skipIf(!haveFallocate)('really punches holes with fallocate(1) and the images stay readable', async () => {
    const { dirs, m3 } = await generations();
    const res = await dedup({ dir: dirs[2] });
    expect(res.bytesPunched).toBe(8 * P);
    const g1 = readFileSync(join(dirs[0], 'pages-1.img'));
    expect(g1.length).toBe(12 * P); // size kept
    expect(g1.subarray(4 * P, 10 * P).every((x) => x === 0)).toBe(true);
    expect(g1.subarray(0, 4 * P).some((x) => x !== 0)).toBe(true);
    expect(statSync(join(dirs[0], 'pages-1.img')).blocks * 512).toBeLessThan(12 * P);
    const r = await openPageReader({ dir: dirs[2], id: 7 });
    const b = Buffer.alloc(12 * P);
    r.read(at(0), b);
    expect(b.equals(m3)).toBe(true);
    r.close();
  });

  it('fails clearly without a parent snapshot', async () => {
    const dir = mkdtempSync(join(tmp, 'noparent-'));
    await expect(dedup({ dir })).rejects.toMatchObject({ code: 'PAGEMAP_NO_PARENT' });
  });

  it('--auto-dedup punches the parent while the child is written', async () => {
    const root = mkdtempSync(join(tmp, 'auto-'));
    mkdirSync(join(root, '1'));
    mkdirSync(join(root, '2'));
    symlinkSync('../1', join(root, '2', 'parent'));
    const m = memory(8, 4);
    await writePagemap({ dir: join(root, '1'), id: 3, pagesId: 1, source: bufferPageSource(BASE, m), entries: [{ vaddr: at(0), nrPages: 8, flags: PE_PRESENT }] });
    const calls: [string, number, number][] = [];
    await writePagemap({
      dir: join(root, '2'), id: 3, pagesId: 1, source: bufferPageSource(BASE, m), autoDedup: true,
      punchHole: async (path, off, len) => void calls.push([path.slice(root.length + 1), off, len]),
      entries: [
        { vaddr: at(0), nrPages: 3, flags: PE_PARENT },
        { vaddr: at(3), nrPages: 5, flags: PE_PRESENT },
      ],
    });
    expect(calls).toEqual([['2/parent/pages-1.img', 3 * P, 5 * P]]);
  });
});

