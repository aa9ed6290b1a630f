/**
 * A container-shaped tree (its own root, pivot_root) whose external mounts are slaves of a peer
 * group of the host's (issue 17, mounts; zdtm mnt_ext_multiple, mnt_root_ext): dumped with
 * --root and --external mnt[/ext]:EXT, restored under --root with EXT mapped to the host's
 * directory; the restore gives the external mount the host's group (move_mount
 * MOVE_MOUNT_SET_GROUP) and makes it a slave of it, as it was. Round-tripped twice with the
 * fingerprint (its mounts with their propagation); propagation seen at work: a mount made on
 * the host's source shows in the tree. Workload test/workloads/mntext.c, built static into the
 * tree's root. CRIU 4.2 restores crtools' dump of it and crtools CRIU's, both ways slaves again.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET } from '@crtools/inspect';
import { askVerdict, criu, critDecode, killAllStarted, killTree, readState, sleep, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { repoRoot } from '../lib/paths.js';
import { CRIU, CRIU_TIME_NS, runBy } from './criu-ref.js';
import { restoreDir } from './roundtrip.js';

const restoredRoots: number[] = [];
const mounted: string[] = [];
afterEach(() => {
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => {
  killAllStarted();
  for (const m of mounted.reverse()) spawnSync('umount', ['-l', m]);
});

const sh = (cmd: string[]) => expect(spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' }).status, cmd.join(' ')).toBe(0);

/** Mount points of pid's namespace (mountinfo's 5th field). */
const mountPoints = (pid: number) => readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[4]!);

/** The shared mount of ours the tree's /ext is bound from (SRC, SRC/a/a.txt), and the tree's root with the static workload in it. */
function setUp(name: string): { src: string; root: string } {
  const base = tmp(name);
  const src = path.join(base, 'src');
  mkdirSync(src);
  sh(['mount', '-t', 'tmpfs', '-o', 'size=1m', `${name}-src`, src]);
  mounted.push(src);
  sh(['mount', '--make-private', src]);
  sh(['mount', '--make-shared', src]);
  mkdirSync(path.join(src, 'a', 'probe'), { recursive: true });
  writeFileSync(path.join(src, 'a', 'a.txt'), 'ext\n');
  const root = path.join(base, 'root');
  mkdirSync(root);
  const cc = spawnSync('gcc', ['-static', '-O1', '-o', path.join(root, 'mntext'), path.join(repoRoot, 'test/workloads/mntext.c')], { encoding: 'utf8' });
  expect(cc.status, cc.stderr).toBe(0);
  return { src, root };
}

/** The workload's init (as we see it) once it says ready. */
function start(src: string, root: string): number {
  const state = path.join(root, 'mntext.state');
  const r = spawnSync(path.join(root, 'mntext'), [src, state], { stdio: 'ignore', timeout: 10_000 });
  expect(r.status).toBe(0);
  let line = '';
  for (let i = 0; i < 500 && !line.startsWith('ready'); i++) {
    sleep(10);
    line = readState(state);
  }
  const m = /pid=(\d+)/.exec(line);
  expect(m, line).not.toBeNull();
  restoredRoots.push(Number(m![1]));
  return Number(m![1]);
}

describe('external mounts that are slaves of a peer group of the host', () => {
  it('mntext round trips twice under --root: /ext and its bind /ext2 slaves of the host\'s group again (fingerprint with propagation), a mount on the host\'s source shows in the tree, verdict ok', () => {
    const { src, root } = setUp('mntext');
    const state = path.join(root, 'mntext.state');
    let pid = start(src, root);
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      const before = fingerprint(pid);
      const dir = tmp(`mntext-rt-${round}`);
      const d = criu(['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4', '--root', root, '--external', 'mnt[/ext]:EXT']);
      expect(d.code, d.stderr).toBe(0);
      // as CRIU 4.2 writes them: /ext external with its master, /ext2 a slave of the same group
      const mnts = critDecode(`${dir}/mountpoints-10.img`).entries as { mountpoint: string; shared_id: number; master_id: number; ext_key?: string }[];
      const ext = mnts.find((m) => m.mountpoint === '/ext')!;
      expect(ext).toMatchObject({ ext_key: 'EXT', shared_id: 0 });
      expect(ext.master_id).toBeGreaterThan(0);
      expect(mnts.find((m) => m.mountpoint === '/ext2')).toMatchObject({ shared_id: 0, master_id: ext.master_id });
      expect(mnts.some((m) => m.shared_id === ext.master_id)).toBe(false);
      expect(waitReaped(pid)).toBe(true);
      restoredRoots.splice(0);
      const pidfile = path.join(dir, 'root.pid');
      const r = restoreDir(dir, ['--pidfile', pidfile, '--root', root, '--external', `mnt[EXT]:${path.join(src, 'a')}`]);
      expect(r.code, r.stderr).toBe(0);
      pid = Number(readFileSync(pidfile, 'utf8'));
      restoredRoots.push(pid);
      const after = fingerprint(pid);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      // the group is the host's: a mount on the source reaches /ext and /ext2 (and goes again)
      const probe = path.join(src, 'a', 'probe');
      sh(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'probe', probe]);
      try {
        expect(mountPoints(pid).filter((p) => p.endsWith('/probe')).sort()).toEqual(['/ext/probe', '/ext2/probe']);
      } finally {
        sh(['umount', probe]);
      }
      expect(mountPoints(pid).filter((p) => p.endsWith('/probe'))).toEqual([]);
    }
    const pids = treePids(pid);
    killTree(pid);
    for (const p of pids) expect(waitGone(p)).toBe(true);
    restoredRoots.splice(0);
  });

  it.skipIf(!CRIU)(`both ways with CRIU 4.2: crtools restores CRIU's dump and CRIU crtools' with /ext and /ext2 slaves of the host's group (fingerprint), verdict ok${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const { src, root } = setUp('mntext-criu');
    const state = path.join(root, 'mntext.state');
    let pid = start(src, root);
    for (const [dumper, restorer] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      const before = fingerprint(pid);
      const dir = tmp(`mntext-${dumper}`);
      runBy(dumper, dir, ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4', '--root', root, '--external', 'mnt[/ext]:EXT']);
      expect(waitReaped(pid)).toBe(true);
      restoredRoots.splice(0);
      const pidfile = path.join(dir, 'root.pid');
      runBy(restorer, dir, ['restore', '-D', dir, '-o', 'restore.log', '-v4', '-d', '--pidfile', pidfile, '--root', root, '--external', `mnt[EXT]:${path.join(src, 'a')}`]);
      pid = Number(readFileSync(pidfile, 'utf8'));
      restoredRoots.push(pid);
      expect(compareFingerprints(insideView(before), insideView(fingerprint(pid)), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...CRIU_TIME_NS])).toEqual([]);
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
    }
  });

  it('the same dump restored with the external source private: refused by name before anything is made, exit 4', () => {
    const { src, root } = setUp('mntext-private');
    const pid = start(src, root);
    const dir = tmp('mntext-private-dump');
    const d = criu(['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '--root', root, '--external', 'mnt[/ext]:EXT']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(pid)).toBe(true);
    restoredRoots.splice(0);
    sh(['mount', '--make-private', src]);
    const before = mountPoints(process.pid).length;
    const r = restoreDir(dir, ['--root', root, '--external', `mnt[EXT]:${path.join(src, 'a')}`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^criu: mount \d+ at \/ext \(\S+\) is a slave of peer group \d+, which is outside the dumped namespace, and its source \S+ lies on mount \d+ at \S+ of the restorer's, which is private: it has no group to give \(make it shared or a slave\)\n$/);
    expect(mountPoints(process.pid).length).toBe(before);
  });
});
