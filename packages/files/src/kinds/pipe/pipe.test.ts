import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeImageFile } from '@crtools/images';
import { readFds } from '@crtools/procfs';
import { FileTable } from '../../dump/table.js';
import { FilePlanTable } from '../../plan/table.js';
import { describeFileEntry } from '../../view/index.js';

describe('pipe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'files-pipe-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a live pipe end with bytes in it: dumped, planned again with those bytes, named pipe[ino]', async () => {
    // sleep reading a pipe that printf filled (node's own stdio pipes are socketpairs)
    const sh = spawn('sh', ['-c', 'printf "hello pipe" | sleep 30'], { stdio: 'ignore' });
    let sleeper = 0;
    try {
      for (let i = 0; i < 100 && !sleeper; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const kids = readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        // printf's side has written and exited when sleep is the only child left
        if (kids.length === 1 && readFileSync(`/proc/${kids[0]}/comm`, 'utf8').trim() === 'sleep') sleeper = kids[0]!;
      }
      expect(sleeper).toBeGreaterThan(0);
      const child = { pid: sleeper };
      const rec = readFds(child.pid!).find((r) => r.fd === 0)!;
      expect(rec.target).toMatch(/^pipe:\[\d+\]$/);
      const table = new FileTable();
      const fdinfo = table.fd(child.pid!, rec)!;
      const again = table.fd(child.pid!, rec)!;
      expect(again.id).toBe(fdinfo.id); // the same open file: one id
      expect(fdinfo.type).toBe('PIPE');
      for (const im of table.images()) await writeImageFile(join(dir, im.file), { magic: im.magic, entries: im.entries });

      const plans = await FilePlanTable.load(dir);
      const p = plans.files[plans.index(Number(fdinfo.id), 'fd 0', child.pid!)]!;
      expect(p.kind).toBe('pipe-r');
      if (p.kind !== 'pipe-r') return;
      expect(p.data?.toString()).toBe('hello pipe');
      expect(p.pipeId).toBe(Number(/\d+/.exec(rec.target)![0]));
      expect(describeFileEntry({ type: 'PIPE', id: 1, pipe: { pipe_id: p.pipeId } })).toBe(`pipe[${p.pipeId}]`);
      expect(plans.inheritKey(plans.entry(Number(fdinfo.id), 'fd 0'))).toBe(rec.target);
    } finally {
      if (sleeper) process.kill(sleeper, 'SIGKILL');
      process.kill(sh.pid!, 'SIGKILL');
    }
  });
});
