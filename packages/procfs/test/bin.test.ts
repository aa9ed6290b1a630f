import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const pkg = join(import.meta.dirname, '..');
const bin = join(pkg, 'bin', 'procfs.js');
const built = existsSync(join(pkg, 'dist', 'bin.js'));
const golden = join(import.meta.dirname, 'golden');

/** A fake /proc with captured files under PID 4242. */
const root = mkdtempSync(join(tmpdir(), 'procfs-bin-'));
mkdirSync(join(root, '4242'));
cpSync(join(golden, 'malformed.maps.txt'), join(root, '4242', 'maps'));
cpSync(join(golden, 'weird.stat.txt'), join(root, '4242', 'stat'));
cpSync(join(golden, 'zoo.status.txt'), join(root, '4242', 'status'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args, '--proc-root', root], { encoding: 'utf8' });

describe.skipIf(!built)('procfs bin on captured files (run `pnpm --filter @crtools/procfs build` first)', () => {
  it('a malformed maps line: one error line naming file and line, exit 3, no partial garbage', () => {
    const r = run('maps', '4242');
    expect(r.status).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${root}/4242/maps:2`);
  });
  it('--keep-going streams the good records and an error record per bad line, exit 3', () => {
    const r = run('maps', '4242', '--keep-going');
    expect(r.status).toBe(3);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(recs.filter((x) => x.error).map((x) => x.error.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(recs.filter((x) => !x.error).map((x) => x.name)).toEqual(['/bin/ok', '/bin/ok2']);
    expect(recs[0].name).toBe('/bin/ok');
    expect(recs.at(-1).name).toBe('/bin/ok2');
  });
  it('stat is one JSON document with comm from the last ")"; --raw keeps text', () => {
    const r = run('stat', '4242');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.comm).toBe('a) (b c)');
    expect(s.rsslim).toBe('0xffffffffffffffff');
    expect(JSON.parse(run('stat', '4242', '--raw').stdout).rsslim).toBe('18446744073709551615');
  });
  it('status typed values', () => {
    const s = JSON.parse(run('status', '4242').stdout);
    expect(s.Name).toBe('zoo');
    expect(s.SigBlk).toBe('0x801');
  });
  it('usage errors exit 2, a missing process exits 1', () => {
    expect(run('nope', '4242').status).toBe(2);
    expect(run('maps', 'x').status).toBe(2);
    const r = run('maps', '5');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no such process: 5/);
  });
});
