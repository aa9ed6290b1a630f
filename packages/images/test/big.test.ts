import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createImageWriter, critJsonChunks, openImage } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-big-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a 1M-entry pagemap', () => {
  const path = join(tmp, 'pagemap-1.img');
  const N = 1_000_000;

  it('is written by the streaming writer with flat memory', async () => {
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    const w = createImageWriter(path, 'PAGEMAP');
    await w.write({ pages_id: 1 });
    for (let i = 0; i < N; i++) {
      await w.write({ vaddr: 0x7f0000000000n + BigInt(i) * 0x2000n, compat_nr_pages: 0, flags: 4, nr_pages: BigInt(1 + (i & 3)) });
      if ((i & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }
    await w.close();
    expect(statSync(path).size).toBeGreaterThan(N * 17);
    expect(peak).toBeLessThan(64 * 1024 * 1024);
  }, 120_000);

  it('streams back in order with flat memory', async () => {
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let n = 0;
    let last = 0n;
    const s = openImage(path);
    expect((await s.header()).name).toBe('PAGEMAP');
    for await (const batch of s.batches()) {
      for (const e of batch) {
        if (n > 0) {
          const v = e['vaddr'] as bigint;
          expect(v > last || n === 1).toBe(true);
          last = v;
        }
        n++;
      }
      peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }
    expect(n).toBe(N + 1);
    expect(last).toBe(0x7f0000000000n + BigInt(N - 1) * 0x2000n);
    expect(peak).toBeLessThan(96 * 1024 * 1024);
  }, 120_000);

  it('turns into crit JSON chunk by chunk', async () => {
    let len = 0;
    let chunks = 0;
    let tail = '';
    for await (const c of critJsonChunks(openImage(path))) {
      len += c.length;
      chunks++;
      tail = c.slice(-80);
    }
    expect(chunks).toBeGreaterThan(100);
    expect(tail.endsWith(`{"vaddr": ${0x7f0000000000n + BigInt(N - 1) * 0x2000n}, "compat_nr_pages": 0, "flags": 4, "nr_pages": 4}]}`)).toBe(true);
    expect(len).toBeGreaterThan(N * 70);
  }, 120_000);
});
