/**
 * `criu dump --check-only -t PID`: a preflight that names everything a dump would refuse, all
 * at once, writes no image and leaves the tree running as it was.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, criu, killAllStarted, procStatus, startWorkload, tmp, treePids } from './helpers.js';

afterAll(() => killAllStarted());

function untraced(pid: number) {
  const st = procStatus(pid);
  expect(st['TracerPid']).toBe('0');
  expect(st['State']).not.toMatch(/^[tT]/);
}

describe('criu dump --check-only', () => {
  it('names every object of the tree a dump would refuse (a mapping, a descriptor, a task attribute, a shared table); exit 4; no image; the tree runs on', () => {
    const w = startWorkload('unsupported', []);
    const child = Number(/child=(\d+)/.exec(readFileSync(w.state, 'utf8'))![1]);
    expect(treePids(w.pid).sort()).toEqual([w.pid, child].sort());
    const dir = tmp('check-only');
    const r = criu(['dump', '--check-only', '-t', String(w.pid), '-D', dir, '-o', 'check.log']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    const named = [
      new RegExp(`^criu: task ${w.pid}: mapping [0-9a-f]+-[0-9a-f]+ /SYSV0+: SysV IPC shared memory is not supported yet$`),
      new RegExp(`^criu: task ${w.pid} fd 7 \\(anon_inode:\\[pidfd\\]\\): a pidfd of process 1, which is outside the dumped tree, is not supported`),
      new RegExp(`^criu: task ${w.pid}: timer slack 123457 ns \\(PR_SET_TIMERSLACK\\) is not supported \\(a restored task has 50000 ns\\)$`),
      new RegExp(`^criu: task ${child} shares its cwd, root and umask \\(CLONE_FS\\) with task ${w.pid}, which is not supported yet$`),
    ];
    // each named once, in the order met, then the verdict
    expect(lines).toHaveLength(named.length + 1);
    named.forEach((re, i) => expect(lines[i]).toMatch(re));
    expect(lines[named.length]).toBe(`criu: a dump of the tree of ${w.pid} would fail: 4 things in it cannot be dumped`);
    // the log says the same, one error each
    expect(readFileSync(path.join(dir, 'check.log'), 'utf8').match(/Error \(dump\): /g)).toHaveLength(4);
    expect(readdirSync(dir)).toEqual(['check.log']);
    // the tree as it was: both tasks, not traced, everything still in place
    for (const p of [w.pid, child]) untraced(p);
    expect(w.check()).toBe('check ok');
    // a real dump stops at the first of them, as before
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('check-only-dump')]);
    expect(d.code).toBe(4);
    expect(d.stderr.trim().split('\n')).toHaveLength(1);
    expect(d.stderr.trim()).toMatch(named[0]!);
    expect(w.check()).toBe('check ok');
    w.kill();
  });

  it('a tree a dump can take: "Looks good", exit 0, no image, the task keeps running untraced; a dump then goes through', () => {
    const w = startWorkload('sleeper', []);
    const dir = tmp('check-only-ok');
    const r = criu(['dump', '--check-only', '-t', String(w.pid), '-D', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`Looks good: the tree of ${w.pid} (1 task) can be dumped.\n`);
    expect(readdirSync(dir)).toEqual([]);
    expect(alive(w.pid)).toBe(true);
    untraced(w.pid);
    expect(w.check()).toMatch(/^check ok/);
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-R']);
    expect(d.code, d.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'inventory.img'))).toBe(true);
    w.kill();
  });

  it('a pid that does not exist: the one error a dump gives, not a refusal (exit other than 4)', () => {
    const r = criu(['dump', '--check-only', '-t', '999999999', '-D', tmp('check-only-nopid')]);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe(4);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
