/**
 * Copy-on-write sharing between a parent and its children after a restore (restorer src/cow.ts):
 * the pages the tree shared when dumped are one physical page again (the fingerprint's sharing
 * groups, held to the dumped ones by the round trip), and the tree uses the memory it used, not
 * one copy per task. Workload test/workloads/cowtree.c: a parent with 64 MiB, 3 children and a
 * grandchild that each change, rewrite unchanged and drop a few pages of it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fingerprint } from '@crtools/inspect';
import { askVerdict, criu, killAllStarted, killTree, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, restoreDir, roundTrip } from './roundtrip.js';

afterEach(killRestored);
afterAll(() => killAllStarted());

const MIB = 64;
const VERDICT = 'check ok kids=3 grandkids=1';

/** Proportional set size of the whole tree under pid, in KiB (smaps_rollup). */
function treePss(pid: number): number {
  return treePids(pid).reduce((sum, p) => sum + Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1] ?? NaN), 0);
}

/** The biggest group of tasks sharing pages: [tasks in it, pages shared that way]. */
function widestSharing(pid: number): { tasks: number; pages: number } {
  const byWidth = new Map<number, number>();
  for (const g of fingerprint(pid).sharedPages) byWidth.set(g.length, (byWidth.get(g.length) ?? 0) + 1);
  const tasks = Math.max(0, ...byWidth.keys());
  return { tasks, pages: byWidth.get(tasks) ?? 0 };
}

describe('copy-on-write sharing kept by the restore', () => {
  it('cowtree round trips twice: the same pages shared by the same tasks (fingerprint), verdict ok, memory use as before', () => {
    roundTrip('cowtree', [String(MIB), '3'], (pid, state) => {
      expect(askVerdict(state, pid, 10_000)).toBe(VERDICT);
      expect(treePids(pid)).toHaveLength(5);
      // the parent's 64 MiB once for the five tasks (one copy each would be 320 MiB)
      expect(treePss(pid)).toBeLessThan((MIB + 12) * 1024);
      // the grandchild's pages that child 1 changed are shared by the two only; the rest by all five
      const w = widestSharing(pid);
      expect(w.tasks).toBe(5);
      expect(w.pages).toBeGreaterThan((MIB * 256) - 64);
    });
  });

  it('pages compared and left shared are counted as CRIU counts them (--display-stats), the tree Pss before and after alike', () => {
    const w = startWorkload('cowtree', [String(MIB), '3']);
    const before = treePss(w.pid);
    const dir = tmp('cow-stats');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restoreDir(dir, ['--display-stats']);
    expect(r.code, r.stderr).toBe(0);
    const pids = treePids(w.pid);
    try {
      const stat = (name: string): number => Number(new RegExp(`${name}: (\\d+)`).exec(r.stdout + r.stderr)?.[1]);
      // every child's and the grandchild's 64 MiB is compared; all but their few own pages stay shared
      expect(stat('Pages compared')).toBeGreaterThanOrEqual(4 * (MIB * 256 - 8));
      expect(stat('Pages skipped COW')).toBeGreaterThanOrEqual(4 * (MIB * 256 - 16));
      expect(stat('Pages restored')).toBeLessThan(MIB * 256 + 2048);
      const after = treePss(w.pid);
      expect(Math.abs(after - before), `Pss ${before} kB before, ${after} kB after`).toBeLessThan(before / 20);
      expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
    } finally {
      killTree(w.pid);
      for (const p of pids) expect(waitGone(p)).toBe(true);
    }
  });
});

// a real CRIU 4+ (crtools' own criu also says "Version: 4.2", with a "crtools:" line after it)
const CRIU = [process.env.CRIU, 'criu'].find((c) => {
  const v = c ? (spawnSync(c, ['--version'], { encoding: 'utf8' }).stdout ?? '') : '';
  return /Version: ([4-9]|\d\d)\./.test(v) && !/^crtools:/m.test(v);
});

describe.skipIf(!CRIU)(`copy-on-write sharing across CRIU (${CRIU ?? 'no CRIU 4+ binary here'})`, () => {
  for (const way of ['dumped by CRIU, restored by us', 'dumped by us, restored by CRIU'] as const) {
    it(`cowtree ${way}: verdict ok, the tree's Pss as before`, () => {
      const w = startWorkload('cowtree', [String(MIB), '3']);
      const before = treePss(w.pid);
      const dir = tmp('cow-criu');
      const ours = way.startsWith('dumped by us');
      const d = ours
        ? criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log'])
        : ((x) => ({ code: x.status, stderr: x.stderr }))(spawnSync(CRIU!, ['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log'], { encoding: 'utf8', timeout: 60_000 }));
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      const r = ours
        ? ((x) => ({ code: x.status, stderr: x.stderr }))(spawnSync(CRIU!, ['restore', '-D', dir, '-d', '-o', 'restore.log'], { encoding: 'utf8', timeout: 60_000 }))
        : criu(['restore', '-D', dir, '-d']);
      expect(r.code, r.stderr).toBe(0);
      const pids = treePids(w.pid);
      try {
        expect(askVerdict(w.state, w.pid, 10_000)).toBe(VERDICT);
        const after = treePss(w.pid);
        expect(Math.abs(after - before), `Pss ${before} kB before, ${after} kB after`).toBeLessThan(before / 20);
      } finally {
        killTree(w.pid);
        for (const p of pids) expect(waitGone(p)).toBe(true);
      }
    });
  }
});
