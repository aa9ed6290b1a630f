/**
 * A tree in a time namespace of its own (issue 17, time namespaces): the root's time namespace is
 * dumped as CRIU 4.2 dumps it (its id in ids-<pid>.img, criu's in inventory's root_ids, the clocks
 * as the tasks read them in timens-<id>.img instead of timens-0.img) and restored with the root
 * born in a new time namespace whose offsets make CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from
 * where the dump left them (the workload notes any jump). A task that made another time namespace
 * for its children is refused by name. CRIU 4.2 interop both ways, and a tree CRIU 4.2 restored
 * (CRIU restores every tree into a new time namespace) dumped by crtools again.
 * Workload test/workloads/timens.c.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fingerprint } from '@crtools/inspect';
import { readImageFile, writeImageFile } from '@crtools/images';
import { buildRestorePlan } from '@crtools/restorer';
import { fixturesDir } from '../lib/paths.js';
import { askVerdict, critDecode, criu, killAllStarted, killTreeAndWait, startWorkload, tmp, treePids, waitReaped } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';
import { CRIU, runBy } from './criu-ref.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const VERDICT = 'check ok child=1';
const DAYS1000 = 86_400_000;

function timeLink(pid: number): string {
  return readlinkSync(`/proc/${pid}/ns/time`);
}

/** The tree's time namespace as the fingerprint shows it: its own, offsets 1000 days less the time away. */
function expectTimePrint(pid: number): void {
  const n = fingerprint(pid).namespaces!;
  expect(n.own).toContain('time');
  expect(n.nested).toEqual({});
  for (const k of ['monotonic', 'boottime'] as const) {
    const off = Number(n.time![k]);
    expect(off).toBeLessThanOrEqual(DAYS1000 + 1);
    expect(off).toBeGreaterThan(DAYS1000 - 600);
  }
}

/** The pids of a dump's tasks (pstree.img). */
function treePids0(dir: string): number[] {
  return (critDecode(path.join(dir, 'pstree.img')).entries as { pid: number }[]).map((e) => e.pid);
}

function killAndCheck(root: number): void {
  killTreeAndWait(root);
}

describe('a tree in a time namespace of its own', () => {
  it('timens round trips twice: clocks go on without a jump (verdict), a new time namespace, fingerprint equal; images as CRIU 4.2 writes them', () => {
    roundTrip('timens', [], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      expect(timeLink(pid)).not.toBe(timeLink(process.pid));
      // the root is in its namespace, not only its children
      expect(readlinkSync(`/proc/${pid}/ns/time_for_children`)).toBe(timeLink(pid));
      expectTimePrint(pid);
    }, true, undefined, [], (dir, pid) => {
      const inv = critDecode(`${dir}/inventory.img`).entries[0];
      expect(inv.root_ids).toMatchObject({ pid_ns_id: 1, net_ns_id: 2, ipc_ns_id: 3, uts_ns_id: 4, time_ns_id: 5, mnt_ns_id: 6, user_ns_id: 7, cgroup_ns_id: 8 });
      const ids = critDecode(`${dir}/ids-${pid}.img`).entries[0];
      expect(ids).toMatchObject({ pid_ns_id: 1, net_ns_id: 2, ipc_ns_id: 3, uts_ns_id: 4, time_ns_id: 9, mnt_ns_id: 6, user_ns_id: 7, cgroup_ns_id: 8 });
      // as CRIU: the clocks of the tree's namespace, and no timens-0.img beside them
      expect(existsSync(`${dir}/timens-0.img`)).toBe(false);
      const t = critDecode(`${dir}/timens-9.img`).entries;
      expect(t).toHaveLength(1);
      for (const k of ['monotonic', 'boottime']) {
        expect(Number(t[0][k].tv_sec)).toBeGreaterThan(DAYS1000);
        expect(Number(t[0][k].tv_nsec)).toBeLessThan(1e9);
      }
    });
  });

  it('the workload notices a jump: its images edited to name criu\'s time namespace, it is restored in the host\'s and says its clocks went back', async () => {
    const w = startWorkload('timens', []);
    const dir = tmp('timens-jump');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    for (const p of treePids0(dir)) {
      const ids = await readImageFile(path.join(dir, `ids-${p}.img`));
      (ids.entries[0] as Record<string, unknown>).time_ns_id = 5;
      await writeImageFile(path.join(dir, `ids-${p}.img`), ids);
    }
    const r = criu(['restore', '-D', dir, '-d', '-o', 'restore.log']);
    expect(r.code, r.stderr).toBe(0);
    try {
      expect(timeLink(w.pid)).toBe(timeLink(process.pid));
      expect(askVerdict(w.state, w.pid, 10_000)).toMatch(/^check bad jumped=1\/1 by_ms=-\d+\/-\d+ /);
    } finally {
      killAndCheck(w.pid);
    }
  });

  it('a tree in criu\'s time namespace still gets timens-0.img with criu\'s clocks, as CRIU writes it', () => {
    const w = startWorkload('sleeper', []);
    const dir = tmp('timens-zero');
    const before = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    const t = critDecode(`${dir}/timens-0.img`).entries[0];
    // boottime is /proc/uptime's clock
    expect(Number(t.boottime.tv_sec)).toBeGreaterThanOrEqual(Math.floor(before));
    expect(Number(t.boottime.tv_sec)).toBeLessThan(before + 120);
    expect(waitReaped(w.pid)).toBe(true);
  });

  it('--check-only on such a tree finds nothing to refuse; the tree runs on', () => {
    const w = startWorkload('timens', []);
    const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp('timens-check')]);
    expect(c.code, c.stderr).toBe(0);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killAndCheck(w.pid);
  });

  it('a task that made another time namespace for its children is refused by name (exit 4), the tree runs on', () => {
    const w = startWorkload('timens', ['nested']);
    let kid = 0;
    for (let i = 0; i < 500 && !kid; i++) {
      kid = treePids(w.pid).find((p) => p !== w.pid && readlinkSync(`/proc/${p}/ns/time_for_children`) !== timeLink(p)) ?? 0;
      if (!kid) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    expect(kid).toBeGreaterThan(0);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('timens-nested'), '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`task ${kid} made a time namespace for its children`));
    expect(readFileSync(`/proc/${kid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    killAndCheck(w.pid);
  });
});

describe('the restore plan of a tree in a time namespace of its own', () => {
  it('takes the dumped clocks from timens-<id>.img; the image missing is bad input (exit 3), not a restore in the host\'s clocks', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'crtools-timens-plan-'));
    cpSync(path.join(fixturesDir, 'sleep'), d, { recursive: true });
    const ids = await readImageFile(path.join(d, 'ids-2680.img'));
    (ids.entries[0] as Record<string, unknown>).time_ns_id = 9;
    await writeImageFile(path.join(d, 'ids-2680.img'), ids);
    await expect(buildRestorePlan(d)).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('timens-9.img') });
    await writeImageFile(path.join(d, 'timens-9.img'), { magic: 'TIMENS', entries: [{ monotonic: { tv_sec: 86400123n, tv_nsec: 5n }, boottime: { tv_sec: 86400456n, tv_nsec: 6n } }] });
    const plan = await buildRestorePlan(d);
    expect(plan.namespaces).toMatchObject({ cloneFlags: 0, clocks: { monotonic: { sec: 86400123n, nsec: 5n }, boottime: { sec: 86400456n, nsec: 6n } } });
  });
});

describe.skipIf(!CRIU)(`a tree in a time namespace of its own between crtools and CRIU (${CRIU ?? 'no CRIU 4.2 binary here'})`, () => {
  for (const [by, to] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
    it(`timens: dumped by ${by}, restored by ${to}, clocks go on (verdict ${VERDICT})`, () => {
      const w = startWorkload('timens', []);
      const dir = tmp(`x-timens-${by}-img`);
      mkdirSync(dir, { recursive: true });
      runBy(by, dir, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(waitReaped(w.pid)).toBe(true);
      runBy(to, dir, ['restore', '-D', dir, '-d', '-o', 'restore.log']);
      try {
        expect(askVerdict(w.state, w.pid, 20_000)).toBe(VERDICT);
        expect(timeLink(w.pid)).not.toBe(timeLink(process.pid));
        expectTimePrint(w.pid);
      } finally {
        killAndCheck(w.pid);
      }
    });
  }

  it('a tree CRIU 4.2 restored (into a new time namespace, as CRIU always does) is dumped and restored by crtools, its clocks going on', () => {
    const w = startWorkload('sleeper', []);
    const dir = tmp('x-timens-criu-first');
    mkdirSync(dir, { recursive: true });
    runBy('CRIU', dir, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(waitReaped(w.pid)).toBe(true);
    runBy('CRIU', dir, ['restore', '-D', dir, '-d', '-o', 'restore.log']);
    try {
      expect(timeLink(w.pid)).not.toBe(timeLink(process.pid));
      const again = tmp('x-timens-criu-then-us');
      const print = fingerprint(w.pid).namespaces!;
      expect(print.own).toEqual(['time']);
      const d = criu(['dump', '-t', String(w.pid), '-D', again, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      const r = criu(['restore', '-D', again, '-d', '-o', 'restore.log']);
      expect(r.code, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid, 10_000)).toBe(`check ok pid=${w.pid}`);
      expect(timeLink(w.pid)).not.toBe(timeLink(process.pid));
      const after = fingerprint(w.pid).namespaces!;
      expect(after.own).toEqual(['time']);
      // the clocks go on from the dump: the offsets moved by at most the time the tree was away
      for (const k of ['monotonic', 'boottime'] as const) expect(Math.abs(Number(after.time![k]) - Number(print.time![k]))).toBeLessThan(600);
    } finally {
      killAndCheck(w.pid);
    }
  });
});
