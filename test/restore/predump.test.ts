/**
 * criu pre-dump and incremental dumps on a kernel without soft-dirty: dirty tracking through
 * userfaultfd WP_ASYNC + PAGEMAP_SCAN, held between rounds by a detached tracker process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, NOT_CARRIED_YET, type ExpectedChange } from '@crtools/inspect';
import { alive, askVerdict, criu, killAllStarted, killTree, killTreeAndWait, ourCritDecode, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, restoreDir } from './roundtrip.js';
import { criuBin } from '../lib/paths.js';

// a failed test leaves nothing: restored trees and started workloads are killed by pid
afterEach(() => {
  killRestored();
  killAllStarted();
});

const TRACK_FILE = 'crtools-mem-track.json';

function stats(dir: string): { pages_written: number; pages_skipped_parent: number; pages_scanned: number; frozen_time: number } {
  const d = ourCritDecode(path.join(dir, 'stats-dump')).entries[0].dump;
  return { pages_written: Number(d.pages_written), pages_skipped_parent: Number(d.pages_skipped_parent), pages_scanned: Number(d.pages_scanned), frozen_time: Number(d.frozen_time) };
}

function trackerOf(dir: string): number {
  return JSON.parse(readFileSync(path.join(dir, TRACK_FILE), 'utf8')).tracker.pid;
}

/** SIGUSR2: the workload rewrites the next 1/8 of its pages; give it time to. */
function dirty(pid: number): void {
  process.kill(pid, 'SIGUSR2');
  sleep(150);
}

/** While tracked, the tree's areas show the uffd-wp registration: the one honest difference. */
const TRACKED: ExpectedChange[] = [{
  path: /vmFlags/,
  why: 'tracked but not dumped yet: the areas are registered for userfaultfd write-protect (VmFlags "uw") until the final dump lets the tracking go',
  keep: (v) => {
    if (typeof v !== 'string' || !v.startsWith('[')) return v;
    const flags = JSON.parse(v) as string[];
    return JSON.stringify(flags.filter((f) => f !== 'uw'));
  },
}];

describe('criu pre-dump and incremental dumps (uffd-wp + PAGEMAP_SCAN)', () => {
  it('3 pre-dumps then a dump with --prev-images-dir --track-mem: only the written pages, restored with the verdict intact, twice', () => {
    const w = startWorkload('dirtier', ['16', '0', '0']);
    const PAGES = 16 * 256;
    const before = fingerprint(w.pid);
    for (let round = 0; round < 2; round++) {
      const base = tmp(`predump-${round}`);
      const dirs = ['p1', 'p2', 'p3', 'final'].map((d) => path.join(base, d));
      const p1 = criu(['pre-dump', '-t', String(w.pid), '-D', dirs[0]!, '-o', 'pre-dump.log']);
      expect(p1.code, p1.stderr).toBe(0);
      expect(alive(w.pid)).toBe(true);
      expect(existsSync(path.join(dirs[0]!, TRACK_FILE))).toBe(true);
      expect(stats(dirs[0]!).pages_written).toBeGreaterThanOrEqual(PAGES);
      // tracked: nothing but the registration differs
      expect(compareFingerprints(before, fingerprint(w.pid), [...EXPECTED_CHANGES, ...TRACKED])).toEqual([]);
      for (let i = 1; i < 3; i++) {
        dirty(w.pid);
        const p = criu(['pre-dump', '-t', String(w.pid), '-D', dirs[i]!, '--prev-images-dir', `../${path.basename(dirs[i - 1]!)}`, '-o', 'pre-dump.log']);
        expect(p.code, p.stderr).toBe(0);
        const s = stats(dirs[i]!);
        expect(s.pages_skipped_parent).toBeGreaterThan(PAGES / 2);
        expect(s.pages_written).toBeGreaterThanOrEqual(PAGES / 8);
        expect(s.pages_written).toBeLessThan(PAGES / 8 + 256);
        // the previous tracker handed its descriptors on and is gone
        expect(waitGone(trackerOf(dirs[i - 1]!))).toBe(true);
        expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
      }
      dirty(w.pid);
      const tracker = trackerOf(dirs[2]!);
      const d = criu(['dump', '-t', String(w.pid), '-D', dirs[3]!, '--prev-images-dir', '../p3', '--track-mem', '-o', 'dump.log', '-v4']);
      expect(d.code, d.stderr).toBe(0);
      const s = stats(dirs[3]!);
      // the pages image holds exactly the pages written since the parent round
      expect(statSync(path.join(dirs[3]!, 'pages-1.img')).size).toBe(s.pages_written * 4096);
      // that image was made, its pages touched, before the freeze, at the size counted then
      // (cut to the pages written), and nothing of it is left beside the images
      expect(readFileSync(path.join(dirs[3]!, 'dump.log'), 'utf8')).toMatch(/pages prefilled before the freeze: [\d.]+ MiB for 1 task/);
      expect(readdirSync(dirs[3]!).filter((n) => n.startsWith('.'))).toEqual([]);
      expect(s.pages_skipped_parent).toBeGreaterThan(PAGES / 2);
      expect(s.pages_written).toBeGreaterThanOrEqual(PAGES / 8);
      expect(s.pages_written).toBeLessThan(PAGES / 8 + 256);
      expect(readlinkSync(path.join(dirs[3]!, 'parent'))).toBe('../p3');
      expect(waitGone(tracker)).toBe(true);
      expect(waitReaped(w.pid)).toBe(true);
      // criu dedup over the chain: what the final dump overrides is punched out of the parents
      if (round === 0) {
        const blocks = () => dirs.slice(0, 3).reduce((n, d) => n + statSync(path.join(d, 'pages-1.img')).blocks, 0);
        const b0 = blocks();
        const dd = criu(['dedup', '-D', dirs[3]!]);
        expect(dd.code, dd.stderr).toBe(0);
        expect(blocks()).toBeLessThan(b0);
      }
      const r = restoreDir(dirs[3]!);
      expect(r.code, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok bad=0/);
      expect(compareFingerprints(before, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
    }
    killTreeAndWait(w.pid);
  }, 300_000);

  it('a large splice pre-dump holds its pages in pipes by reference while frozen (copied instead when the pipes would not fit under our descriptor limit; a small round copies), while the program keeps writing: both chains restore with the verdict intact', () => {
    // 288 MiB written at 40 MiB/s the whole time: pages change under the held references
    // between the thaw and their write-out (the kernel copies them; the tracking counts them)
    const w = startWorkload('dirtier', ['288', '40', '0']);
    // (node raises its soft descriptor limit to the hard one: 300 leaves no room for 288 pipes)
    for (const [name, prefix] of [['held', []], ['copied', ['prlimit', '--nofile=300:300']]] as const) {
      const base = tmp(`predump-hold-${name}`);
      const run = (args: string[]) => {
        const cmd = [...prefix, process.execPath, criuBin, ...args];
        const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 120_000 });
        return { code: r.status, stderr: r.stderr };
      };
      const dirs = ['p1', 'p2', 'final'].map((d) => path.join(base, d));
      for (let i = 0; i < 2; i++) {
        const p = run(['pre-dump', '-t', String(w.pid), '-D', dirs[i]!, ...(i ? ['--prev-images-dir', '../p1'] : []), '-v4', '-o', 'pre-dump.log']);
        expect(p.code, p.stderr).toBe(0);
        const log = readFileSync(path.join(dirs[i]!, 'pre-dump.log'), 'utf8');
        // the first round takes all 288 MiB; the second what was written since (~10-20 MiB)
        const want = i === 1 ? /pages copied \(\d+ pages, under 256 MiB\)/ : name === 'held' ? /pages held in \d+ pipe\(s\)/ : /pages copied \(.*descriptors are left\)/;
        expect(log).toMatch(want);
        expect(stats(dirs[i]!).pages_written).toBeGreaterThan(0);
        sleep(200);
      }
      const d = run(['dump', '-t', String(w.pid), '-D', dirs[2]!, '--prev-images-dir', '../p2', '--track-mem', '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      const r = restoreDir(dirs[2]!);
      expect(r.code, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok bad=0/);
    }
    killTreeAndWait(w.pid);
  }, 300_000);

  it('a final dump into a file system without room for its written pages fails with ENOSPC and resumes the tree intact; with room it is done (restored, verdict ok)', (ctx) => {
    const w = startWorkload('dirtier', ['16', '0', '0']);
    const base = tmp('predump-room');
    const mnt = path.join(base, 'small');
    mkdirSync(mnt);
    // 16 MiB: the 2 MiB written fit; 1 MiB: they do not
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    if (m.status !== 0) return ctx.skip('cannot mount a tmpfs here');
    try {
      const p1 = path.join(base, 'p1');
      expect(criu(['pre-dump', '-t', String(w.pid), '-D', p1, '-o', 'pre-dump.log']).code).toBe(0);
      dirty(w.pid);
      spawnSync('mount', ['-o', 'remount,size=1m', mnt]);
      const bad = criu(['dump', '-t', String(w.pid), '-D', path.join(mnt, 'final'), '--prev-images-dir', p1, '--track-mem', '-o', 'dump.log', '-v4']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(/ENOSPC|no space/i);
      expect(existsSync(path.join(mnt, 'final', 'inventory.img'))).toBe(false);
      expect(alive(w.pid)).toBe(true);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok bad=0/);
      rmSync(path.join(mnt, 'final'), { recursive: true, force: true });
      spawnSync('mount', ['-o', 'remount,size=16m', mnt]);
      const d = criu(['dump', '-t', String(w.pid), '-D', path.join(mnt, 'final'), '--prev-images-dir', p1, '--track-mem', '-o', 'dump.log', '-v4']);
      expect(d.code, d.stderr).toBe(0);
      const log = readFileSync(path.join(mnt, 'final', 'dump.log'), 'utf8');
      // the pages are written while the tree is frozen, before it is killed (a failure then leaves it running)
      expect(log.indexOf('Killing the dumped tree')).toBeGreaterThan(log.indexOf('memory:'));
      const s = stats(path.join(mnt, 'final'));
      expect(s.pages_skipped_parent).toBeGreaterThan(16 * 256 / 2);
      expect(statSync(path.join(mnt, 'final', 'pages-1.img')).size).toBe(s.pages_written * 4096);
      expect(waitReaped(w.pid)).toBe(true);
      const r = restoreDir(path.join(mnt, 'final'));
      expect(r.code, r.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid)).toMatch(/^check ok bad=0/);
    } finally {
      killRestored();
      killAllStarted();
      spawnSync('umount', ['-l', mnt]);
    }
  }, 120_000);

  it('a task with a userfaultfd of its own: the area it registered is not tracked (written every round), its userfaultfd still works, the tracker ends with the task', () => {
    const w = startWorkload('dirtier', ['4', '0', '1']);
    const base = tmp('predump-uffd');
    const p1 = criu(['pre-dump', '-t', String(w.pid), '-D', path.join(base, 'p1'), '-o', 'pre-dump.log']);
    expect(p1.code, p1.stderr).toBe(0);
    expect(readFileSync(path.join(base, 'p1', 'pre-dump.log'), 'utf8')).toMatch(/is not tracked \(the task registered it with a userfaultfd of its own\)/);
    const p2 = criu(['pre-dump', '-t', String(w.pid), '-D', path.join(base, 'p2'), '--prev-images-dir', '../p1', '--pre-dump-mode', 'read', '-o', 'pre-dump.log']);
    expect(p2.code, p2.stderr).toBe(0);
    // nothing was written, but the task's own area (256 pages) is written again
    expect(stats(path.join(base, 'p2')).pages_written).toBeGreaterThanOrEqual(256);
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok bad=0/);
    const tracker = trackerOf(path.join(base, 'p2'));
    expect(alive(tracker)).toBe(true);
    killTreeAndWait(w.pid);
    // its tasks gone, the tracker exits by itself
    expect(waitGone(tracker, 5000)).toBe(true);
  }, 120_000);

  it('bad input: a --prev-images-dir without images, a bad --pre-dump-mode: one line, no tracker left', () => {
    const w = startWorkload('dirtier', ['1', '0', '0']);
    const base = tmp('predump-bad');
    const a = criu(['pre-dump', '-t', String(w.pid), '-D', path.join(base, 'x'), '--prev-images-dir', '../nothing']);
    expect(a.code).toBe(3);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    const b = criu(['pre-dump', '-t', String(w.pid), '-D', path.join(base, 'y'), '--pre-dump-mode', 'copy']);
    expect(b.code).not.toBe(0);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(path.join(base, 'x', TRACK_FILE)) || existsSync(path.join(base, 'y', TRACK_FILE))).toBe(false);
    expect(askVerdict(w.state, w.pid)).toMatch(/^check ok/);
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  }, 60_000);
});
