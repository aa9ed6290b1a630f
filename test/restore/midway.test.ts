/**
 * A failure inside the blob, after the tree is forked: every process of the restore is killed,
 * by pid, and the error names the task, the step and the errno. Driven through the libraries
 * (the plan is altered after the image checks, which a bin cannot do).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { buildRestorePlan, restoreTree } from '@crtools/restorer';
import { criuBin } from '../lib/paths.js';
import { askVerdict, criu, killAllStarted, sleep, startWorkload, tmp } from '../dump/helpers.js';
import { killRestored, restoreRoot } from './roundtrip.js';

afterAll(() => {
  killRestored();
  killAllStarted();
});

/** A workload dumped (killed) into a new directory, its restore plan, and its pids once free. */
async function dumped(workload: string, args: string[], name: string) {
  const w = startWorkload(workload, args);
  const dir = tmp(name);
  const d = criu(['dump', '-t', String(w.pid), '-D', dir]);
  expect(d.code, d.stderr).toBe(0);
  const plan = await buildRestorePlan(dir);
  const pids = plan.tasks.map((t) => t.pid);
  waitGone(pids);
  return { w, dir, plan, pids };
}

/** Wait up to 3 s for every pid to be free. */
function waitGone(pids: number[]): void {
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
}

/** `criu restore -d` of dir started, once its log says the root task is launched (its tasks being made). */
async function restoreStarted(dir: string, stdio: 'ignore' | 'pipe') {
  const child = spawn(process.execPath, [criuBin, 'restore', '-D', dir, '-d', '-v4', '-o', 'restore.log'], { stdio: ['ignore', 'ignore', stdio] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const log = path.join(dir, 'restore.log');
  for (let i = 0; i < 2000 && !(existsSync(log) && readFileSync(log, 'utf8').includes('root task launched')); i++) await new Promise((r) => setTimeout(r, 2));
  expect(readFileSync(log, 'utf8')).toContain('root task launched');
  return { child, exited };
}

it('a child task failing at "mmap" takes the whole restored tree down', async () => {
  const { plan, pids } = await dumped('pipetree', [], 'midway');
  const victim = plan.tasks[2]!;
  const v = victim.vmas.find((x) => x.kind === 'file-private')!;
  v.path = '/nonexistent/crtools-midway';
  v.fileSize = undefined;
  await expect(restoreTree(plan)).rejects.toMatchObject({
    code: 'RESTORE_TASK_FAILED',
    message: `restore of pid ${victim.pid} failed at "mmap": ENOENT (detail 0x${v.start.toString(16)})`,
  });
  waitGone(pids);
  for (const p of pids) expect(existsSync(`/proc/${p}`), `pid ${p} left behind`).toBe(false);
});

it.each(['SIGTERM', 'SIGINT'] as const)('criu restore gets %s while its tasks are restored: one line, exit 1, no task left, the pids free again', async (sig) => {
  const { w, dir, pids } = await dumped('pattern', ['128', '3'], `interrupted-${sig}`);
  // the root launched: its tasks are being made (a 3 × 128 MiB tree takes a while to fill)
  const { child, exited } = await restoreStarted(dir, 'pipe');
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += b));
  child.kill(sig);
  const { code } = await exited;
  expect(code, stderr).toBe(1);
  expect(stderr).toBe(`criu: restore interrupted (${sig})\n`);
  waitGone(pids);
  for (const p of pids) expect(existsSync(`/proc/${p}`), `pid ${p} left behind`).toBe(false);
  // nothing half-made holds the pids: the same images restore, intact
  const root = restoreRoot(dir);
  expect(askVerdict(w.state, root, 20_000)).toBe('check ok bad=0');
});

it('criu restore SIGKILLed while its tasks are restored: the half-made tasks die with it at once (no wait for the blob\'s limit), the pids free again', async () => {
  const { w, dir, pids } = await dumped('pattern', ['128', '3'], 'killed-restorer');
  const { child, exited } = await restoreStarted(dir, 'ignore');
  child.kill('SIGKILL');
  expect((await exited).signal).toBe('SIGKILL');
  // gone within 3 s (the blob's own limit, which left them before, is 30 s)
  const t0 = Date.now();
  waitGone(pids);
  for (const p of pids) expect(existsSync(`/proc/${p}`), `pid ${p} left behind ${Date.now() - t0} ms after the kill`).toBe(false);
  const root = restoreRoot(dir);
  expect(askVerdict(w.state, root, 20_000)).toBe('check ok bad=0');
});
