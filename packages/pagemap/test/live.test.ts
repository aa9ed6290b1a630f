import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collectVmas, openPagemap, readMaps } from '@crtools/procfs';
import { PE_PRESENT } from '../src/constants.js';
import { planDump } from '../src/plan.js';
import { dumpTaskPages } from '../src/dump.js';
import { openPageReader } from '../src/reader.js';
import { procMemPageSource } from '../src/proc-mem-source.js';
import { FrozenLazyPages } from '../src/lazy.js';
import { fixturesRoot } from '@crtools/common/testing';

const BIN = resolve(fixturesRoot(), 'criu-4.2', 'bin', 'pattern');
const isRoot = process.getuid?.() === 0;
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-live-'));
let child: ChildProcess | undefined;
afterAll(async () => {
  if (child?.pid && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child!.once('exit', r));
    process.kill(child.pid, 'SIGKILL');
    await gone;
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!isRoot || !existsSync(BIN))(`live task (skipped: needs root for /proc/PID/mem and ${BIN})`, { timeout: 60_000 }, () => {
  it('plans from real maps + pagemap, dumps through /proc/PID/mem, and reads the pattern back', async () => {
    const bin = join(tmp, 'pattern');
    copyFileSync(BIN, bin);
    chmodSync(bin, 0o755);
    const state = join(tmp, 'state');
    child = spawn(bin, ['4', state], { stdio: 'ignore' });
    const pid = child.pid!;
    for (let i = 0; i < 100 && !(existsSync(state) && readFileSync(state, 'utf8').startsWith('ready')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(state, 'utf8')).toBe('ready\n');
    process.kill(pid, 'SIGSTOP');
    try {
      const vmas = collectVmas(readMaps(pid));
      // the 4 MiB pattern area is one anonymous rw mapping of exactly that size
      const area = vmas.find((v) => v.end - v.start === 4n << 20n && v.prot === 3 && v.name === '');
      expect(area).toBeDefined();
      const dir = mkdtempSync(join(tmp, 'img-'));
      const pm = openPagemap(pid);
      const source = procMemPageSource(pid);
      let plan, stats;
      try {
        ({ plan, written: stats } = await dumpTaskPages({ vmas, pagemap: (s, n) => pm.entries(s, n), dir, id: pid, pagesId: 1, source, chunkBytes: 1 << 20 }));
      } finally {
        source.close();
        pm.close();
      }
      // planning alone gives the same entries
      const pm2 = openPagemap(pid);
      expect((await planDump({ vmas, pagemap: (s, n) => pm2.read(s, s + BigInt(n) * 4096n).entries })).entries).toEqual(plan.entries);
      pm2.close();
      expect(stats.pagesWritten).toBe(plan.stats.pagesWritten);
      expect(statSync(join(dir, 'pages-1.img')).size).toBe(stats.bytesWritten);
      // no vvar, no vsyscall pages; the vdso is there
      const vvar = vmas.find((v) => v.name === '[vvar]')!;
      expect(plan.entries.some((e) => e.vaddr >= vvar.start && e.vaddr < vvar.end)).toBe(false);
      const vdso = vmas.find((v) => v.name === '[vdso]')!;
      expect(plan.entries.some((e) => e.vaddr === vdso.start && e.flags & PE_PRESENT)).toBe(true);

      const r = await openPageReader({ dir, id: pid });
      const mem = Buffer.alloc(4 << 20);
      r.read(area!.start, mem);
      r.close();
      const words = new BigUint64Array(mem.buffer, mem.byteOffset, mem.length / 8);
      let bad = 0;
      for (let i = 0; i < words.length; i++) if (words[i] !== BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n)) bad++;
      expect(bad).toBe(0);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('FrozenLazyPages: keeps only the ranges; pages are read from the stopped task when asked for, clipped to a range', async () => {
    const pid = child!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const area = collectVmas(readMaps(pid)).find((v) => v.end - v.start === 4n << 20n && v.prot === 3 && v.name === '')!;
      const lazy = new FrozenLazyPages();
      // the task's pid in the images (as inside a pid namespace) need not be its real one
      lazy.add(7, pid, area.start + 4096n, 1023);
      expect(lazy.pages).toBe(1023);
      expect(lazy.run(7n, area.start, 4n)).toBe(0); // not lazy
      expect(lazy.run(8n, area.start + 4096n, 4n)).toBe(0); // another task
      expect(lazy.run(7n, area.start + 4097n, 4n)).toBe(0); // not page aligned
      expect(lazy.run(7n, area.start + 4096n, 4n)).toBe(4);
      expect(lazy.run(7n, area.start + 1020n * 4096n, 64n)).toBe(4); // up to the range's end
      const got = Buffer.alloc(4 * 4096);
      await lazy.read(7n, area.start + 1020n * 4096n, got);
      const words = new BigUint64Array(got.buffer, got.byteOffset, got.length / 8);
      for (let i = 0; i < words.length; i++) expect(words[i]).toBe(BigInt.asUintN(64, BigInt(1020 * 512 + i) * 0x9e3779b97f4a7c15n));
      expect(lazy.served).toBe(4);
      lazy.close();
      // (opened again when asked for more after a close)
      await lazy.read(7n, area.start + 4096n, got.subarray(0, 4096));
      expect(got.readBigUInt64LE(0)).toBe(BigInt.asUintN(64, 512n * 0x9e3779b97f4a7c15n));
      lazy.close();
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
