/**
 * A named cgroup v1 hierarchy that no mount shows (crtools issue 17; zdtm's cgroup tests make
 * one): the cgnamed workload mounts hierarchy name=crtools<pid> (made by that), puts itself in
 * /wl, its child in /wl/sub and a thread of its own alone in /wl/thr, and unmounts it (its
 * check says whether each is where it was put). criu reads and changes it through mounts of its own that
 * no namespace shows (a cgroup yard): the round trip (twice, the fingerprint equal: it holds
 * /proc/PID/cgroup) brings both tasks back into the same cgroups, with no mount left in any
 * namespace; with the hierarchy gone before the restore it is made again (mounted by the
 * restore, as CRIU does) with the dumped directories; --cgroup-yard uses a yard given; CRIU 4.2
 * restores our dump and we restore CRIU's; a property file's mode and owner come back with its
 * directory. Every hierarchy made here is emptied and unmounted
 * again (its child cgroups removed depth-first), also when a test fails.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { alive, askVerdict, criu, critDecode, killAllStarted, killTree, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { CRIU } from './criu-ref.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { emptyNamedHierarchy, namedCgroupOf, withNamedHierarchy } from '../lib/named-cgroup.js';

const NAME = `crtools${process.pid}`;
const HIER = `name=${NAME}`;

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** The hierarchy mounted at a fresh directory for `fn`, unmounted after. */
const withHierarchy = <T>(fn: (dir: string) => T): T => withNamedHierarchy(NAME, fn);

/** Every child cgroup of the hierarchy removed, and the hierarchy let go by the kernel. */
function removeHierarchy(): void {
  emptyNamedHierarchy(NAME);
  // (emptied and unmounted: the kernel lets it go)
  for (let i = 0; i < 100 && readFileSync('/proc/self/cgroup', 'utf8').includes(`:${HIER}:`); i++) spawnSync('sleep', ['0.02']);
}

const ARGS = [NAME, '/wl', '/wl/sub', '/wl/thr'];

/** The workload started: itself in /wl, its child in /wl/sub; the hierarchy unmounted again. */
function startPlaced() {
  const w = startWorkload('cgnamed', ARGS);
  const child = Number(/child=(\d+)/.exec(readFileSync(w.state, 'utf8'))![1]);
  expect(w.check()).toMatch(/^check ok/);
  expect(cgroupOf(w.pid)).toBe('/wl');
  expect(cgroupOf(child)).toBe('/wl/sub');
  noMountsLeft();
  return { ...w, child };
}

/** No mount of the hierarchy, nor a yard's, in our mount namespace (the host's here). */
function noMountsLeft(): void {
  const mi = readFileSync('/proc/self/mountinfo', 'utf8');
  expect(mi).not.toContain(HIER);
  expect(mi).not.toContain('.crtools.cgyard.');
  expect(readdirSync(tmpdir()).filter((n) => n.startsWith('.crtools.cgyard.'))).toEqual([]);
}

/** The hierarchy's cgroup of a task, as criu sees it. */
const cgroupOf = (pid: number) => namedCgroupOf(NAME, pid);

const started: number[] = [];
afterEach(() => {
  killRestored();
  for (const p of started.splice(0)) if (alive(p)) killTree(p);
  killAllStarted();
});
afterAll(() => removeHierarchy());

describe('a named cgroup v1 hierarchy no mount shows', () => {
  it('round trip, twice: both tasks and the thread back in /wl, /wl/sub and /wl/thr (fingerprint equal), no mount left anywhere', () => {
    try {
      roundTrip('cgnamed', ARGS, (pid, state) => {
        expect(askVerdict(state, pid)).toMatch(/^check ok/);
        expect(cgroupOf(pid)).toBe('/wl');
        noMountsLeft();
      }, true, undefined, [], (dir) => {
        // (the dump wrote the set and the directories of the hierarchy, read through its own mount)
        const cg = critDecode(path.join(dir, 'cgroup.img')).entries[0];
        const named = cg.controllers.find((c: { cnames: string[] }) => c.cnames.join(',') === HIER);
        expect(named.dirs.map((d: { dir_name: string }) => d.dir_name)).toEqual(['wl']);
        expect(named.dirs[0].children.map((d: { dir_name: string }) => d.dir_name).sort()).toEqual(['sub', 'thr']);
        noMountsLeft();
      });
    } finally {
      removeHierarchy();
    }
  });

  it('the hierarchy gone before the restore: made again with /wl and /wl/sub, the tasks in them; --cgroup-yard: the yard given is used', () => {
    try {
      const w = startPlaced();
      started.push(w.pid);
      // a property file's mode and owner changed: put back with the directory (zdtm's cgroup03)
      withHierarchy((root) => {
        chmodSync(path.join(root, 'wl/notify_on_release'), 0o777);
        chownSync(path.join(root, 'wl/notify_on_release'), 1000, 1000);
      });
      const dir = tmp('cgnamed-gone');
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4', '--manage-cgroups']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      expect(waitGone(w.child)).toBe(true);
      noMountsLeft();
      removeHierarchy();
      // the dumped directories are gone (the kernel frees the emptied, unmounted hierarchy itself
      // only later, when nothing refers to it, which on a busy machine can take longer than the
      // test: the restore then mounts the hierarchy that is still there and makes the directories)
      expect(withHierarchy((root) => readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name))).toEqual([]);
      // a yard of our own making: a tmpfs with the hierarchy mounted at its name (criu.8)
      const yard = mkdtempSync(path.join(tmpdir(), 'crtools-yard-'));
      run('mount', ['-t', 'tmpfs', 'yard', yard]);
      try {
        mkdirSync(path.join(yard, NAME));
        run('mount', ['-t', 'cgroup', '-o', `none,${HIER}`, 'cgroup', path.join(yard, NAME)]);
        const r = restoreDir(dir, ['--manage-cgroups', '--cgroup-yard', yard]);
        expect(r.code, r.stderr).toBe(0);
        started.push(w.pid);
        expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
        expect(cgroupOf(w.pid)).toBe('/wl');
        expect(cgroupOf(w.child)).toBe('/wl/sub');
        expect(existsSync(path.join(yard, NAME, 'wl/sub'))).toBe(true);
        expect(statSync(path.join(yard, NAME, 'wl/notify_on_release'))).toMatchObject({ mode: 0o100777, uid: 1000, gid: 1000 });
      } finally {
        run('umount', ['-l', yard]);
        rmdirSync(yard);
      }
      killTree(w.pid);
      expect(waitGone(w.pid)).toBe(true);
      // again without a yard, the hierarchy gone once more: the restore mounts (and so makes) it
      removeHierarchy();
      const r = restoreDir(dir, ['--manage-cgroups']);
      expect(r.code, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      expect(cgroupOf(w.child)).toBe('/wl/sub');
      noMountsLeft();
    } finally {
      for (const p of started.splice(0)) if (alive(p)) killTree(p);
      removeHierarchy();
    }
  });

  it('a restore that fails (a --cgroup-yard that is not there; --manage-cgroups=none, the directories gone) leaves no mount and no directory', () => {
    try {
      const w = startPlaced();
      started.push(w.pid);
      const dir = tmp('cgnamed-fail');
      expect(criu(['dump', '-t', String(w.pid), '-D', dir]).code).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      removeHierarchy();
      const r = restoreDir(dir, ['--manage-cgroups', '--cgroup-yard', '/nonexistent/yard']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^criu: cgroup hierarchy \S+: cannot make \/nonexistent\/yard\/\S+ in the cgroup yard: ENOENT\n/);
      expect(alive(w.pid)).toBe(false);
      noMountsLeft();
      const r2 = restoreDir(dir, ['--manage-cgroups=none']);
      expect(r2.code).not.toBe(0);
      expect(r2.stderr).toContain('does not exist (--manage-cgroups=none makes none)');
      noMountsLeft();
      expect(withHierarchy((root) => readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name))).toEqual([]);
    } finally {
      removeHierarchy();
    }
  });

  it.skipIf(!CRIU)(`CRIU 4.2 restores our dump, and we restore CRIU's${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    try {
      const w = startPlaced();
      started.push(w.pid);
      const ours = tmp('cgnamed-ours');
      expect(criu(['dump', '-t', String(w.pid), '-D', ours, '--manage-cgroups']).code).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      removeHierarchy();
      const r = spawnSync(CRIU!, ['restore', '-D', ours, '-o', 'restore.log', '-v4', '--manage-cgroups', '-d'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      expect(cgroupOf(w.child)).toBe('/wl/sub');
      const theirs = tmp('cgnamed-theirs');
      const d = spawnSync(CRIU!, ['dump', '-t', String(w.pid), '-D', theirs, '-o', 'dump.log', '-v4', '--manage-cgroups'], { encoding: 'utf8', timeout: 60_000 });
      expect(d.status, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      removeHierarchy();
      const r2 = restoreDir(theirs, ['--manage-cgroups']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      expect(cgroupOf(w.pid)).toBe('/wl');
      expect(cgroupOf(w.child)).toBe('/wl/sub');
      noMountsLeft();
    } finally {
      for (const p of started.splice(0)) if (alive(p)) killTree(p);
      removeHierarchy();
    }
  });
});
