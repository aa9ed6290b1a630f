import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isCrtoolsError } from '@crtools/common';
import { openPageReader } from '../src/reader.js';
import { fixturesRoot } from '@crtools/common/testing';

const FIX = resolve(fixturesRoot(), 'criu-4.2', 'pattern');
const have = existsSync(join(FIX, 'pagemap-2716.img'));
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Small deterministic PRNG so failures replay. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32);
}

describe.skipIf(!have)('mutated pagemap images (skipped: pattern fixture missing)', () => {
  it('either read or fail with one BAD_INPUT CrtoolsError, never crash', async () => {
    const orig = readFileSync(join(FIX, 'pagemap-2716.img'));
    copyFileSync(join(FIX, 'pages-1.img'), join(tmp, 'pages-1.img'));
    const rand = rng(2716);
    let ok = 0;
    let bad = 0;
    for (let round = 0; round < 300; round++) {
      const b = Buffer.from(orig);
      const mode = round % 3;
      if (mode === 0) for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const img = mode === 1 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      if (mode === 2) b[8 + Math.floor(rand() * (b.length - 8))] ^= 1 << Math.floor(rand() * 8);
      writeFileSync(join(tmp, 'pagemap-2716.img'), img);
      try {
        const r = await openPageReader({ dir: tmp, id: 2716 });
        // whatever was accepted must be readable within the pages image
        for (const s of r.segments()) r.read(s.vaddr, Buffer.alloc(s.nrPages * 4096));
        r.close();
        ok++;
      } catch (e) {
        if (!isCrtoolsError(e)) throw e;
        expect(e.exitCode).toBe(3);
        bad++;
      }
    }
    expect(ok + bad).toBe(300);
    expect(bad).toBeGreaterThan(0);
  });
});
