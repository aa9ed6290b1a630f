import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criuBin, repoRoot } from '../lib/paths.js';

const kerndatBin = path.join(repoRoot, 'packages/kerndat/bin/kerndat.js');
const dir = mkdtempSync(path.join(tmpdir(), 'crtools-kerndat-e2e-'));
const cache = path.join(dir, 'kerndat.json');
const env = { ...process.env, CRTOOLS_KERNDAT_CACHE: cache };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sh(cmd: string, input?: string) {
  const r = spawnSync('sh', ['-c', cmd], { env, input, encoding: 'utf8', timeout: 30_000, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function kerndatDoc(args = ''): Record<string, any> {
  const r = sh(`node ${kerndatBin} ${args}`);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout); // exactly one JSON document on stdout
}

describe('kerndat | criu check, on this machine', () => {
  it('kerndat prints one JSON document; the guard gap is measured', () => {
    const k = kerndatDoc('--no-cache');
    expect(k.schema).toBe('crtools-kerndat/1');
    expect(k.errors).toEqual({});
    expect(k.release).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
    expect(k.boot_id).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(typeof k.stack_guard_gap).toBe('number');
    expect(k.stack_guard_gap_hidden).toBe(k.stack_guard_gap !== 0);
    // 6.18: 4.12+ semantics, maps shows the real start: gap 0, CRIU's flag false
    expect(k.stack_guard_gap).toBe(0);
    expect(k.stack_guard_gap_hidden).toBe(false);
    expect(k.vdso.order).toEqual(expect.arrayContaining(['[vvar]', '[vdso]']));
    expect(k.task_size).toMatch(/^0x[0-9a-f]+$/);
  });

  it('the cache is written, reused while release and boot id match, bypassed by --no-cache', () => {
    rmSync(cache, { force: true });
    const a = kerndatDoc();
    expect(existsSync(cache)).toBe(true);
    const b = kerndatDoc();
    expect(b.probed_at).toBe(a.probed_at);
    const c = kerndatDoc('--no-cache');
    expect(c.probed_at).not.toBe(a.probed_at);
    const d = kerndatDoc(`--cache-path ${path.join(dir, 'other', 'k.json')}`);
    expect(existsSync(path.join(dir, 'other', 'k.json'))).toBe(true);
    expect(d.boot_id).toBe(a.boot_id);
  });

  it('kerndat | criu check -> Looks good., exit 0', () => {
    const r = sh(`node ${kerndatBin} --no-cache | node ${criuBin} check`);
    expect(r.stdout).toBe('Looks good.\n');
    expect(r.code).toBe(0);
  });

  it('criu check without stdin (or with an empty pipe) probes by itself', () => {
    const r = sh(`node ${criuBin} check`);
    expect(r.stdout).toBe('Looks good.\n');
    expect(r.code).toBe(0);
    const empty = sh(`true | node ${criuBin} check --no-cache`);
    expect(empty).toMatchObject({ code: 0, stdout: 'Looks good.\n' });
  });

  it('kerndat usage errors: one line, exit 2', () => {
    const r = sh(`node ${kerndatBin} --only page_size,bogus`);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: 'kerndat: unknown probe(s): bogus\n' });
  });

  it('kerndat | criu check --extra: what this kernel lacks, one line each, "Looks good but ..." exit 1', () => {
    const r = sh(`node ${kerndatBin} | node ${criuBin} check --extra`);
    expect(r.stdout).toBe('Looks good but some kernel features are missing\nwhich, depending on your process tree, may cause\ndump or restore failure.\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mem_dirty_track: soft-dirty memory tracking is off .*PAGEMAP_SCAN.*; .+$/m);
  });

  it('all has_* false -> Does not look good., non-zero', () => {
    const k = kerndatDoc();
    for (const key of Object.keys(k)) if (key.startsWith('has_')) k[key] = false;
    const r = sh(`node ${criuBin} check`, JSON.stringify(k));
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('Looks good');
    expect(r.stderr).toContain('Does not look good.');
    expect(r.stderr.split('\n')[0]).toMatch(/^caps: .+; .+/);
  });

  it('criu check --feature list names the features; --feature NAME answers', () => {
    const r = sh(`node ${criuBin} check --feature list`);
    expect(r.code).toBe(0);
    const names = r.stdout.trim().split('\n');
    expect(names).toEqual(expect.arrayContaining(['mnt_id', 'uffd-noncoop', 'clone3_set_tid', 'pagemap_scan', 'timens', 'get_rseq_conf']));
    const yes = sh(`node ${kerndatBin} | node ${criuBin} check --feature clone3_set_tid`);
    expect(yes).toMatchObject({ code: 0, stdout: 'clone3_set_tid is supported\n' });
    const no = sh(`node ${kerndatBin} | node ${criuBin} check --feature mem_dirty_track`);
    expect(no.code).toBe(1);
    const bad = sh(`node ${criuBin} check --feature nope`);
    expect(bad).toMatchObject({ code: 1, stderr: 'Unknown feature nope\n' });
  });

  it('malformed stdin -> one clear error line, exit 3, never "Looks good."', () => {
    const full = JSON.stringify(kerndatDoc());
    for (const input of ['garbage', '{"schema":"crtools-kerndat/1"}', full.slice(0, full.length / 2), '[]', JSON.stringify({ ...JSON.parse(full), has_kcmp: 'yes' })]) {
      const r = sh(`node ${criuBin} check`, input);
      expect(r.code, input.slice(0, 40)).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^criu: malformed kerndat document: [^\n]+\n$/);
    }
  });
});
