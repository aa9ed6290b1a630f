/**
 * Nested mount namespaces (issue 17): a tree in a mount (and pid) namespace of its own whose
 * child made another below it (unshare after fork) with a tmpfs and a bind mount of its own and
 * files open there. The dump writes each namespace as CRIU 4.2 does (mountpoints-<id>.img each,
 * ids-<pid>.img's mnt_ns_id per task, the files' mount ids in the task's namespace); the restore
 * has the child make its namespace again (unshare, a copy of its parent's) and shapes it before
 * the child opens, maps or forks anything. Workload test/workloads/mntsub.c, round trips and
 * both ways with CRIU 4.2; what cannot be carried in a nested namespace is refused by name.
 * Under --root (test/workloads/mntshroot.c, a container's shape, as zdtm's mntns_shared_bind and
 * inotify01): a shared root mount, a bind of it its peer and a nested namespace whose root is a
 * slave of it come back so (pivot_root into a shared root: its group held across), and the
 * init's inotify watch on a file of a tmpfs only the nested namespace shows is live again.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, killTree, killTreeAndWait, readState, sleep, startWorkload, tmp, treePids, waitReaped } from '../dump/helpers.js';
import { repoRoot } from '../lib/paths.js';
import { bothWaysWithCriu, CRIU, CRIU_COW, CRIU_TIME_NS } from './criu-ref.js';
import { restoreDir, restoreRoot } from './roundtrip.js';

/** files on a tmpfs made anew are new inodes of it (its contents come back through tar, as with CRIU) */
const TMPFS_INODES = {
  path: /^tasks\[\d+\]\.fds\[\d+\]\.fdinfo$/,
  why: 'the tmpfs is made anew and its files extracted: a file on it is the same path and contents at another inode number',
  keep: (v: unknown) => String(v).replace(/"ino: \d+"/, '"ino: ?"'),
};

type Mnt = { mnt_id: number; mountpoint: string; root: string; fstype: number; root_dev: string };

const restoredRoots: number[] = [];
afterEach(() => {
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

/** the child of the tree's init (its one task below it) */
const kidOf = (root: number) => treePids(root).find((p) => p !== root)!;

describe('a mount namespace below the tree\'s own (nested)', () => {
  it('mntsub round trips twice: each namespace its own mountpoints image, the child\'s tmpfs, bind of the parent\'s tmpfs, open files and cwd in it (fingerprint seen from inside), verdict ok', () => {
    const w = startWorkload('mntsub', []);
    let root = w.pid;
    const base = path.join(path.dirname(w.state), 'mntsub');
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      const kid = kidOf(root);
      expect(readlinkSync(`/proc/${kid}/ns/mnt`)).not.toBe(readlinkSync(`/proc/${root}/ns/mnt`));
      const before = fingerprint(root);
      const dir = tmp(`mntsub-rt-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      // as CRIU 4.2 writes them: the nested namespace gets the next id after the root's
      expect(critDecode(`${dir}/ids-1.img`).entries[0]).toMatchObject({ pid_ns_id: 9, mnt_ns_id: 10 });
      expect(critDecode(`${dir}/ids-2.img`).entries[0]).toMatchObject({ pid_ns_id: 9, mnt_ns_id: 11 });
      const outer = critDecode(`${dir}/mountpoints-10.img`).entries as Mnt[];
      const inner = critDecode(`${dir}/mountpoints-11.img`).entries as Mnt[];
      const at = (l: Mnt[], p: string) => l.filter((m) => m.mountpoint === path.join(base, p));
      expect(at(outer, 't')).toHaveLength(1);
      expect(at(outer, 'n')).toHaveLength(0);
      expect(at(inner, 'n')).toMatchObject([{ fstype: 5, root: '/' }]);
      expect(at(inner, 'nb')).toMatchObject([{ fstype: 5, root: '/sub', root_dev: at(outer, 't')[0]!.root_dev }]);
      expect(at(inner, 't')).toMatchObject([{ root_dev: at(outer, 't')[0]!.root_dev }]);
      // the child's files and working directory: mount ids of its own namespace
      const files = critDecode(`${dir}/files.img`).entries as { reg?: { name: string; mnt_id?: number } }[];
      const innerIds = new Set(inner.map((m) => m.mnt_id));
      const reg = (name: string) => files.filter((f) => f.reg?.name === path.join(base, name)).map((f) => innerIds.has(f.reg!.mnt_id ?? -1));
      expect(reg('n/n.txt')).toEqual([true]);
      expect(reg('n')).toEqual([true]);
      // t/a.txt twice: the init's (its own namespace's t) and the child's (through its copy)
      expect(reg('t/a.txt').sort()).toEqual([false, true]);
      expect(waitReaped(root)).toBe(true);
      root = restoreRoot(dir);
      restoredRoots.push(root);
      expect(readlinkSync(`/proc/${kidOf(root)}/ns/mnt`)).not.toBe(readlinkSync(`/proc/${root}/ns/mnt`));
      const after = fingerprint(root);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, TMPFS_INODES])).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    }
    killTreeAndWait(root);
    restoredRoots.splice(0);
  });

  it.skipIf(!CRIU)(`mntsub both ways with CRIU 4.2: crtools restores CRIU's dump (fingerprint), CRIU (--root /) crtools' (the child in its own namespace), verdict ok${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const w = startWorkload('mntsub', []);
    bothWaysWithCriu('mntsub', w.pid, restoredRoots, (root) => {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      return fingerprint(root);
    }, (root, before, dumper, restorer) => {
      // (CRIU 4.2's restore merges a child's adjacent areas of a library that it had as two, as
      // it does restoring its own dump of this tree: areas are compared where crtools restores)
      if (restorer === 'us') expect(compareFingerprints(insideView(before), insideView(fingerprint(root)), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...CRIU_TIME_NS, TMPFS_INODES, CRIU_COW]), `dumped by ${dumper}, restored by ${restorer}`).toEqual([]);
      else expect(readlinkSync(`/proc/${kidOf(root)}/ns/mnt`)).not.toBe(readlinkSync(`/proc/${root}/ns/mnt`));
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    });
  });

  it('an unlinked file on a mount of a nested namespace is refused by name at dump (exit 4), the tree left running', () => {
    const x = tmp('mntsub-ghost');
    const u = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'setsid', 'sh', '-c',
      `mount --make-rprivate / && umount -l /dev/shm; unshare --mount sh -c 'mount -t tmpfs sub ${x} && echo data > ${x}/g && exec 3<${x}/g && rm ${x}/g && exec sleep 1000' & wait`], { stdio: 'ignore', detached: true });
    try {
      let init = 0;
      let sleeper = 0;
      for (let i = 0; i < 500 && !sleeper; i++) {
        const pids = treePids(u.pid!);
        const runs = (p: number, what: string) => {
          try {
            return readlinkSync(`/proc/${p}/exe`).endsWith(what);
          } catch {
            return false; // (gone: unshare's own steps)
          }
        };
        // (the namespaces' init: unshare's child, running sh)
        init = pids.find((p) => p !== u.pid && runs(p, 'sh') && readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(u.pid)) ?? 0;
        sleeper = pids.find((p) => runs(p, '/sleep')) ?? 0;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      expect(readlinkSync(`/proc/${sleeper}/fd/3`)).toBe(`${x}/g (deleted)`);
      const d = criu(['dump', '-t', String(init), '-D', tmp('mntsub-ghost-img'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toMatch(/fd 3.*the unlinked file lies on mount \d+ of a nested mount namespace of the tree/);
      // left running, not traced, still holding the file
      expect(readFileSync(`/proc/${sleeper}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
      expect(readFileSync(`/proc/${sleeper}/fd/3`, 'utf8')).toBe('data\n');
    } finally {
      killTreeAndWait(u.pid!);
    }
  });
});

/**
 * The propagation of pid's mounts at `points` and of its child's (kid:...), peer groups named in
 * order of appearance (g1, g2...: ids differ after a restore, the sharing must not).
 */
function propagationShape(pid: number, points: string[]): Record<string, string> {
  const names = new Map<string, string>();
  const name = (g: string) => names.get(g) ?? (names.set(g, `g${names.size + 1}`), names.get(g)!);
  const out: Record<string, string> = {};
  for (const [who, p] of [['', pid], ['kid:', kidOf(pid)]] as const) {
    for (const line of readFileSync(`/proc/${p}/mountinfo`, 'utf8').split('\n').filter(Boolean)) {
      const f = line.split(' ');
      if (!points.includes(f[4]!)) continue;
      const tags = f.slice(6, f.indexOf('-')).map((t) => t.replace(/^(shared|master):(\d+)$/, (_, k, g) => `${k}:${name(g)}`));
      out[`${who}${f[4]}`] = `${f[f.indexOf('-') + 1]} ${tags.join(' ')}`.trim();
    }
  }
  return out;
}

describe('a shared root mount with a nested namespace its slave, under --root', () => {
  it('mntshroot round trips twice under --root: / and /b one peer group, the child\'s / its slave, /d/sub\'s copies as the kernel made them (propagation shape), the init\'s inotify watch on the child\'s own tmpfs file live (verdict ok)', () => {
    const root = path.join(tmp('mntshroot'), 'root');
    mkdirSync(root);
    const cc = spawnSync('gcc', ['-static', '-O1', '-o', path.join(root, 'mntshroot'), path.join(repoRoot, 'test/workloads/mntshroot.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const state = path.join(root, 'mntshroot.state');
    expect(spawnSync(path.join(root, 'mntshroot'), [state], { stdio: 'ignore', timeout: 10_000 }).status).toBe(0);
    let line = '';
    for (let i = 0; i < 500 && !line.startsWith('ready'); i++) {
      sleep(10);
      line = readState(state);
    }
    let pid = Number(/pid=(\d+)/.exec(line)?.[1] ?? 0);
    expect(pid, line).toBeGreaterThan(0);
    restoredRoots.push(pid);
    const points = ['/', '/b', '/d/sub', '/b/sub', '/n'];
    const shape = {
      '/': 'ext4 shared:g1', '/b': 'ext4 shared:g1', '/d/sub': 'tmpfs shared:g2', '/b/sub': 'tmpfs shared:g2',
      'kid:/': 'ext4 master:g1', 'kid:/b': 'ext4 shared:g1', 'kid:/n': 'tmpfs', 'kid:/b/sub': 'tmpfs shared:g2', 'kid:/d/sub': 'tmpfs master:g2',
    };
    // (the root's file system is whatever holds the test's directory)
    const fs = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')[0]!.split(' - ')[1]!.split(' ')[0]!;
    const want = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.replace(/^ext4/, fs)]));
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
      expect(propagationShape(pid, points)).toEqual(want);
      const dir = tmp(`mntshroot-rt-${round}`);
      const d = criu(['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4', '--root', root]);
      expect(d.code, d.stderr).toBe(0);
      // the watch: its file's path in the child's namespace and that namespace's mount (as CRIU 4.2)
      const inner = critDecode(`${dir}/mountpoints-11.img`).entries as Mnt[];
      const files = critDecode(`${dir}/files.img`).entries as { ify?: { wd: { f_handle: { path?: string; mnt_id?: number } }[] } }[];
      const fh = files.find((f) => f.ify)!.ify!.wd[0]!.f_handle;
      expect(fh.path).toBe('/n/w.txt');
      expect(inner.find((m) => m.mnt_id === fh.mnt_id)?.mountpoint).toBe('/n');
      expect(waitReaped(pid)).toBe(true);
      restoredRoots.splice(0);
      const pidfile = path.join(dir, 'root.pid');
      const r = restoreDir(dir, ['--pidfile', pidfile, '--root', root]);
      expect(r.code, r.stderr).toBe(0);
      pid = Number(readFileSync(pidfile, 'utf8'));
      restoredRoots.push(pid);
      expect(readlinkSync(`/proc/${kidOf(pid)}/ns/mnt`)).not.toBe(readlinkSync(`/proc/${pid}/ns/mnt`));
      expect(propagationShape(pid, points)).toEqual(want);
      expect(askVerdict(state, pid, 10_000)).toBe('check ok');
    }
    killTreeAndWait(pid);
    restoredRoots.splice(0);
  });
});
