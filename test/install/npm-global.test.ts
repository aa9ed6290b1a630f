/**
 * The cli package as a user installs it: every workspace package packed (`pnpm pack`, which
 * turns workspace:* into versions), served as if published from a registry on 127.0.0.1, and
 * `npm install -g @crtools/cli` into a scratch prefix. The commands npm links there must start
 * through npm's own bin links (a shebang npm cannot carry broke them once), build their native
 * parts on install, and checkpoint and restore a live process.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { critBin, fixturesDir, repoRoot } from '../lib/paths.js';
import { startScratchRegistry, type ScratchRegistry } from '../lib/scratch-registry.js';
import { killAllStarted, startWorkload, tmp, waitReaped } from '../dump/helpers.js';

const run = promisify(execFile);
const work = tmp('npm-global');
const prefix = path.join(work, 'prefix');
const packs = path.join(work, 'packs');
let registry: ScratchRegistry | undefined;
const bin = (name: string) => path.join(prefix, 'bin', name);
const cmd = (name: string, args: string[], timeout = 60_000) => spawnSync(bin(name), args, { encoding: 'utf8', timeout });

beforeAll(async () => {
  mkdirSync(packs);
  const pkgs = readdirSync(path.join(repoRoot, 'packages'));
  // two at a time: pnpm's start-up is most of each pack, and the machine has two CPUs
  for (let i = 0; i < pkgs.length; i += 2) {
    await Promise.all(pkgs.slice(i, i + 2).map((p) => run('pnpm', ['pack', '--pack-destination', packs], { cwd: path.join(repoRoot, 'packages', p) })));
  }
  registry = await startScratchRegistry(packs);
  // (async: the registry answers from this process while npm runs)
  await run('npm', ['install', '--global', '--prefix', prefix, `--@crtools:registry=${registry.url}`,
    '--allow-scripts=@crtools/kerndat,@crtools/parasite,@crtools/restorer,@crtools/sys', '--no-audit', '--no-fund', '@crtools/cli'],
    // JOBS: node-gyp compiles each native part's sources on every CPU
    { timeout: 600_000, env: { ...process.env, JOBS: 'max' } });
}, 660_000);

afterAll(async () => {
  killAllStarted();
  await registry?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('pnpm exec criu / crit from the repository root (the README\'s way)', () => {
  it('start through pnpm\'s bin shims', () => {
    const v = spawnSync('pnpm', ['exec', 'criu', '--version'], { cwd: repoRoot, encoding: 'utf8' });
    expect(v.stderr).toBe('');
    expect(v).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Version: 4\.2\ncrtools: /) });
    const h = spawnSync('pnpm', ['exec', 'crit', '--help'], { cwd: repoRoot, encoding: 'utf8' });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toContain('crit decode|encode|info|x|show');
  });
});

describe('npm install -g @crtools/cli (packed from this tree) into a scratch prefix', () => {
  it('took @crtools/* from the packed tarballs and linked criu and crit', () => {
    expect(registry!.asked).toEqual(expect.arrayContaining(['@crtools/cli', '@crtools/common', '@crtools/restorer', '@crtools/parasite']));
    expect(existsSync(bin('criu')) && existsSync(bin('crit'))).toBe(true);
  });

  it('criu --version and crit --help start through npm\'s links', () => {
    const v = cmd('criu', ['--version']);
    expect(v.stderr).toBe('');
    expect(v).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Version: 4\.2\ncrtools: \d+\.\d+\.\d+\n$/) });
    const h = cmd('crit', ['--help']);
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/USAGE.*crit decode\|encode\|info\|x\|show/);
  });

  it('criu check runs its native probes; crit decodes a CRIU 4.2 image as the tree\'s crit does', () => {
    const c = cmd('criu', ['check', '--no-cache', '--kerndat', '/dev/null']);
    expect(c.status, c.stderr).toBe(3); // an empty document named outright is malformed
    const probe = cmd('criu', ['check', '--no-cache'], 120_000);
    expect(probe).toMatchObject({ status: 0, stdout: 'Looks good.\n' });
    const img = path.join(fixturesDir, 'sleep', 'pstree.img');
    const ours = spawnSync(process.execPath, [critBin, 'decode', '-i', img], { encoding: 'utf8' });
    const installed = cmd('crit', ['decode', '-i', img]);
    expect(installed.status, installed.stderr).toBe(0);
    expect(installed.stdout).toBe(ours.stdout);
  });

  it('the installed criu checkpoints a live process and restores it (its own verdict afterwards)', () => {
    const w = startWorkload('pattern', ['8']);
    const dir = tmp('npm-global-img');
    const d = cmd('criu', ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4'], 120_000);
    expect(d.status, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = cmd('criu', ['restore', '-D', dir, '-d', '-o', 'restore.log', '-v4'], 120_000);
    expect(r.status, r.stderr).toBe(0);
    expect(w.check(20_000)).toBe('check ok bad=0');
    w.kill();
  });
});
