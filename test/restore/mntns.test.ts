/**
 * A tree in a mount namespace (and pid namespace) of its own (issue 17, mounts): the mounts of
 * its namespace dumped as CRIU 4.2 dumps them (mountpoints-<id>.img, tmpfs-dev-<dev>.tar.gz.img)
 * and restored in a new mount namespace brought to the dumped shape: inherited mounts kept, a
 * private proc of the new pid namespace, a tmpfs with its files, a bind mount of a directory of
 * it, a shared tmpfs with a peer and a slave; an open file and the working directory on the
 * tmpfs. Workload test/workloads/mntns.c. Tmpfs mounts covered by others (zdtm's
 * tempfs_overmounted shapes): their files read through a private copy of the namespace and
 * back under the mounts that cover them; workload test/workloads/mntover.c, both ways with CRIU 4.2.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, insideView, NOT_CARRIED_YET } from '@crtools/inspect';
import { askVerdict, critDecode, criu, killAllStarted, killTree, killTreeAndWait, startWorkload, tmp, treePids, waitReaped } from '../dump/helpers.js';
import { bothWaysWithCriu, CRIU, CRIU_TIME_NS } from './criu-ref.js';
import { restoreDir, restoreRoot } from './roundtrip.js';

/** a file on a tmpfs made anew is a new inode of it (its contents come back through tar, as with CRIU) */
const TMPFS_INODES = {
  path: /^tasks\[\d+\]\.fds\[3\]\.fdinfo$/,
  why: 'the tmpfs is made anew and its files extracted: a file on it is the same path and contents at another inode number',
  keep: (v: unknown) => String(v).replace(/"ino: \d+"/, '"ino: ?"'),
};

/** The file system types mounted at `at` in pid's mount namespace (mountinfo's 5th field, the type after ' - '). */
function mountedAt(pid: number, at: string): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')).filter((f) => f[4] === at).map((f) => f[f.indexOf('-') + 1]!);
}

const restoredRoots: number[] = [];
afterEach(() => {
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

describe('a tree in a mount namespace of its own', () => {
  it('mntns round trips twice (the second restore with CRIU\'s --mntns-compat-mode, which makes the same tree): mounts, tmpfs files, open file, unlinked file and cwd on the tmpfs (fingerprint seen from inside), verdict ok', () => {
    const w = startWorkload('mntns', []);
    let root = w.pid;
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      const before = fingerprint(root);
      const dir = tmp(`mntns-rt-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      // as CRIU 4.2 writes them (Debian's crit as the reference decoder)
      const ids = critDecode(`${dir}/ids-1.img`).entries[0];
      expect(ids).toMatchObject({ pid_ns_id: 9, mnt_ns_id: 10 });
      const mnts = critDecode(`${dir}/mountpoints-10.img`).entries as { mountpoint: string; root: string; fstype: number; shared_id: number; master_id: number; root_dev: string }[];
      const base = path.join(path.dirname(w.state), 'mntns');
      const at = (p: string) => mnts.find((m) => m.mountpoint === path.join(base, p))!;
      expect(at('t')).toMatchObject({ fstype: 5, root: '/', shared_id: 0, master_id: 0 });
      expect(at('bind')).toMatchObject({ fstype: 5, root: '/sub', root_dev: at('t').root_dev });
      expect(at('s').shared_id).toBeGreaterThan(0);
      expect(at('s2').shared_id).toBe(at('s').shared_id);
      expect(at('sl')).toMatchObject({ shared_id: 0, master_id: at('s').shared_id });
      expect(mnts.filter((m) => m.mountpoint === '/proc').map((m) => m.fstype)).toEqual([1, 1]);
      const reg = critDecode(`${dir}/files.img`).entries.map((e: { reg?: { name: string } }) => e.reg?.name);
      expect(reg).toContain(path.join(base, 't/a.txt'));
      // the unlinked file on the tree's own tmpfs: a ghost, made again on that tmpfs
      expect(reg).toContain(path.join(base, 't/gone.txt'));
      expect(critDecode(`${dir}/remap-fpath.img`).entries).toHaveLength(1);
      expect(waitReaped(root)).toBe(true);
      const pidfile = path.join(dir, 'root.pid');
      const r = restoreDir(dir, ['--pidfile', pidfile, ...(round === 1 ? ['--mntns-compat-mode'] : [])]);
      expect(r.code, r.stderr).toBe(0);
      root = Number(readFileSync(pidfile, 'utf8'));
      restoredRoots.push(root);
      expect(readlinkSync(`/proc/${root}/ns/mnt`)).not.toBe(readlinkSync(`/proc/${process.pid}/ns/mnt`));
      const after = fingerprint(root);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, TMPFS_INODES])).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    }
    killTreeAndWait(root);
    restoredRoots.splice(0);
  });

  it('mntover round trips twice: tmpfs mounts covered by others (on their mount point, over a directory above them) come back with their files, hidden ones too; a bind moved below a later mount, bound from a covered one (fingerprint with the mounts), verdict ok', () => {
    const w = startWorkload('mntover', []);
    let root = w.pid;
    for (let round = 0; round < 2; round++) {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      const before = fingerprint(root);
      const dir = tmp(`mntover-rt-${round}`);
      const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log', '-v4']);
      expect(d.code, d.stderr).toBe(0);
      // each tmpfs's files, the covered ones' too, as tar(1) lists them
      const base = path.join(path.dirname(w.state), 'mntover');
      const mnts = critDecode(`${dir}/mountpoints-10.img`).entries as { mountpoint: string; root_dev: string }[];
      const files = (mp: string) => mnts.filter((m) => m.mountpoint === path.join(base, mp)).reverse().map((m) => {
        const t = spawnSync('tar', ['--list', '--gzip', '--file', `${dir}/tmpfs-dev-${m.root_dev}.tar.gz.img`], { encoding: 'utf8' });
        return t.stdout.split('\n').filter((f) => f.endsWith('.txt')).sort();
      });
      expect(files('a')).toEqual([['./a1.txt'], ['./a2.txt']]);
      expect(files('c')).toEqual([['./c.txt']]);
      expect(files('c/d')).toEqual([['./d.txt'], ['./e.txt']]);
      // m: its tmpfs once (its mounts share the device), read through m/c, the one not covered
      expect(files('m')).toEqual([['./sub/s.txt', './top.txt'], ['./sub/s.txt', './top.txt']]);
      expect(waitReaped(root)).toBe(true);
      const pidfile = path.join(dir, 'root.pid');
      const r = restoreDir(dir, ['--pidfile', pidfile]);
      expect(r.code, r.stderr).toBe(0);
      root = Number(readFileSync(pidfile, 'utf8'));
      restoredRoots.push(root);
      const after = fingerprint(root);
      expect(compareFingerprints(insideView(before), insideView(after), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    }
    killTreeAndWait(root);
    restoredRoots.splice(0);
  });

  it.skipIf(!CRIU)(`mntover both ways with CRIU 4.2: crtools restores CRIU's dump, CRIU (--root /) crtools', the covered tmpfs files back (fingerprint), verdict ok${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const w = startWorkload('mntover', []);
    bothWaysWithCriu('mntover', w.pid, restoredRoots, (root) => {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      return fingerprint(root);
    }, (root, before) => {
      expect(compareFingerprints(insideView(before), insideView(fingerprint(root)), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET, ...CRIU_TIME_NS])).toEqual([]);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    });
  });

  it('bind mounts whose roots were removed since (a directory and a file: zdtm mntns_deleted) are written as CRIU 4.2 writes them and come back bound, the roots removed again; verdict ok', () => {
    const w = startWorkload('mntns', []);
    // (in the tree's namespace: a tmpfs of its own, dst bound from src and g from f, then src and f removed)
    const x = tmp('mntns-deleted');
    const sh = spawnSync('nsenter', ['-t', String(w.pid), '-m', 'sh', '-c', `mount -t tmpfs deltest ${x} && mkdir ${x}/src ${x}/dst && : > ${x}/f && : > ${x}/g && mount --bind ${x}/src ${x}/dst && mount --bind ${x}/f ${x}/g && rmdir ${x}/src && rm ${x}/f`], { encoding: 'utf8' });
    expect(sh.status, sh.stderr).toBe(0);
    const roots = (pid: number) => readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[4] === `${x}/dst` || f[4] === `${x}/g`).map((f) => `${f[4]!.slice(x.length)} ${f[3]}`).sort();
    expect(roots(w.pid)).toEqual(['/dst /src//deleted', '/g /f//deleted']);
    const dir = tmp('mntns-deleted-img');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    const ids = critDecode(`${dir}/ids-1.img`).entries[0];
    const mnts = critDecode(`${dir}/mountpoints-${ids.mnt_ns_id}.img`).entries.filter((m: { mountpoint: string }) => m.mountpoint === `${x}/dst` || m.mountpoint === `${x}/g`);
    expect(mnts.map((m: { root: string; deleted?: boolean }) => `${m.root} ${m.deleted}`).sort()).toEqual(['/f true', '/src true']);
    expect(waitReaped(w.pid)).toBe(true);
    const root = restoreRoot(dir);
    restoredRoots.push(root);
    expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    expect(roots(root)).toEqual(['/dst /src//deleted', '/g /f//deleted']);
    const ls = spawnSync('nsenter', ['-t', String(root), '-m', 'ls', '-A', x], { encoding: 'utf8' });
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(['dst', 'g']);
  });

  it('an unlinked file on a read-only mount of the tree\'s own (zdtm ghost_on_rofs, which failed at restore) is refused by name at dump (exit 4), the tree left running', () => {
    const x = tmp('mntns-rofs');
    const u = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'setsid', 'sh', '-c',
      `mount --make-rprivate / && mount -t tmpfs rofs ${x} && echo data > ${x}/g && exec 3<${x}/g && rm ${x}/g && mount -o remount,bind,ro ${x} && exec sleep 1000`], { stdio: 'ignore', detached: true });
    try {
      let init = 0;
      for (let i = 0; i < 500; i++) {
        init = treePids(u.pid!).find((p) => p !== u.pid) ?? 0;
        try {
          if (init && readlinkSync(`/proc/${init}/exe`).endsWith('/sleep')) break;
        } catch {
          /* not yet */
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      expect(readlinkSync(`/proc/${init}/fd/3`)).toBe(`${x}/g (deleted)`);
      const d = criu(['dump', '-t', String(init), '-D', tmp('mntns-rofs-img'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toMatch(new RegExp(`fd 3.*the unlinked file lies on a read-only mount of the tree's own \\(mount \\d+\\), which the restore makes anew`));
      // left running, not traced, still holding the file
      expect(readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
      expect(readFileSync(`/proc/${init}/fd/3`, 'utf8')).toBe('data\n');
    } finally {
      killTreeAndWait(u.pid!);
    }
  });

  it('a restore unmounts nothing of the restorer\'s namespace: a mount made since the dump below a shared mount stays there', () => {
    // a shared mount of ours (the tree's namespace is made as a copy of ours: its copy is a peer)
    const shared = tmp('mntns-shared');
    const late = path.join(shared, 'late');
    mkdirSync(late);
    const sh = (cmd: string[]) => expect(spawnSync(cmd[0]!, cmd.slice(1)).status, cmd.join(' ')).toBe(0);
    sh(['mount', '--bind', shared, shared]);
    try {
      sh(['mount', '--make-shared', shared]);
      const w = startWorkload('mntns', []);
      expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
      const dir = tmp('mntns-late');
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      expect(waitReaped(w.pid)).toBe(true);
      // after the dump, a mount of ours below the shared one: the dumped namespace lacks it
      sh(['mount', '-t', 'tmpfs', 'late', late]);
      const ours = () => mountedAt(process.pid, late);
      expect(ours()).toEqual(['tmpfs']);
      const root = restoreRoot(dir);
      restoredRoots.push(root);
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      // ours is still mounted; the tree's namespace has not got it (its copy was private there)
      expect(ours()).toEqual(['tmpfs']);
      expect(mountedAt(root, late)).toEqual([]);
    } finally {
      spawnSync('umount', ['-l', late]);
      spawnSync('umount', ['-l', shared]);
    }
  });
});
