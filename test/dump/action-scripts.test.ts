import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criu, killAllStarted, killTreeAndWait, startWorkload, tmp, waitReaped } from './helpers.js';

afterAll(() => killAllStarted());

/** A script that appends "ACTION PID DIR" to `log` and fails at `failAt`. */
function script(dir: string, log: string, failAt = ''): string {
  const p = path.join(dir, 'action.sh');
  writeFileSync(p, `#!/bin/sh\necho "$CRTOOLS_SCRIPT_ACTION $CRTOOLS_INIT_PID $CRTOOLS_IMAGE_DIR" >> ${log}\n[ "$CRTOOLS_SCRIPT_ACTION" != "${failAt}" ]\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('criu dump/restore --action-script (the engines\' notify hook, as CRIU runs scripts)', () => {
  it('runs at pre-dump, post-dump, pre-restore, post-restore, pre-resume and post-resume with CRIU\'s variables', () => {
    const w = startWorkload('pattern', ['4']);
    const dir = tmp('action');
    const img = path.join(dir, 'img');
    const log = path.join(dir, 'actions.log');
    const s = script(dir, log);
    const d = criu(['dump', '-t', String(w.pid), '-D', img, '--action-script', s]);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = criu(['restore', '-D', img, '-d', `--action-script=${s}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(
      // (as CRIU: no CRTOOLS_INIT_PID at pre-restore, before the root task exists)
      ['pre-dump', 'post-dump', 'pre-restore', 'post-restore', 'pre-resume', 'post-resume'].map((a) => `${a} ${a === 'pre-restore' ? '' : w.pid} ${img}`),
    );
    expect(w.check(20_000)).toBe('check ok bad=0');
    w.kill();
  });

  it("a tree in a pid namespace of its own: restore's scripts get its root's pid in criu's namespace, not its pid inside (1) from the images (CRIU's test/others/action-script)", () => {
    const w = startWorkload('pidns', []);
    const dir = tmp('action-pidns');
    const img = path.join(dir, 'img');
    const log = path.join(dir, 'actions.log');
    const s = script(dir, log);
    // (pidns.c holds a flock)
    const d = criu(['dump', '-t', String(w.pid), '-D', img, '--file-locks', '--action-script', s]);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const pidfile = path.join(dir, 'root.pid');
    const r = criu(['restore', '-D', img, '-d', '--file-locks', '--pidfile', pidfile, '--action-script', s]);
    expect(r.code, r.stderr).toBe(0);
    const root = Number(readFileSync(pidfile, 'utf8'));
    try {
      expect(root).not.toBe(1);
      const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
      const at = lines.findIndex(([a]) => a === 'pre-restore');
      expect(lines.slice(0, at).map(([a, p]) => `${a} ${p}`)).toEqual(['pre-dump', 'post-dump'].map((a) => `${a} ${w.pid}`));
      expect(lines[at]).toEqual(['pre-restore', '', img]);
      const after = lines.slice(at + 1);
      expect(after.map(([a]) => a)).toEqual(expect.arrayContaining(['setup-namespaces', 'post-setup-namespaces', 'post-restore', 'pre-resume', 'post-resume']));
      for (const [a, p] of after) expect(`${a} ${p}`).toBe(`${a} ${root}`);
    } finally {
      killTreeAndWait(root);
    }
  });

  it('a failing post-dump script fails the dump: no images left, the tree resumed as it was', () => {
    const w = startWorkload('pattern', ['4']);
    const dir = tmp('action-fail');
    const img = path.join(dir, 'img');
    const s = script(dir, path.join(dir, 'actions.log'), 'post-dump');
    const d = criu(['dump', '-t', String(w.pid), '-D', img, '--action-script', s]);
    expect(d.code).toBe(1);
    expect(d.stderr).toBe(`criu: action script ${s} failed at post-dump (exit 1)\n`);
    expect(existsSync(path.join(img, 'inventory.img'))).toBe(false);
    expect(readdirSync(img)).toEqual([]);
    expect(w.check(10_000)).toBe('check ok bad=0');
    w.kill();
  });

  it('a failing pre-dump script fails the dump before anything is frozen: the tree runs on intact', () => {
    const w = startWorkload('pattern', ['4']);
    const dir = tmp('action-predump');
    const img = path.join(dir, 'img');
    const log = path.join(dir, 'actions.log');
    const s = script(dir, log, 'pre-dump');
    const d = criu(['dump', '-t', String(w.pid), '-D', img, '--action-script', s]);
    expect(d.code).toBe(1);
    expect(d.stderr).toBe(`criu: action script ${s} failed at pre-dump (exit 1)\n`);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([`pre-dump ${w.pid} ${img}`]);
    expect(existsSync(path.join(img, 'inventory.img'))).toBe(false);
    expect(w.check(10_000)).toBe('check ok bad=0');
    w.kill();
  });

  it('a failing post-restore script fails the restore and leaves no restored task; a failing pre-resume or post-resume only says so', () => {
    const w = startWorkload('pattern', ['4']);
    const dir = tmp('action-restore');
    const img = path.join(dir, 'img');
    const d = criu(['dump', '-t', String(w.pid), '-D', img]);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);

    const post = script(dir, path.join(dir, 'post-restore.log'), 'post-restore');
    const r1 = criu(['restore', '-D', img, '-d', '--action-script', post]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toBe(`criu: action script ${post} failed at post-restore (exit 1)\n`);
    expect(waitReaped(w.pid)).toBe(true);

    for (const at of ['pre-resume', 'post-resume']) {
      const s = script(dir, path.join(dir, `${at}.log`), at);
      const r = criu(['restore', '-D', img, '-d', '-o', `${at}-restore.log`, '--action-script', s]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(path.join(img, `${at}-restore.log`), 'utf8')).toMatch(new RegExp(`Error \\(restore\\): action script .* failed at ${at} \\(exit 1\\)`));
      expect(w.check(20_000)).toBe('check ok bad=0');
      process.kill(w.pid, 'SIGKILL');
      expect(waitReaped(w.pid)).toBe(true);
    }
  });
});
