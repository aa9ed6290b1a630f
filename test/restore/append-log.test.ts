/**
 * A file a task writes to with O_WRONLY|O_APPEND (its log, stdout redirected with >>) grows
 * while the checkpoint waits: as CRIU, the dump records no size for it, so the restore does not
 * refuse it for having grown, and the task's next writes go to its end. A file opened otherwise
 * that changed size is still refused at restore, and so is one whose mode changed (CRIU's "has bad
 * mode"), unless `--skip-file-rwx-check` lets its rwx bits differ.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, readFileSync, statSync } from 'node:fs';
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

/** The writer dumped (it ends with the dump), its log changed meanwhile (grown by default), then restored: the restore's outcome. */
function dumpGrowRestore(name: string, redirect: '>>' | '>', meanwhile = (log: string) => appendFileSync(log, 'written meanwhile\n')) {
  const dir = tmp(name);
  const w = writer(dir, redirect);
  const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
  expect(d.code, d.stderr).toBe(0);
  expect(waitReaped(w.pid)).toBe(true);
  meanwhile(w.log);
  return { w, dir, r: restoreDir(dir) };
}

/** The restored writer goes on: its log grows. */
function goesOn(w: { pid: number; log: string }): void {
  const was = readFileSync(w.log, 'utf8').length;
  sleep(400);
  expect(readFileSync(w.log, 'utf8').length).toBeGreaterThan(was);
  killTree(w.pid);
  expect(waitGone(w.pid)).toBe(true);
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

describe('a file whose mode changed between dump and restore', () => {
  it('refused at restore, naming the file and both modes; --skip-file-rwx-check restores it', () => {
    let was = 0;
    const { w, dir, r } = dumpGrowRestore('modelog', '>>', (log) => {
      was = statSync(log).mode;
      chmodSync(log, was & 0o777 ? 0 : 0o600);
    });
    const now = was & 0o777 ? 0o100000 : 0o100600;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`file ${w.log.replace(/[/.]/g, '\\$&')} has mode 0${now.toString(8)}, recorded 0${was.toString(8)}`));
    expect(waitGone(w.pid)).toBe(true);
    const again = restoreDir(dir, ['--skip-file-rwx-check']);
    expect(again.code, again.stderr).toBe(0);
    goesOn(w);
  });

  it('--skip-file-rwx-check still refuses a file whose setuid bit changed', () => {
    let was = 0;
    const { w, dir, r } = dumpGrowRestore('suidlog', '>>', (log) => {
      was = statSync(log).mode;
      chmodSync(log, (was & 0o777) | 0o4000);
    });
    expect(r.code).toBe(1);
    const again = restoreDir(dir, ['--skip-file-rwx-check']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`has mode 0${(was | 0o4000).toString(8)}, recorded 0${was.toString(8)}`);
    expect(waitGone(w.pid)).toBe(true);
  });
});
