/**
 * A file a task writes to with O_WRONLY|O_APPEND (its log, stdout redirected with >>) grows
 * while the checkpoint waits: as CRIU, the dump records no size for it, so the restore does not
 * refuse it for having grown, and the task's next writes go to its end. A file opened otherwise
 * that changed size is still refused at restore.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { criu, killAllStarted, killTree, sleep, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, restoreDir } from './roundtrip.js';

afterEach(() => killRestored());
afterAll(() => killAllStarted());

/** a shell in a session of its own (not our child) writing a numbered line every 50 ms to its stdout, `redirect` (>> or >) to a log */
function writer(dir: string, redirect: '>>' | '>'): { pid: number; log: string } {
  const log = path.join(dir, 'log');
  const loop = 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.05; done';
  const r = spawnSync('/bin/sh', ['-c', `setsid /bin/sh -c '${loop}' </dev/null 2>/dev/null ${redirect} ${log} & echo $!`], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim());
  started.push(pid);
  sleep(300);
  return { pid, log };
}

const started: number[] = [];
afterAll(() => {
  for (const p of started) killTree(p);
});

/** The writer dumped (it ends with the dump), its log grown meanwhile, then restored: the restore's outcome. */
function dumpGrowRestore(name: string, redirect: '>>' | '>'): { w: { pid: number; log: string }; r: ReturnType<typeof restoreDir> } {
  const dir = tmp(name);
  const w = writer(dir, redirect);
  const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
  expect(d.code, d.stderr).toBe(0);
  expect(waitReaped(w.pid)).toBe(true);
  appendFileSync(w.log, 'written meanwhile\n');
  return { w, r: restoreDir(dir) };
}

describe('a log file opened to append', () => {
  it('grown between dump and restore: restored, the task goes on writing at its end', () => {
    const { w, r } = dumpGrowRestore('appendlog', '>>');
    expect(r.code, r.stderr).toBe(0);
    sleep(400);
    const lines = readFileSync(w.log, 'utf8').split('\n');
    const at = lines.indexOf('written meanwhile');
    expect(at).toBeGreaterThan(0);
    // the shell's next lines follow it, numbered on from before the dump
    const before = Number(/line (\d+)/.exec(lines[at - 1]!)![1]);
    expect(lines[at + 1]).toBe(`line ${before + 1}`);
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('a file opened write-only without O_APPEND that grew is refused at restore, naming it', () => {
    const { w, r } = dumpGrowRestore('truncatelog', '>');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`file ${w.log.replace(/[/.]/g, '\\$&')} changed size`));
    expect(waitGone(w.pid)).toBe(true);
  });
});
