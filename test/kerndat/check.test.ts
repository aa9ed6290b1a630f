import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  it('kerndat | criu check --extra: what a kernel lacks, one line each, "Looks good but ..." exit 1', () => {
    // what this machine lacks differs from machine to machine (the nft tool, autofs): this
    // kernel's document with one extra feature taken away
    const k = kerndatDoc();
    k.has_nftables_concat = false;
    const r = sh(`node ${criuBin} check --extra`, JSON.stringify(k));
    expect(r.stdout).toBe('Looks good but some kernel features are missing\nwhich, depending on your process tree, may cause\ndump or restore failure.\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^network_lock_nftables: nftables-based network locking is not available/m);
    // no soft-dirty here, but uffd-wp + PAGEMAP_SCAN tracks written pages: not a finding
    expect(r.stderr).not.toMatch(/^mem_dirty_track/m);
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
    const track = sh(`node ${kerndatBin} | node ${criuBin} check --feature mem_dirty_track`);
    expect(track).toMatchObject({ code: 0, stdout: 'mem_dirty_track is supported (uffd-wp + PAGEMAP_SCAN, no soft-dirty on this kernel)\n' });
    const bad = sh(`node ${criuBin} check --feature nope`);
    expect(bad).toMatchObject({ code: 1, stderr: 'Unknown feature nope\n' });
  });

  it('a malformed kerndat document -> one clear error line, exit 3, never "Looks good."', () => {
    const full = JSON.stringify(kerndatDoc());
    const docs = ['{"schema":"crtools-kerndat/1"}', full.slice(0, full.length / 2), JSON.stringify({ ...JSON.parse(full), has_kcmp: 'yes' })];
    // piped (each opens like a kerndat document) or named with --kerndat -
    for (const input of docs) {
      for (const cmd of [`node ${criuBin} check`, `node ${criuBin} check --kerndat -`]) {
        const r = sh(cmd, input);
        expect(r.code, `${cmd}: ${input.slice(0, 40)}`).toBe(3);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/^criu: malformed kerndat document: [^\n]+\n$/);
      }
    }
    // what is not a kerndat document at all is one only when named
    for (const input of ['garbage', '[]']) {
      const r = sh(`node ${criuBin} check --kerndat -`, input);
      expect(r).toMatchObject({ code: 3, stdout: '' });
      expect(r.stderr).toMatch(/^criu: malformed kerndat document: [^\n]+\n$/);
    }
    const file = path.join(dir, 'half.json');
    writeFileSync(file, docs[1]!);
    expect(sh(`node ${criuBin} check --kerndat ${file}`).code).toBe(3);
    expect(sh(`node ${criuBin} check --kerndat ${path.join(dir, 'absent.json')}`)).toMatchObject({ code: 3, stderr: expect.stringMatching(/^criu: cannot read kerndat document .*ENOENT\n$/) });
  });
});

describe('criu check and what stdin holds: a kerndat document is taken, nothing else is touched or waited for', () => {
  const docFile = path.join(dir, 'doc.json');
  /**
   * The time `criu check` takes with the document named outright: "at once" is within 10 s of it.
   * What these tests tell apart is an answer against a wait for input that never comes (their
   * children are killed after 20-30 s), not speed: the margin holds on a machine under load.
   */
  let reference = 0;
  const atOnce = () => reference + 10_000;
  const timed = (fn: () => { code: number | null; stdout: string; stderr: string }) => {
    const t0 = performance.now();
    const r = fn();
    return { ...r, ms: performance.now() - t0 };
  };

  it('the reference: criu check --kerndat FILE', () => {
    writeFileSync(docFile, JSON.stringify(kerndatDoc()));
    kerndatDoc(); // the cache is warm for the probing cases below
    const r = timed(() => sh(`node ${criuBin} check --kerndat ${docFile}`));
    expect(r).toMatchObject({ code: 0, stdout: 'Looks good.\n' });
    reference = r.ms;
  });

  it('criu check </dev/null answers at once', () => {
    const r = timed(() => sh(`node ${criuBin} check </dev/null`));
    expect(r).toMatchObject({ code: 0, stdout: 'Looks good.\n' });
    expect(r.ms).toBeLessThan(atOnce());
  });

  it('an idle pipe on stdin (its writer alive, silent) is not waited for', () => {
    // a FIFO opened read-write by this process: the pipe's writer is alive and never writes
    const fifo = path.join(dir, 'idle.fifo');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, constants.O_RDWR);
    try {
      const r = timed(() => {
        const p = spawnSync('node', [criuBin, 'check'], { env, encoding: 'utf8', timeout: 30_000, stdio: [fd, 'pipe', 'pipe'] });
        return { code: p.status, stdout: p.stdout, stderr: p.stderr };
      });
      expect(r).toMatchObject({ code: 0, stdout: 'Looks good.\n' });
      expect(r.ms).toBeLessThan(atOnce());
    } finally {
      closeSync(fd);
    }
  });

  it('an idle socket on stdin (a program that never writes) is not waited for', async () => {
    // Node hands a child a socket for stdio 'pipe'; this one stays open and silent
    const t0 = performance.now();
    const child = spawn('node', [criuBin, 'check'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    child.stdin.destroy();
    expect({ code, out }).toEqual({ code: 0, out: 'Looks good.\n' });
    expect(performance.now() - t0).toBeLessThan(atOnce());
  });

  it('in a `while read` loop, criu check leaves the loop its input (pipe and file)', () => {
    const lines = ['alpha', 'beta', 'gamma', 'delta'];
    const list = path.join(dir, 'list.txt');
    writeFileSync(list, lines.join('\n') + '\n');
    const loop = `while read x; do node ${criuBin} check >/dev/null || echo "check failed"; echo "got $x"; done`;
    const viaPipe = sh(`cat ${list} | ${loop}`);
    expect(viaPipe.stdout).toBe(lines.map((l) => `got ${l}\n`).join(''));
    const viaFile = sh(`${loop} < ${list}`);
    expect(viaFile.stdout).toBe(lines.map((l) => `got ${l}\n`).join(''));
  });

  it('kerndat | criu check, and criu check < FILE, take the document (a cold kerndat is waited for)', () => {
    // criu check's own cache says kcmp is missing: "Looks good." proves it judged the piped document
    const doctored = path.join(dir, 'doctored.json');
    writeFileSync(doctored, JSON.stringify({ ...kerndatDoc(), has_kcmp: false }));
    const checkDoctored = `CRTOOLS_KERNDAT_CACHE=${doctored} node ${criuBin} check`;
    expect(sh(`${checkDoctored} </dev/null`)).toMatchObject({ code: 1, stdout: '' }); // (it is used when probing)
    const piped = sh(`node ${kerndatBin} | ${checkDoctored}`);
    expect(piped).toMatchObject({ code: 0, stdout: 'Looks good.\n' });
    // probing afresh takes a while: criu check waits for its known writer
    const cold = sh(`node ${kerndatBin} --no-cache --cache-path ${path.join(dir, 'cold.json')} | ${checkDoctored}`);
    expect(cold).toMatchObject({ code: 0, stdout: 'Looks good.\n' });
    // and the other way round: the document on stdin is the doctored one
    expect(sh(`node ${criuBin} check < ${doctored}`)).toMatchObject({ code: 1, stdout: '' });
    expect(sh(`cat ${doctored} | node ${criuBin} check`).stderr).toMatch(/^kcmp: .*\nDoes not look good\.\n$/);
  });
});
