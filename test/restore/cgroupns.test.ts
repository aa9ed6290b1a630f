/**
 * A tree in a cgroup namespace of its own (crtools issue 17; zdtm's cgroupns): the cgns workload
 * moves itself into /ns of a named v1 hierarchy no mount shows, unshares its cgroup namespace
 * there, moves into /ns/sub and forks a child. The dump records where the namespace is rooted in
 * each hierarchy (cgroup.img's cgns_prefix, as CRIU 4.2 writes it); the restore puts the root at
 * that place, has it make its namespace there, and moves it into its cgroups after: the tasks
 * see /proc/self/cgroup as before (the workload's check: /sub in the named hierarchy, / in the
 * others), criu sees the full paths. Round trip twice (fingerprint equal); CRIU 4.2 restores our
 * dump and we restore CRIU's; --manage-cgroups=ignore, which would drop the namespace, is refused
 * at dump by name.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { alive, askVerdict, criu, critDecode, killAllStarted, killTree, startWorkload, tmp, waitReaped } from '../dump/helpers.js';
import { CRIU } from './criu-ref.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';
import { emptyNamedHierarchy, namedCgroupOf } from '../lib/named-cgroup.js';

const NAME = `crtoolsns${process.pid}`;
const HIER = `name=${NAME}`;
const ARGS = [NAME, '/ns', 'sub'];

/** Every child cgroup of the hierarchy removed. */
const removeHierarchy = () => emptyNamedHierarchy(NAME);

/** The hierarchy's cgroup of a task, as criu sees it. */
const cgroupOf = (pid: number) => namedCgroupOf(NAME, pid);

/** cgroup.img's set of the tasks (the one that names the hierarchy): its members with their cgns_prefix. */
function rootSet(dir: string): { name: string; path: string; cgns_prefix?: number }[] {
  const sets = critDecode(path.join(dir, 'cgroup.img')).entries[0].sets as { id: number; ctls: { name: string; path: string; cgns_prefix?: number }[] }[];
  // (CRIU 4.2 writes a second, equal set for the child: it compares a task's set with the root's before it gives it the root's prefixes)
  const ours = sets.filter((s) => s.ctls.some((c) => c.name === HIER));
  for (const o of ours) expect(o.ctls).toEqual(ours[0]!.ctls);
  return ours[0]!.ctls;
}

const started: number[] = [];
afterEach(() => {
  killRestored();
  for (const p of started.splice(0)) if (alive(p)) killTree(p);
  killAllStarted();
});
afterAll(() => removeHierarchy());

describe('a tree in a cgroup namespace of its own', () => {
  it('round trip, twice: the namespace rooted where it was (the tasks see /sub, criu /ns/sub), fingerprint equal', () => {
    try {
      roundTrip('cgns', ARGS, (pid, state) => {
        expect(askVerdict(state, pid)).toMatch(/^check ok/);
        expect(cgroupOf(pid)).toBe('/ns/sub');
      }, true, undefined, [], (dir) => {
        const named = rootSet(dir).find((c) => c.name === HIER)!;
        expect(named).toMatchObject({ path: '/ns/sub', cgns_prefix: 3 });
      }, ['--manage-cgroups'], ['--manage-cgroups']);
    } finally {
      killRestored();
      removeHierarchy();
    }
  });

  it('--manage-cgroups=ignore would lose the namespace: refused at dump by name (exit 4), the tree left running', () => {
    try {
      const w = startWorkload('cgns', ARGS);
      started.push(w.pid);
      expect(w.check()).toMatch(/^check ok/);
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp('cgns-ignore'), '--manage-cgroups=ignore']);
      expect(d.code).toBe(4);
      expect(d.stderr).toContain(`the tree's root ${w.pid} lives in a cgroup namespace of its own, which --manage-cgroups=ignore would not carry`);
      expect(w.check()).toMatch(/^check ok/);
    } finally {
      for (const p of started.splice(0)) if (alive(p)) killTree(p);
      removeHierarchy();
    }
  });

  it.skipIf(!CRIU)(`CRIU 4.2 restores our dump, and we restore CRIU's${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    try {
      const w = startWorkload('cgns', ARGS);
      started.push(w.pid);
      expect(w.check()).toMatch(/^check ok/);
      const ours = tmp('cgns-ours');
      const d0 = criu(['dump', '-t', String(w.pid), '-D', ours, '--manage-cgroups']);
      expect(d0.code, d0.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      const r = spawnSync(CRIU!, ['restore', '-D', ours, '-o', 'restore.log', '-v4', '--manage-cgroups', '-d'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      expect(cgroupOf(w.pid)).toBe('/ns/sub');
      const theirs = tmp('cgns-theirs');
      const d = spawnSync(CRIU!, ['dump', '-t', String(w.pid), '-D', theirs, '-o', 'dump.log', '-v4', '--manage-cgroups'], { encoding: 'utf8', timeout: 60_000 });
      expect(d.status, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      // (CRIU writes the same prefixes we do)
      expect(rootSet(theirs)).toEqual(rootSet(ours));
      const r2 = restoreDir(theirs, ['--manage-cgroups']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      expect(cgroupOf(w.pid)).toBe('/ns/sub');
    } finally {
      killRestored();
      for (const p of started.splice(0)) if (alive(p)) killTree(p);
      removeHierarchy();
    }
  });
});
