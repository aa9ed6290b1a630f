/**
 * Acceptance (issue 17): Debian's podman 4.3 checkpoints and restores a container with crtools as
 * its criu (podman → runc `--criu <crtools' criu>` → `criu swrk`). A busybox container counting
 * in a file: `podman container checkpoint` / `restore` (twice), then `checkpoint --export` of an
 * archive, the container removed, `restore --import` of it; each time the counter goes on from
 * where it stopped. `crit x` reads the exported archive. With CRIU= naming CRIU 4.2, a checkpoint
 * written by CRIU is restored by crtools and the other way round.
 *
 * podman runs as this sandbox lets it: its own storage (vfs) and run root under a temporary
 * directory, cgroupfs, events to a file, runc, and limits it can keep (`--ulimit`). Skipped only
 * when podman, runc or a static busybox is missing (scripts/setup.sh installs them). Containers are
 * removed with `podman rm -f`; what is left is killed by pid (container and conmon).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { criuBin, critBin, repoRoot } from '../lib/paths.js';
import { alive, killTree, sleep, waitGone } from '../dump/helpers.js';
import { BUSYBOX, COUNTING_LOOP, lastCount, which } from './containers.js';

const PODMAN = which('podman');
const RUNC = which('runc');
const missing = [!PODMAN && 'podman (Debian package podman)', !RUNC && 'runc', !BUSYBOX && 'a static busybox (busybox-static)'].filter(Boolean).join(' and ');
const CRIU = process.env.CRIU && existsSync(process.env.CRIU) ? process.env.CRIU : undefined;

// (a short name: podman refuses a runroot longer than 50 characters, and the run's own TMPDIR,
// test/lib/global-setup.ts, is one level deeper than /tmp)
const work = missing ? '' : mkdtempSync(path.join(tmpdir(), 'pm-'));
const image = 'localhost/crtools-counter:latest';
const pids = new Set<number>();
const names = new Set<string>();

/** podman on our own storage, driving runc with the given criu (crtools' by default). */
function podman(args: string[], criu = criuBin) {
  const global = [
    '--root', path.join(work, 'storage'), '--runroot', path.join(work, 'run'), '--tmpdir', path.join(work, 'tmp'),
    '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', RUNC!,
    '--runtime-flag', `criu=${criu}`,
  ];
  const r = spawnSync(PODMAN!, [...global, ...args], { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function ok(r: ReturnType<typeof podman>, what: string): string {
  expect(r.status, `podman ${what}: ${r.stderr}${r.error ?? ''}`).toBe(0);
  return r.stdout.trim();
}

/** The container's state (podman inspect): running or not, its pid and conmon's (kept for the cleanup). */
function inspect(name: string): { running: boolean; pid: number } {
  const [running, pid, conmon] = ok(podman(['inspect', '--format', '{{.State.Running}} {{.State.Pid}} {{.State.ConmonPid}}', name]), `inspect ${name}`).split(' ');
  for (const p of [Number(pid), Number(conmon)]) if (p > 0) pids.add(p);
  return { running: running === 'true', pid: Number(pid) };
}

/** The container's counter, read through its root (retried for 10 s while the file has no line yet). */
function count(name: string): number {
  const { pid } = inspect(name);
  for (let i = 0; i < 500; i++) {
    const f = `/proc/${pid}/root/tmp/count`;
    const n = lastCount(existsSync(f) ? readFileSync(f, 'utf8') : '');
    if (n !== undefined) return n;
    sleep(20);
  }
  throw new Error(`no counter in ${name}`);
}

/** Waits until the counter reads at least n (within 30 s), and returns the reading. */
function countTo(name: string, n: number): number {
  const end = Date.now() + 30_000;
  let c = count(name);
  while (c < n && Date.now() < end) {
    sleep(100);
    c = count(name);
  }
  expect(c).toBeGreaterThanOrEqual(n);
  return c;
}

/**
 * After a restore: the counter goes on from where it stopped (`before`, read just before the
 * checkpoint): not from 1, as a container started anew would, and it still advances.
 */
function goesOnFrom(name: string, before: number): void {
  expect(inspect(name).running).toBe(true);
  const first = count(name);
  expect(first).toBeGreaterThanOrEqual(before);
  countTo(name, first + 3);
}

function run(name: string, args = COUNTING_LOOP): void {
  names.add(name);
  ok(podman(['run', '-d', '--name', name, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', image, ...args]), `run ${name}`);
  expect(inspect(name).running).toBe(true);
  // far enough from 1 that a container started anew could not pass for the restored one
  countTo(name, 30);
}

/** Checkpoint (the container stops) with one criu, restore with another; the counter goes on. */
function cycle(name: string, dumpWith = criuBin, restoreWith = criuBin): void {
  const before = count(name);
  ok(podman(['container', 'checkpoint', name], dumpWith), `container checkpoint ${name}`);
  expect(inspect(name).running).toBe(false);
  ok(podman(['container', 'restore', name], restoreWith), `container restore ${name}`);
  goesOnFrom(name, before);
}

afterAll(() => {
  if (!work) return;
  for (const n of names) podman(['rm', '-f', '-t', '0', n]);
  for (const pid of pids) {
    if (alive(pid)) killTree(pid);
    waitGone(pid);
  }
  podman(['rmi', '-f', image]);
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!!missing)(`podman checkpoints and restores with crtools as criu${missing ? ` (skipped: install ${missing})` : ''}`, { timeout: 300_000 }, () => {
  it("an image of busybox alone is imported into the test's own storage", () => {
    const rootfs = path.join(work, 'rootfs');
    for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) mkdirSync(path.join(rootfs, d), { recursive: true });
    copyFileSync(BUSYBOX!, path.join(rootfs, 'bin/busybox'));
    chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
    for (const applet of ['sh', 'sleep', 'echo', 'cat']) symlinkSync('busybox', path.join(rootfs, 'bin', applet));
    // (and the workload that holds unlinked files and bound unix sockets, static)
    const cc = spawnSync('gcc', ['-static', '-O1', '-o', path.join(rootfs, 'bin/rootghost'), path.join(repoRoot, 'test/workloads/rootghost.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const tar = path.join(work, 'rootfs.tar');
    expect(spawnSync('tar', ['-C', rootfs, '-cf', tar, '.']).status).toBe(0);
    ok(podman(['import', tar, image]), 'import');
  });

  it('container checkpoint and restore, twice: the counter goes on from where it stopped', () => {
    const name = `crtools-pm-${process.pid}-a`;
    run(name);
    cycle(name);
    cycle(name);
  });

  it('checkpoint --export, the container removed, restore --import; crit x reads the archive', () => {
    const name = `crtools-pm-${process.pid}-b`;
    run(name);
    const archive = path.join(work, 'export.tar.gz');
    const before = count(name);
    ok(podman(['container', 'checkpoint', '--export', archive, name]), 'checkpoint --export');
    ok(podman(['rm', '-f', name]), `rm ${name}`);
    // crit x: the archive's process tree is the container's shell, as its own pid namespace sees it
    const ps = spawnSync('node', [critBin, 'x', archive, 'ps'], { encoding: 'utf8' });
    expect(ps.status, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/^\s+PID\s+PGID\s+SID\s+COMM\n\s+1\s+1\s+1\s+sh\n/);
    ok(podman(['container', 'restore', '--import', archive]), 'restore --import');
    goesOnFrom(name, before);
  });

  // crtools issue 17: unlinked files (on the container's rootfs and its /dev/shm tmpfs) and unix
  // sockets bound to paths restored under runc's --root; the workload checks them from inside
  // and stops counting, saying what in /tmp/fail, on the first change
  const holdsAll = (name: string) => {
    const f = `/proc/${inspect(name).pid}/root/tmp/fail`;
    expect(existsSync(f) ? readFileSync(f, 'utf8') : '').toBe('');
  };

  it('a container holding unlinked files and unix sockets bound to paths: checkpoint and restore twice, it finds them as they were', () => {
    const name = `crtools-pm-${process.pid}-g`;
    run(name, ['/bin/rootghost']);
    for (let round = 0; round < 2; round++) {
      cycle(name);
      holdsAll(name);
    }
  });

  it.skipIf(!CRIU)(`the same container: CRIU 4.2's checkpoint restored by crtools, and crtools' by CRIU 4.2${CRIU ? '' : ' (skipped: set CRIU= to a CRIU 4.2 binary)'}`, () => {
    const name = `crtools-pm-${process.pid}-h`;
    run(name, ['/bin/rootghost']);
    cycle(name, CRIU!, criuBin);
    holdsAll(name);
    cycle(name, criuBin, CRIU!);
    holdsAll(name);
  });

  it.skipIf(!CRIU)(`CRIU 4.2's checkpoint restored by crtools, and crtools' by CRIU 4.2${CRIU ? '' : ' (skipped: set CRIU= to a CRIU 4.2 binary)'}`, () => {
    const name = `crtools-pm-${process.pid}-c`;
    run(name);
    cycle(name, CRIU!, criuBin);
    cycle(name, criuBin, CRIU!);
  });
});
