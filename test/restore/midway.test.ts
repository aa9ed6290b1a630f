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

it.each(['SIGTERM', 'SIGINT'] as const)('criu restore gets %s while its tasks are restored: one line, exit 1, no task left, the pids free again', async (sig) => {
  const w = startWorkload('pattern', ['128', '3']);
  const dir = tmp(`interrupted-${sig}`);
  const d = criu(['dump', '-t', String(w.pid), '-D', dir]);
  expect(d.code, d.stderr).toBe(0);
  const plan = await buildRestorePlan(dir);
  const pids = plan.tasks.map((t) => t.pid);
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
  const child = spawn(process.execPath, [criuBin, 'restore', '-D', dir, '-d', '-v4', '-o', 'restore.log'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // the root launched: its tasks are being made (a 3 × 128 MiB tree takes a while to fill)
  const log = path.join(dir, 'restore.log');
  for (let i = 0; i < 2000 && !(existsSync(log) && readFileSync(log, 'utf8').includes('root task launched')); i++) await new Promise((r) => setTimeout(r, 2));
  expect(readFileSync(log, 'utf8')).toContain('root task launched');
  child.kill(sig);
  const code = await exited;
  expect(code, stderr).toBe(1);
  expect(stderr).toBe(`criu: restore interrupted (${sig})\n`);
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
  for (const p of pids) expect(existsSync(`/proc/${p}`), `pid ${p} left behind`).toBe(false);
  // nothing half-made holds the pids: the same images restore, intact
  const root = restoreRoot(dir);
  expect(askVerdict(w.state, root, 20_000)).toBe('check ok bad=0');
});

it('criu restore SIGKILLed while its tasks are restored: the half-made tasks die with it at once (no wait for the blob\'s limit), the pids free again', async () => {
  const w = startWorkload('pattern', ['128', '3']);
  const dir = tmp('killed-restorer');
  const d = criu(['dump', '-t', String(w.pid), '-D', dir]);
  expect(d.code, d.stderr).toBe(0);
  const plan = await buildRestorePlan(dir);
  const pids = plan.tasks.map((t) => t.pid);
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
  const child = spawn(process.execPath, [criuBin, 'restore', '-D', dir, '-d', '-v4', '-o', 'restore.log'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
  const log = path.join(dir, 'restore.log');
  for (let i = 0; i < 2000 && !(existsSync(log) && readFileSync(log, 'utf8').includes('root task launched')); i++) await new Promise((r) => setTimeout(r, 2));
  expect(readFileSync(log, 'utf8')).toContain('root task launched');
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  // gone within 3 s (the blob's own limit, which left them before, is 30 s)
  const t0 = Date.now();
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) sleep(10);
  for (const p of pids) expect(existsSync(`/proc/${p}`), `pid ${p} left behind ${Date.now() - t0} ms after the kill`).toBe(false);
  const root = restoreRoot(dir);
  expect(askVerdict(w.state, root, 20_000)).toBe('check ok bad=0');
});
