import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { collectVmas, openPagemap, readMaps } from '@crtools/procfs';
import { planDump } from '../src/plan.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_PRESENT } from '../src/constants.js';
import { dumpShmemFile } from '../src/shmem.js';
import { openPageReader } from '../src/reader.js';

const P = 4096;
const tmp = mkdtempSync(join(tmpdir(), 'pagemap-shmem-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('dumpShmemFile', () => {
  it('writes the non-zero pages of an object at their offsets and reads back the whole object', async () => {
    const pages = 300;
    const obj = Buffer.alloc(pages * P);
    for (const pg of [0, 1, 2, 7, 100, 101, 299]) obj.fill(pg + 1, pg * P + 17, pg * P + 200);
    const file = join(tmp, 'object');
    writeFileSync(file, obj.subarray(0, 299 * P + 200)); // shorter than the object: the tail reads as zeros
    const { plan, written } = await dumpShmemFile({ path: file, nrPages: pages, dir: tmp, shmid: 4711n, pagesId: 9 });
    expect(plan.entries).toEqual([
      { vaddr: 0n, nrPages: 3, flags: PE_PRESENT },
      { vaddr: 7n * 4096n, nrPages: 1, flags: PE_PRESENT },
      { vaddr: 100n * 4096n, nrPages: 2, flags: PE_PRESENT },
      { vaddr: 299n * 4096n, nrPages: 1, flags: PE_PRESENT },
    ]);
    expect(written.pagemapPath).toBe(join(tmp, 'pagemap-shmem-4711.img'));
    expect(written.pagesWritten).toBe(7);
    const r = await openPageReader({ dir: tmp, id: 4711, kind: 'shmem' });
    const back = Buffer.alloc(pages * P);
    for (const s of r.segments()) r.read(s.vaddr, back.subarray(Number(s.vaddr), Number(s.vaddr) + s.nrPages * P));
    r.close();
    expect(back.equals(obj)).toBe(true);
  });

  it('fails with one error for a missing file', async () => {
    await expect(dumpShmemFile({ path: join(tmp, 'nope'), nrPages: 1, dir: tmp, shmid: 1, pagesId: 1 })).rejects.toMatchObject({ code: 'PAGEMAP_SOURCE_FAULT' });
  });
});

describe.skipIf(process.getuid?.() !== 0 || !existsSync('/usr/bin/python3'))('live shared anonymous memory (skipped: needs root and /usr/bin/python3)', { timeout: 60_000 }, () => {
  it('planDump hands the shared vma over; dumpShmemFile reads it through map_files', async () => {
    // python's mmap(-1, n) is a MAP_SHARED anonymous mapping
    const script = 'import mmap,sys,time\nm=mmap.mmap(-1,64*4096)\nfor i in range(0,64,3): m[i*4096:i*4096+5]=bytes([i+1])*5\nsys.stdout.write("ready\\n");sys.stdout.flush()\ntime.sleep(60)\n';
    const child = spawn('/usr/bin/python3', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((res, rej) => {
        child.stdout!.once('data', () => res());
        child.once('exit', () => rej(new Error('python exited')));
      });
      const pid = child.pid!;
      const vmas = collectVmas(readMaps(pid));
      const pm = openPagemap(pid);
      const plan = await planDump({ vmas, pagemap: (s, n) => pm.entries(s, n) });
      pm.close();
      // CRIU 4.2 (and procfs) see an anonymous shared mapping as a memfd: FILE_SHARED | MEMFD
      const shared = vmas.find((v) => v.end - v.start === 64n * 4096n && v.shared)!;
      expect(shared).toBeDefined();
      expect(plan.sharedVmas).toContain(shared);
      expect(plan.entries.some((e) => e.vaddr >= shared.start && e.vaddr < shared.end)).toBe(false);
      const dir = mkdtempSync(join(tmp, 'live-'));
      const { plan: sp } = await dumpShmemFile({
        path: `/proc/${pid}/map_files/${shared.start.toString(16)}-${shared.end.toString(16)}`,
        nrPages: 64, dir, shmid: shared.ino, pagesId: 1,
      });
      expect(sp.stats.pagesWritten).toBe(22); // pages 0, 3, …, 63
      const r = await openPageReader({ dir, id: shared.ino, kind: 'shmem' });
      const b = Buffer.alloc(4096);
      r.read(63n * 4096n, b);
      expect([...b.subarray(0, 6)]).toEqual([64, 64, 64, 64, 64, 0]);
      r.close();
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        process.kill(child.pid!, 'SIGKILL');
        await gone;
      }
    }
  });
});
