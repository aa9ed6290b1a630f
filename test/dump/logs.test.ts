import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criu, killAllStarted, startWorkload, tmp, waitReaped } from './helpers.js';

afterAll(() => killAllStarted());

describe("logs in CRIU's shape and levels; quiet on success", () => {
  it('criu dump and criu restore print nothing on success (no -o, default level)', () => {
    const w = startWorkload('pattern', ['2']);
    const dir = tmp('quiet');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir]);
    expect(d).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(waitReaped(w.pid)).toBe(true);
    const r = criu(['restore', '-D', dir, '-d']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(w.check(20_000)).toBe('check ok bad=0');
    w.kill();
  });

  it('levels as CRIU\'s: -v2 (default) keeps info out of the log, -v3 has it; a failure is an Error line', () => {
    const w = startWorkload('pattern', ['2']);
    const dir = tmp('levels');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir, '-R', '-o', 'v2.log']).code).toBe(0);
    expect(readFileSync(path.join(dir, 'v2.log'), 'utf8')).not.toContain('Dumping finished successfully');
    expect(criu(['dump', '-t', String(w.pid), '-D', dir, '-R', '-o', 'v3.log', '-v3']).code).toBe(0);
    expect(readFileSync(path.join(dir, 'v3.log'), 'utf8')).toMatch(/^\(\d\d\.\d{6}\) Dumping finished successfully/m);
    // restore while the task still runs: its pid is taken
    const r = criu(['restore', '-D', dir, '-d', '-o', 'restore.log']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(path.join(dir, 'restore.log'), 'utf8')).toMatch(/^\(\d\d\.\d{6}\) Error \(restore\): .*pid \d+/m);
    rmSync(dir, { recursive: true, force: true });
    w.kill();
  });
});
