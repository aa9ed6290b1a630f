/**
 * Lazy restore: `criu restore --lazy-pages` with `criu lazy-pages` serving the missing pages from
 * the images (test/workloads/lazycheck.c checks every word of its memory, zero pages included).
 * The daemon is started by each test and ended by pid; the restored tree is killed by pid.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, NOT_CARRIED_YET } from '@crtools/inspect';
import { alive, askVerdict, criu, killTree, sleep, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { CriuClient } from '@crtools/rpc';
import { criuBin, repoRoot } from '../lib/paths.js';

interface Daemon {
  proc: ChildProcess;
  log: string;
  stderr: string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

const daemons: Daemon[] = [];
const trees: number[] = [];

afterEach(() => {
  for (const p of trees.splice(0)) killTree(p);
  for (const d of daemons.splice(0)) {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null || !d.proc.pid) continue;
    try {
      process.kill(d.proc.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
});

/** `criu lazy-pages -D dir` in the background, once its socket listens. */
export function startLazyPages(dir: string, bin = process.execPath, argv: string[] = [criuBin]): Daemon {
  const log = path.join(dir, 'lazy-pages.log');
  const stderr = path.join(dir, 'lazy-pages.stderr');
  const err = openSync(stderr, 'w');
  const proc = spawn(bin, [...argv, 'lazy-pages', '-D', dir, '-o', 'lazy-pages.log', '-v4'], { stdio: ['ignore', 'ignore', err] });
  const exited = new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
  const d = { proc, log, stderr, exited };
  daemons.push(d);
  for (let i = 0; i < 1000 && !existsSync(path.join(dir, 'lazy-pages.socket')); i++) sleep(10);
  expect(existsSync(path.join(dir, 'lazy-pages.socket'))).toBe(true);
  return d;
}

async function finished(d: Daemon, ms = 60_000): Promise<number | null> {
  return Promise.race([d.exited, new Promise<number | null>((res) => setTimeout(() => res(-1), ms))]);
}

/** Dump the workload into a fresh directory (the tree ends with the dump). */
function dumpOf(pid: number, name: string, extra: string[] = []): string {
  const dir = tmp(`lazy-${name}`);
  const d = criu(['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', ...extra]);
  expect(d.code, d.stderr).toBe(0);
  expect(waitReaped(pid)).toBe(true);
  return dir;
}

function restoreLazy(dir: string) {
  return criu(['restore', '-D', dir, '-d', '-o', 'restore.log', '--lazy-pages'], 60_000);
}

/** The daemon's summary: pages copied, zero pages, faults. */
function summary(d: Daemon): { copied: number; zeroed: number; faults: number } {
  const m = /(\d+) page\(s\) copied, (\d+) zero page\(s\), (\d+) fault\(s\)/.exec(readFileSync(d.log, 'utf8'));
  expect(m, readFileSync(d.log, 'utf8')).not.toBeNull();
  return { copied: Number(m![1]), zeroed: Number(m![2]), faults: Number(m![3]) };
}

describe('restore --lazy-pages with criu lazy-pages', () => {
  it('serves every page from the local images; the tree matches its fingerprint once complete', async () => {
    const w = startWorkload('lazycheck', ['64', 'check']);
    const print = fingerprint(w.pid);
    const dir = dumpOf(w.pid, 'local');
    const d = startLazyPages(dir);
    const r = restoreLazy(dir);
    trees.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    // the first verdict comes while pages are still arriving: faults served on demand
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    expect(await finished(d)).toBe(0);
    const s = summary(d);
    expect(s.copied).toBeGreaterThanOrEqual(64 * 256); // the 64 MiB pattern at least, from the daemon
    // restore itself filled none of the lazy pages
    const st = readFileSync(path.join(dir, 'restore.log'), 'utf8');
    expect(st).not.toMatch(/Error/);
    expect(compareFingerprints(print, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    const pids = treePids(w.pid);
    killTree(w.pid);
    for (const p of pids) expect(waitGone(p)).toBe(true);
  });

  /** lazycheck in `mode`, restored lazily and asked for its verdict at once (pages still missing) */
  async function whileLazy(mode: string, verdict: string, logged: RegExp): Promise<void> {
    const w = startWorkload('lazycheck', ['256', mode]);
    const dir = dumpOf(w.pid, mode);
    const d = startLazyPages(dir);
    const r = restoreLazy(dir);
    trees.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 60_000)).toBe(verdict);
    expect(await finished(d)).toBe(0);
    expect(readFileSync(d.log, 'utf8')).toMatch(logged);
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  }

  it('a task that forks while pages are missing: the child sees every page too', () =>
    whileLazy('fork', 'check ok bad=0 child=0', /fork, the child's userfaultfd/));

  it('a task that munmaps and mremaps while pages are missing keeps every page where it moved', () =>
    whileLazy('munmap', 'check ok bad=0 done=unmap+remap', /userfaultfd events: .*unmap/));

  it('the daemon killed mid-way: the restored tasks are killed, none runs on with missing pages', async () => {
    const w = startWorkload('lazycheck', ['256', 'check']);
    const dir = dumpOf(w.pid, 'killed');
    const d = startLazyPages(dir);
    const restoring = spawn(process.execPath, [criuBin, 'restore', '-D', dir, '-d', '-o', 'restore.log', '--lazy-pages'], { stdio: 'ignore' });
    const restored = new Promise<number | null>((res) => restoring.on('exit', (c) => res(c)));
    trees.push(w.pid);
    // as soon as the daemon serves the tasks (it holds their userfaultfds, and so does its watchdog)
    for (let i = 0; i < 3000 && !/Serving \d+ task\(s\)/.test(existsSync(d.log) ? readFileSync(d.log, 'utf8') : ''); i++) await new Promise((r) => setTimeout(r, 2));
    process.kill(d.proc.pid!, 'SIGKILL');
    await restored;
    expect(readFileSync(d.log, 'utf8')).not.toMatch(/task\(s\) complete/);
    let gone = false;
    for (let i = 0; i < 500 && !gone; i++) {
      gone = !alive(w.pid);
      if (!gone) await new Promise((r) => setTimeout(r, 20));
    }
    expect(gone).toBe(true);
    const lines = readFileSync(d.stderr, 'utf8').split('\n').filter((l) => /lazy-pages daemon ended with pages still missing/.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/restored task\(s\) killed/);
  });

  it('without a daemon listening: one clear error, no task left', () => {
    const w = startWorkload('lazycheck', ['8', 'check']);
    const dir = dumpOf(w.pid, 'nodaemon');
    const r = restoreLazy(dir);
    expect(r.code).toBe(1);
    const errs = r.stderr.split('\n').filter(Boolean);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/no lazy-pages daemon listens on .*lazy-pages\.socket/);
    expect(alive(w.pid)).toBe(false);
  });

  it('a kernel whose userfaultfd lacks the fork/remap/remove/unmap events: restore --lazy-pages and lazy-pages are refused (exit 4) before anything is made, on the command line and over RPC', async () => {
    // this kernel's kerndat document with the userfaultfd features taken away
    const dir = tmp('lazy-nokernel');
    const doc = JSON.parse(execFileSync(process.execPath, [path.join(repoRoot, 'packages/kerndat/bin/kerndat.js')], { encoding: 'utf8' })) as Record<string, unknown>;
    doc['uffd_features'] = '0x0';
    doc['uffd_feature_names'] = [];
    const cache = path.join(dir, 'kerndat.json');
    writeFileSync(cache, JSON.stringify(doc));
    const env = { CRTOOLS_KERNDAT_CACHE: cache };
    const refused = /^criu: --lazy-pages is not supported by this kernel: .*userfaultfd lacks the fork\/remap\/remove\/unmap events/;
    const r = criu(['restore', '-D', dir, '-d', '--lazy-pages'], 30_000, env);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(refused);
    const l = criu(['lazy-pages', '-D', dir], 30_000, env);
    expect(l.code).toBe(4);
    expect(l.stderr).toMatch(refused);
    // the same engine answers RPC: the swrk worker inherits the environment
    const saved = process.env.CRTOOLS_KERNDAT_CACHE;
    process.env.CRTOOLS_KERNDAT_CACHE = cache;
    try {
      const c = new CriuClient({ criu: criuBin });
      await expect(c.restore({ imagesDir: dir, lazy_pages: true })).rejects.toThrow(/^RESTORE failed: .*--lazy-pages is not supported by this kernel: uffd-noncoop/);
    } finally {
      if (saved === undefined) delete process.env.CRTOOLS_KERNDAT_CACHE;
      else process.env.CRTOOLS_KERNDAT_CACHE = saved;
    }
  });

  it('what is not carried yet is refused by name: dump --lazy-pages, lazy-pages --page-server', () => {
    const dir = tmp('lazy-refused');
    const d = criu(['dump', '-t', '999999', '-D', dir, '--lazy-pages']);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(/--lazy-pages is not supported yet/);
    const l = criu(['lazy-pages', '-D', dir, '--page-server', '--address', '127.0.0.1', '--port', '1']);
    expect(l.code).toBe(4);
    expect(l.stderr).toMatch(/--page-server is not supported yet|--address is not supported yet/);
  });
});
