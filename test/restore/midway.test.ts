/**
 * A failure inside the blob, after the tree is forked: every process of the restore is killed,
 * by pid, and the error names the task, the step and the errno. Driven through the libraries
 * (the plan is altered after the image checks, which a bin cannot do).
 */
import { existsSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { buildRestorePlan, restoreTree } from '@crtools/restorer';
import { criu, killAllStarted, sleep, startWorkload, tmp } from '../dump/helpers.js';

afterAll(() => killAllStarted());

it('a child task failing at "mmap" takes the whole restored tree down', async () => {
  const w = startWorkload('pipetree', []);
  const dir = tmp('midway');
  const d = criu(['dump', '-t', String(w.pid), '-D', dir]);
  expect(d.code, d.stderr).toBe(0);
  const plan = await buildRestorePlan(dir);
  const pids = plan.tasks.map((t) => t.pid);
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
  const victim = plan.tasks[2]!;
  const v = victim.vmas.find((x) => x.kind === 'file-private')!;
  v.path = '/nonexistent/crtools-midway';
  v.fileSize = undefined;
  await expect(restoreTree(plan)).rejects.toMatchObject({
    code: 'RESTORE_TASK_FAILED',
    message: `restore of pid ${victim.pid} failed at "mmap": ENOENT (detail 0x${v.start.toString(16)})`,
  });
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
  for (const p of pids) expect(existsSync(`/proc/${p}`), `pid ${p} left behind`).toBe(false);
});
