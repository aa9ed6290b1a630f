import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { writeImageFile } from '@crtools/images';
import { readFds } from '@crtools/procfs';
import { FileTable } from '../../dump/table.js';
import { FilePlanTable } from '../../plan/table.js';
import { RegPlans } from './plan.js';

describe('reg', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-reg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an open file: dumped by path, flags, offset and size; planned again; unlinked ones kept as ghosts', async () => {
    const kept = join(dir, 'kept.txt');
    const gone = join(dir, 'gone.txt');
    writeFileSync(kept, 'abc');
    writeFileSync(gone, 'contents of an unlinked file');
    const fds = [openSync(kept, 'r'), openSync(gone, 'r')];
    const child = spawn('sleep', ['30'], { stdio: ['ignore', fds[0], fds[1]] });
    fds.forEach((fd) => closeSync(fd));
    try {
      await new Promise((r) => child.once('spawn', r));
      rmSync(gone);
      const table = new FileTable();
      const recs = readFds(child.pid!).filter((r) => r.fd === 1 || r.fd === 2);
      const ids = recs.map((r) => Number(table.fd(child.pid!, r)!.id));
      const images = join(dir, 'images');
      mkdirSync(images);
      for (const im of table.images()) await writeImageFile(join(images, im.file), { magic: im.magic, entries: im.entries });
      const plans = await FilePlanTable.load(images);
      const [a, b] = ids.map((id) => plans.files[plans.index(id, 'fd', child.pid!)]!);
      expect(a).toMatchObject({ kind: 'reg', path: kept, size: 3n });
      expect(b).toMatchObject({ kind: 'reg', path: gone, ghost: 0 });
      expect(plans.ghosts[0]!.data.toString()).toBe('contents of an unlinked file');
    } finally {
      process.kill(child.pid!, 'SIGKILL');
    }
  });

  it('a file that changed size since the dump is refused (exit 1), naming it', () => {
    const f = join(dir, 'grown.txt');
    writeFileSync(f, 'abc');
    appendFileSync(f, 'def');
    let err: unknown;
    try {
      new RegPlans().plan({ name: f, size: 3n, flags: 0 }, { id: 1, what: 'pid 7 fd 3', pid: 7, index: 0 });
    } catch (e) {
      err = e;
    }
    expect(isCrtoolsError(err) && err.exitCode).toBe(1);
    expect((err as Error).message).toBe(`pid 7 fd 3: file ${f} changed size (6, recorded 3)`);
  });
});
