/**
 * Lazy restore: `criu restore --lazy-pages` with `criu lazy-pages` serving the missing pages from
 * the images (test/workloads/lazycheck.c checks every word of its memory, zero pages included).
 * The daemon is started by each test and ended by pid; the restored tree is killed by pid.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, openSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET } from '@crtools/inspect';
import { alive, askVerdict, critDecode, criu, haveCrit, killTree, killTreeAndWait, ourCritDecode, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { CriuClient } from '@crtools/rpc';
import { criuBin, repoRoot } from '../lib/paths.js';

interface Daemon {
  proc: ChildProcess;
  log: string;
  stderr: string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

/** pagemap entry flags (CRIU's images/pagemap.proto) */
const PE_LAZY = 2;
const PE_PRESENT = 4;

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

/** `criu lazy-pages -D dir [extra]` in the background, once its socket listens. */
export function startLazyPages(dir: string, bin = process.execPath, argv: string[] = [criuBin], extra: string[] = []): Daemon {
  const log = path.join(dir, 'lazy-pages.log');
  const stderr = path.join(dir, 'lazy-pages.stderr');
  const err = openSync(stderr, 'w');
  const proc = spawn(bin, [...argv, 'lazy-pages', '-D', dir, '-o', 'lazy-pages.log', '-v4', ...extra], { stdio: ['ignore', 'ignore', err] });
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
  return criu(['restore', '-D', dir, '-d', '-o', 'restore.log', '-v4', '--lazy-pages'], 60_000);
}

/** The daemon's summary: pages copied, zero pages, faults. */
function summary(d: Daemon): { copied: number; zeroed: number; faults: number } {
  const m = /(\d+) page\(s\) copied, (\d+) zero page\(s\), (\d+) fault\(s\)/.exec(readFileSync(d.log, 'utf8'));
  expect(m, readFileSync(d.log, 'utf8')).not.toBeNull();
  return { copied: Number(m![1]), zeroed: Number(m![2]), faults: Number(m![3]) };
}

/**
 * `criu restore --lazy-pages` of dir in the background; once the daemon's log says `when`, the
 * process `victim` (the daemon, or the dumping side) is killed; resolves when the restore ended.
 */
async function restoreThenKill(dir: string, d: Daemon, pid: number | undefined, when: RegExp, victim: number, extra: string[] = []): Promise<number | null> {
  const restoring = spawn(process.execPath, [criuBin, 'restore', '-D', dir, '-d', '-o', 'restore.log', '--lazy-pages', ...extra], { stdio: 'ignore' });
  const restored = new Promise<number | null>((res) => restoring.on('exit', (c) => res(c)));
  if (pid !== undefined) trees.push(pid);
  for (let i = 0; i < 3000 && !when.test(existsSync(d.log) ? readFileSync(d.log, 'utf8') : ''); i++) await new Promise((r) => setTimeout(r, 2));
  process.kill(victim, 'SIGKILL');
  return restored;
}

/**
 * A lazy restore whose daemon failed mid-way (restore exit code `code`, the root's pid in
 * `pidfile` if it got that far): none of its tasks is left. Either the restore saw the daemon go
 * (it fails, its tasks killed) or it had finished, and the daemon's watchdog killed them.
 */
async function restoredTasksGone(d: Daemon, code: number | null, pidfile: string): Promise<void> {
  const root = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8')) : undefined;
  if (code === 0) {
    await killedByWatchdog(d, root!);
    return;
  }
  // (the restore saw the daemon go, or the watchdog killed its tasks before they were resumed)
  expect(readFileSync(path.join(path.dirname(pidfile), 'restore.log'), 'utf8')).toMatch(/Error \(restore\): .*(the lazy-pages daemon went away|resuming the tasks failed: .*ESRCH)/);
  if (root !== undefined) for (let i = 0; i < 500 && alive(root); i++) await new Promise((r) => setTimeout(r, 20));
  if (root !== undefined) expect(alive(root)).toBe(false);
}

/** The daemon did not complete the tasks and its watchdog killed them (pid gone), saying so in one line. */
async function killedByWatchdog(d: Daemon, pid: number): Promise<void> {
    expect(readFileSync(d.log, 'utf8')).not.toMatch(/task\(s\) complete/);
    let gone = false;
    for (let i = 0; i < 500 && !gone; i++) {
      gone = !alive(pid);
      if (!gone) await new Promise((r) => setTimeout(r, 20));
    }
    expect(gone).toBe(true);
    const lines = readFileSync(d.stderr, 'utf8').split('\n').filter((l) => /lazy-pages daemon ended with pages still missing/.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/restored task\(s\) killed/);
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
    // the pagemap was walked once, by the daemon before it listened: the restore took its split (left beside the socket, gone once the daemon ended)
    expect(readFileSync(d.log, 'utf8')).toMatch(/lazy splits of 1 task\(s\) written for the restore/);
    expect(st).toMatch(/restore plan: pid \d+: pagemap of \d+ entries split by the lazy-pages daemon: \d+ runs and \d+ lazy range\(s\)/);
    expect(existsSync(path.join(dir, 'lazy-pages.split'))).toBe(false);
    expect(compareFingerprints(print, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    killTreeAndWait(w.pid);
  });

  it('a pagemap changed since the daemon read it (its time set again): the restore walks it itself, and every word is right', async () => {
    const w = startWorkload('lazycheck', ['16', 'check']);
    const dir = dumpOf(w.pid, 'touched');
    const d = startLazyPages(dir);
    const pm = readdirSync(dir).find((f) => /^pagemap-\d+\.img$/.test(f))!;
    utimesSync(path.join(dir, pm), new Date(), new Date());
    const r = restoreLazy(dir);
    trees.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    expect(await finished(d)).toBe(0);
    const st = readFileSync(path.join(dir, 'restore.log'), 'utf8');
    expect(st).not.toMatch(/split by the lazy-pages daemon/);
    expect(st).toMatch(/restore plan: pid \d+: pagemap of \d+ entries read in/);
    killTreeAndWait(w.pid);
  });

  it('with --auto-dedup: the restore punches out only the pages it wrote itself, not the lazy ones the daemon is still to serve (every word intact)', async () => {
    const w = startWorkload('lazycheck', ['64', 'check']);
    const dir = dumpOf(w.pid, 'dedup');
    const d = startLazyPages(dir);
    const r = criu(['restore', '-D', dir, '-d', '-o', 'restore.log', '-v4', '--lazy-pages', '--auto-dedup'], 60_000);
    trees.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'restore.log'), 'utf8')).toMatch(/auto-dedup: [1-9]\d* bytes of pages punched/);
    expect(await finished(d)).toBe(0);
    expect(summary(d).copied).toBeGreaterThanOrEqual(64 * 256);
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
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
    await restoreThenKill(dir, d, w.pid, /Serving \d+ task\(s\)/, d.proc.pid!);
    await killedByWatchdog(d, w.pid);
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
});

/** A TCP port free on loopback now (the kernel's pick, let go again). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

interface LazyDump extends Daemon {
  dir: string;
  port: number;
}

/**
 * `criu dump --lazy-pages --address 127.0.0.1 --port P [extra]` of pid in the background;
 * resolves once its page server is started (every image written and placed, the tree frozen).
 */
async function startLazyDump(pid: number, name: string, extra: string[] = [], port?: number): Promise<LazyDump> {
  const dir = tmp(`lazyps-${name}`);
  port ??= await freePort();
  const log = path.join(dir, 'dump.log');
  const stderr = path.join(dir, 'dump.stderr');
  const err = openSync(stderr, 'w');
  const proc = spawn(process.execPath, [criuBin, 'dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4', '--lazy-pages', '--address', '127.0.0.1', '--port', String(port), ...extra], { stdio: ['ignore', 'ignore', err] });
  const exited = new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
  const d = { proc, dir, log, stderr, port, exited };
  daemons.push(d);
  let up = false;
  for (let i = 0; i < 6000 && !up && proc.exitCode === null; i++) {
    up = existsSync(log) && /Starting lazy pages server/.test(readFileSync(log, 'utf8'));
    if (!up) await new Promise((r) => setTimeout(r, 10));
  }
  expect(up, existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-5).join('\n') : 'no dump.log').toBe(true);
  return d;
}

/** The pid tracing pid (TracerPid of its status), 0 when none; -1 when it is gone. */
function tracerOf(pid: number): number {
  try {
    return Number(/^TracerPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  } catch {
    return -1;
  }
}

/** The images of dir carried to a directory of their own, as to another host (no logs, no stats; what `to` holds already stays). */
function carry(dir: string, name: string, to = tmp(`lazyps-${name}-dst`)): string {
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.img') || existsSync(path.join(to, f))) continue;
    copyFileSync(path.join(dir, f), path.join(to, f));
  }
  return to;
}

/**
 * What a lazy dump left in its directory: its pagemaps flag the lazy pages PE_LAZY without
 * PE_PRESENT (no data of theirs in any pages image), and the pages images hold exactly the
 * pages flagged present. Returns the lazy pages of task id (its pid in the images).
 */
function lazyImages(dir: string, id: number, statsDir = dir): number {
  // (Debian's crit decodes it, without the nr_pages of CRIU 4.x: counted from our crit's decode)
  expect(critDecode(path.join(dir, `pagemap-${id}.img`)).magic).toBe('PAGEMAP');
  const pm = ourCritDecode(path.join(dir, `pagemap-${id}.img`));
  let lazy = 0;
  let present = 0;
  for (const e of pm.entries.slice(1) as { flags: number; nr_pages: number }[]) {
    if (e.flags & PE_LAZY) {
      expect(e.flags & PE_PRESENT).toBe(0);
      lazy += Number(e.nr_pages);
    } else if (e.flags & PE_PRESENT) present += Number(e.nr_pages);
  }
  const pages = readdirSync(dir).filter((f) => /^pages-\d+\.img$/.test(f)).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
  expect(pages).toBe(present * 4096);
  const st = critDecode(path.join(statsDir, 'stats-dump'));
  expect(Number(st.entries[0].dump.pages_lazy)).toBe(lazy);
  return lazy;
}

/** `criu restore --lazy-pages` of dir: the restored root's pid (the init of a new pid namespace, from --pidfile). */
function restoreLazyNs(dir: string, bin = process.execPath, argv: string[] = [criuBin]): number {
  const pidfile = path.join(dir, 'root.pid');
  const r = spawnSync(bin, [...argv, 'restore', '-D', dir, '-d', '-o', 'restore.log', '-v4', '--lazy-pages', '--pidfile', pidfile], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const root = Number(readFileSync(pidfile, 'utf8'));
  trees.push(root);
  return root;
}

/**
 * The lazy migration of workload w (lazycheck in a pid namespace of its own: the dumped tree
 * still holds its pids while the restored one runs): dump --lazy-pages, its images carried to
 * another directory (`dumped` looks at the dump's first), lazy-pages --page-server and restore
 * --lazy-pages there. The dumped tree waits frozen (traced by the dump) until the daemon has every
 * page, then is killed; the restored one gives the verdict; the daemon and the dump end with 0.
 */
async function migrateLazily(w: { pid: number; state: string }, name: string, verdict: string, dumped?: (dir: string) => void): Promise<{ dump: LazyDump; d: Daemon; root: number }> {
  const dump = await startLazyDump(w.pid, name);
  expect(tracerOf(w.pid)).toBe(dump.proc.pid);
  dumped?.(dump.dir);
  const dst = carry(dump.dir, name);
  const d = startLazyPages(dst, process.execPath, [criuBin], ['--page-server', '--address', '127.0.0.1', '--port', String(dump.port)]);
  const root = restoreLazyNs(dst);
  expect(root).not.toBe(w.pid);
  expect(askVerdict(w.state, root, 60_000)).toBe(verdict);
  expect(await finished(d), readFileSync(d.stderr, 'utf8')).toBe(0);
  expect(await finished(dump), readFileSync(dump.log, 'utf8').split('\n').slice(-5).join('\n')).toBe(0);
  expect(readFileSync(dump.log, 'utf8')).toMatch(/Lazy pages transfer finished successfully/);
  // every page taken: the dumped tree is killed only now
  expect(waitReaped(w.pid)).toBe(true);
  return { dump, d, root };
}

function killAndWait(root: number): void {
  killTreeAndWait(root);
}

describe('dump --lazy-pages served from the frozen tree to lazy-pages --page-server (two directories, over loopback)', () => {
  it.skipIf(!haveCrit)('the lazy pages never reach a file on the dumping side; the restored workload checks every word; the dumped tree is killed once the daemon has them all', async () => {
    const w = startWorkload('lazycheck', ['64', 'ns-check']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    // (a first verdict: its stdio makes the heap, which the restored one has when it answers)
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    const print = fingerprint(w.pid);
    let lazy = 0;
    const { dump, d, root } = await migrateLazily(w, 'ours', 'check ok bad=0', (dir) => {
      // (the tree's pids as they are inside its namespace: the init is 1)
      lazy = lazyImages(dir, 1);
      expect(lazy).toBeGreaterThanOrEqual(64 * 256);
    });
    const s = summary(d);
    expect(s.copied).toBeGreaterThanOrEqual(64 * 256);
    expect(readFileSync(d.log, 'utf8')).toMatch(/Disconnect from the page server/);
    expect(readFileSync(dump.log, 'utf8')).toMatch(new RegExp(`Lazy pages transfer finished successfully \\(\\d+ of ${lazy} lazy page`));
    const diff = compareFingerprints(insideView(print), insideView(fingerprint(root)), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET]);
    expect(diff, JSON.stringify(diff)).toEqual([]);
    // the lazy pages were never written on the dumping side, nor carried: still no pages file holds them
    expect(lazyImages(dump.dir, 1)).toBe(lazy);
    killAndWait(root);
  });

  it('a task that forks while pages are missing: the child\'s pages come from the page server too', async () => {
    const w = startWorkload('lazycheck', ['64', 'ns-fork']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    const { d, root } = await migrateLazily(w, 'fork', 'check ok bad=0 child=0');
    expect(readFileSync(d.log, 'utf8')).toMatch(/fork, the child's userfaultfd/);
    killAndWait(root);
  });

  it('the lazy-pages daemon killed mid-way: the dump fails with one line, the dumped tree runs on as it was, its images are gone; the restored tasks are killed', async () => {
    const w = startWorkload('lazycheck', ['256', 'ns-check']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    const dump = await startLazyDump(w.pid, 'daemon-killed');
    // the pages are read from the frozen tree when asked for, not kept: the dump's memory does not
    // hold them (its peak RSS stays below the 264 MiB of lazy pages)
    let peak = 0;
    const sample = setInterval(() => {
      try {
        peak = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${dump.proc.pid}/status`, 'utf8'))![1]) * 1024;
      } catch {
        /* gone */
      }
    }, 10);
    const dst = carry(dump.dir, 'daemon-killed');
    const d = startLazyPages(dst, process.execPath, [criuBin], ['--page-server', '--address', '127.0.0.1', '--port', String(dump.port)]);
    const pidfile = path.join(dst, 'root.pid');
    const restored = await restoreThenKill(dst, d, undefined, /Serving \d+ task\(s\)/, d.proc.pid!, ['--pidfile', pidfile]);
    expect(await finished(dump)).toBe(1);
    clearInterval(sample);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(256 << 20);
    const lines = readFileSync(dump.stderr, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^criu: the lazy(-pages daemon went away before it had every page| pages transfer failed: .*) \(\d+ of \d+ lazy page\(s\) sent\)$/);
    expect(readFileSync(dump.log, 'utf8')).toMatch(/Lazy pages transfer FAILED/);
    // as any failed dump: nothing left in the images directory, the tree resumed as it was
    expect(readdirSync(dump.dir).filter((f) => f.endsWith('.img'))).toEqual([]);
    expect(tracerOf(w.pid)).toBe(0);
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    await restoredTasksGone(d, restored, pidfile);
    killAndWait(w.pid);
  });

  it('the dumping side killed mid-way: the daemon fails (one line), the restored tasks are killed; the dumped tree, its tracer gone, runs on', async () => {
    const w = startWorkload('lazycheck', ['256', 'ns-check']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    const dump = await startLazyDump(w.pid, 'killed');
    const dst = carry(dump.dir, 'killed');
    const d = startLazyPages(dst, process.execPath, [criuBin], ['--page-server', '--address', '127.0.0.1', '--port', String(dump.port)]);
    const pidfile = path.join(dst, 'root.pid');
    // once the daemon is connected to the page server and serves (256 MiB: the transfer has just begun)
    const restored = await restoreThenKill(dst, d, undefined, /Serving \d+ task\(s\)/, dump.proc.pid!, ['--pidfile', pidfile]);
    expect(await finished(d)).not.toBe(0);
    // the daemon says why, in one line: the page server went away
    expect(readFileSync(d.stderr, 'utf8')).toMatch(/^criu: lazy-pages: the page server at 127\.0\.0\.1:\d+ (is gone: .*ECONNRESET|closed the connection)/m);
    await restoredTasksGone(d, restored, pidfile);
    expect(alive(dump.proc.pid!)).toBe(false);
    expect(alive(d.proc.pid!)).toBe(false);
    // (the kernel lets go of the tracees of a tracer that dies: the tree was cured before it was served)
    for (let i = 0; i < 100 && tracerOf(w.pid) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(tracerOf(w.pid)).toBe(0);
    expect(askVerdict(w.state, w.pid, 30_000)).toBe('check ok bad=0');
    killAndWait(w.pid);
  });

  it('with --page-server: the pages that are not lazy go to the destination\'s page server first, the lazy ones are then served on the same address and port', async () => {
    const w = startWorkload('lazycheck', ['64', 'ns-check']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    const dst = tmp('lazyps-viaps-dst');
    const port = await freePort();
    // the destination's page server, detached once listening (one session, then it exits)
    const ps = criu(['page-server', '-D', dst, '--address', '127.0.0.1', '--port', String(port), '-d', '--pidfile', 'ps.pid', '-o', 'ps.log', '-v4']);
    expect(ps.code, ps.stderr).toBe(0);
    const psPid = Number(readFileSync(path.join(dst, 'ps.pid'), 'utf8'));
    daemons.push({ proc: { pid: psPid, exitCode: null, signalCode: null } as unknown as ChildProcess, log: '', stderr: '', exited: Promise.resolve(null) });
    const dump = await startLazyDump(w.pid, 'viaps', ['--page-server'], port);
    // the pagemap and the pages that are not lazy are at the destination only
    expect(readdirSync(dump.dir).filter((f) => /^(pagemap|pages)-/.test(f))).toEqual([]);
    expect(waitGone(psPid)).toBe(true);
    const lazy = lazyImages(dst, 1, dump.dir);
    expect(lazy).toBeGreaterThanOrEqual(64 * 256);
    expect(tracerOf(w.pid)).toBe(dump.proc.pid);
    carry(dump.dir, 'viaps', dst);
    const d = startLazyPages(dst, process.execPath, [criuBin], ['--page-server', '--address', '127.0.0.1', '--port', String(port)]);
    const root = restoreLazyNs(dst);
    expect(askVerdict(w.state, root, 60_000)).toBe('check ok bad=0');
    expect(await finished(d), readFileSync(d.stderr, 'utf8')).toBe(0);
    expect(await finished(dump), readFileSync(dump.log, 'utf8').split('\n').slice(-5).join('\n')).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    killAndWait(root);
  });

  it('dump --lazy-pages needs the port to serve on, before the tree is touched', () => {
    const w = startWorkload('lazycheck', ['8', 'check']);
    trees.push(w.pid);
    const dir = tmp('lazyps-usage');
    const a = criu(['dump', '-t', String(w.pid), '-D', dir, '--lazy-pages']);
    expect(a.code).toBe(1); // (as a missing --address or --port of --page-server)
    expect(a.stderr).toMatch(/--lazy-pages needs --port/);
    const b = criu(['dump', '-t', String(w.pid), '-D', dir, '--lazy-pages', '--page-server', '--port', '1']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/--page-server needs --address and --port/);
    const c = criu(['dump', '-t', String(w.pid), '-D', dir, '--lazy-pages', '--port', '1', '--tls']);
    expect(c.code).toBe(4);
    expect(c.stderr).toMatch(/^criu: --tls: crtools does not do TLS on page-server connections/);
    expect(alive(w.pid)).toBe(true);
    expect(tracerOf(w.pid)).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok bad=0');
  });

  it('lazy_pages on an RPC DUMP: ps.port is where the lazy pages are served; the answer comes once the daemon has them all', async () => {
    const w = startWorkload('lazycheck', ['32', 'ns-check']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    const dir = tmp('lazyps-rpc');
    const port = await freePort();
    const c = new CriuClient({ criu: criuBin });
    const dumped = c.dump({ imagesDir: dir, pid: w.pid, lazy_pages: true, ps: { port, address: '127.0.0.1' }, log_file: 'dump.log', log_level: 4 });
    let up = false;
    for (let i = 0; i < 6000 && !up; i++) {
      up = existsSync(path.join(dir, 'dump.log')) && /Starting lazy pages server/.test(readFileSync(path.join(dir, 'dump.log'), 'utf8'));
      if (!up) await new Promise((r) => setTimeout(r, 10));
    }
    expect(up).toBe(true);
    expect(tracerOf(w.pid)).toBeGreaterThan(0);
    const dst = carry(dir, 'rpc');
    const d = startLazyPages(dst, process.execPath, [criuBin], ['--page-server', '--address', '127.0.0.1', '--port', String(port)]);
    const root = restoreLazyNs(dst);
    expect(askVerdict(w.state, root, 60_000)).toBe('check ok bad=0');
    expect(await finished(d), readFileSync(d.stderr, 'utf8')).toBe(0);
    await expect(dumped).resolves.toEqual({ restored: false });
    expect(waitReaped(w.pid)).toBe(true);
    killAndWait(root);
    // lazy_pages without ps.port: refused before the tree is touched
    const w2 = startWorkload('lazycheck', ['8', 'check']);
    trees.push(w2.pid);
    await expect(c.dump({ imagesDir: tmp('lazyps-rpc-noport'), pid: w2.pid, lazy_pages: true })).rejects.toThrow(/lazy_pages needs ps\.port/);
    expect(tracerOf(w2.pid)).toBe(0);
  });
});

// a real CRIU 4+ (crtools' own criu also says "Version: 4.2", with a "crtools:" line after it)
const CRIU = [process.env.CRIU, '/tmp/criu-4.2/criu/criu', 'criu'].find((c) => {
  const v = c ? (spawnSync(c, ['--version'], { encoding: 'utf8' }).stdout ?? '') : '';
  return /Version: ([4-9]|\d\d)\./.test(v) && !/^crtools:/m.test(v);
});

/**
 * CRIU 4.2 on the other side, both ways: each dump --lazy-pages serves from the frozen tree, so
 * the workload is the init of a pid namespace of its own (the restore on this host takes none of
 * the pids the dumped tree still holds). The other way round cannot be run with CRIU 4.2 on this
 * kernel: its `dump --lazy-pages` (tried with lazycheck ns-check: it serves, frozen) fails the
 * first PS_IOV_GET of our lazy-pages daemon (page-pipe.c:424 "splice: -1: Bad file descriptor",
 * "Lazy pages transfer FAILED", its tree resumed; our daemon fails with one line), as its
 * `page-server --lazy-pages` (serving from images) does.
 */
describe.skipIf(!CRIU)(`lazy pages over the page server with CRIU 4.2 (${CRIU ?? 'no CRIU 4+ binary here'})`, () => {
  it('our dump --lazy-pages served to CRIU\'s lazy-pages --page-server and CRIU\'s restore --lazy-pages', async () => {
    const w = startWorkload('lazycheck', ['32', 'ns-check']);
    trees.push(w.pid); // (killed by pid after the test should it fail before its end)
    const dump = await startLazyDump(w.pid, 'to-criu');
    const dst = carry(dump.dir, 'to-criu');
    const d = startLazyPages(dst, CRIU!, [], ['--page-server', '--address', '127.0.0.1', '--port', String(dump.port)]);
    const root = restoreLazyNs(dst, CRIU!, []);
    expect(askVerdict(w.state, root, 60_000)).toBe('check ok bad=0');
    expect(await finished(d)).toBe(0);
    expect(await finished(dump), readFileSync(dump.log, 'utf8').split('\n').slice(-5).join('\n')).toBe(0);
    const m = /UFFD transferred pages: \((\d+)\/(\d+)\)/.exec(readFileSync(d.log, 'utf8'));
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![1])).toBeGreaterThanOrEqual(32 * 256);
    expect(readFileSync(dump.log, 'utf8')).toMatch(/Lazy pages transfer finished successfully/);
    expect(waitReaped(w.pid)).toBe(true);
    killAndWait(root);
  });
});
