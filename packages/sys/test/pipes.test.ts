import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeFd, openPipe, spliceSome } from '../src/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sys-pipes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('spliceSome', () => {
  it('moves what the pipe holds, waits for more at most waitMs, and says when the last writer is gone', () => {
    const p = openPipe(65536);
    const file = path.join(dir, 'out');
    const out = openSync(file, 'w');
    try {
      writeSync(p.wr, Buffer.alloc(5000, 7));
      const t0 = performance.now();
      // 5000 bytes there, 10000 asked: the rest is waited for, 30 ms, then what came is returned
      expect(spliceSome(p.rd, out, 10000, 30)).toEqual({ moved: 5000, eof: false });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
      writeSync(p.wr, Buffer.alloc(3000, 8));
      // as much as asked, no wait
      expect(spliceSome(p.rd, out, 2000, 5000)).toEqual({ moved: 2000, eof: false });
      closeFd(p.wr);
      p.wr = -1;
      expect(spliceSome(p.rd, out, 10000, 5000)).toEqual({ moved: 1000, eof: true });
      expect(readFileSync(file)).toEqual(Buffer.concat([Buffer.alloc(5000, 7), Buffer.alloc(3000, 8)]));
      // not a pipe: a Node-shaped error
      expect(() => spliceSome(out, out, 10, 10)).toThrow(/EINVAL|ESPIPE|EBADF/);
    } finally {
      closeSync(out);
      closeFd(p.rd);
      if (p.wr >= 0) closeFd(p.wr);
    }
  });

  it('into a pipe nobody empties: what fits, then a wait of waitMs on the full pipe, not a spin', () => {
    const p = openPipe(65536);
    const q = openPipe(65536);
    try {
      writeSync(p.wr, Buffer.alloc(65536, 3));
      writeSync(q.wr, Buffer.alloc(q.capacity - 4096, 4)); // room for one page
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      expect(spliceSome(p.rd, q.wr, 65536, 200)).toEqual({ moved: 4096, eof: false });
      const cpu = process.cpuUsage(cpu0);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
      // asleep in poll, not calling splice over and over (that took the whole 200 ms of CPU)
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(100);
    } finally {
      for (const fd of [p.rd, p.wr, q.rd, q.wr]) closeFd(fd);
    }
  });
});
