/**
 * Mounts of other file systems a tree makes in its own mount namespace (issue 17): cgroup2, a
 * cgroup v1 named hierarchy, an overlay over directories, binfmt_misc, written as CRIU 4.2 writes
 * them (mnt_entry fstype by code, source, super-block options) and mounted again from those at
 * their place, with their propagation; an ext4 on a loop device with --enable-fs (fstype AUTO,
 * fsname); what a new mount would not carry is refused by name (a ramfs with files even under
 * --enable-fs, a file system CRIU names no code for without it, an overlay whose upper layer is
 * on a tmpfs of the tree's own). Workload test/workloads/mntns.c, the mounts added from outside
 * (nsenter).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { askVerdict, critDecode, criu, killAllStarted, killTree, startWorkload, tmp, waitReaped } from '../dump/helpers.js';
import { bothWaysWithCriu, CRIU } from './criu-ref.js';
import { restoreRoot } from './roundtrip.js';

const restoredRoots: number[] = [];
afterEach(() => {
  for (const p of restoredRoots.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

const filesystems = readFileSync('/proc/filesystems', 'utf8');
const HAS_BINFMT = /\tbinfmt_misc$/m.test(filesystems);

/** Run a shell command in pid's mount namespace. */
function inNs(pid: number, cmd: string): string {
  const r = spawnSync('nsenter', ['-t', String(pid), '-m', 'sh', '-c', cmd], { encoding: 'utf8' });
  expect(r.status, `${cmd}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/**
 * The mounts of pid's namespace below `base` as mountinfo shows them: mount point, root, mount
 * options, file system, source, super-block options and propagation (shared / slave / private:
 * peer group numbers are the kernel's to choose).
 */
function mountsUnder(pid: number, base: string): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')).filter((f) => f[4]!.startsWith(`${base}/`)).map((f) => {
    const dash = f.indexOf('-');
    const prop = f.slice(6, dash).map((t) => t.replace(/:\d+$/, '')).sort().join('+') || 'private';
    return [f[4]!.slice(base.length), f[3], f[5], f[dash + 1], f[dash + 2], f[dash + 3], prop].join(' ');
  });
}

describe('mounts of other file systems in a tree\'s mount namespace', () => {
  it(`cgroup2, a named cgroup v1 hierarchy, an overlay over directories and binfmt_misc come back from type, source and options, with their propagation; files through the overlay intact; verdict ok${HAS_BINFMT ? '' : ' (binfmt_misc left out: this kernel has none)'}`, () => {
    const w = startWorkload('mntns', []);
    const x = tmp('mntfs');
    for (const d of ['cg2', 'cg1', 'lower', 'upper', 'work', 'ovl', 'bfm']) mkdirSync(path.join(x, d));
    writeFileSync(path.join(x, 'lower/low.txt'), 'from the lower layer\n');
    inNs(w.pid, [
      // (a source of its own: a new mount, not a bind of criu's /sys/fs/cgroup, which would show
      // that one's source)
      `mount -t cgroup2 crtcg2 ${x}/cg2`,
      `mount --make-shared ${x}/cg2`,
      `mount -t cgroup -o none,name=crtmntfs crtmntfs ${x}/cg1`,
      `mount -t overlay ovlsrc -o lowerdir=${x}/lower,upperdir=${x}/upper,workdir=${x}/work ${x}/ovl`,
      `echo through the overlay > ${x}/ovl/up.txt`,
      `rm ${x}/ovl/low.txt && echo gone from the merged view > ${x}/ovl/note.txt`,
      ...(HAS_BINFMT ? [`mount -t binfmt_misc binfmt_misc ${x}/bfm`] : []),
    ].join(' && '));
    const before = mountsUnder(w.pid, x);
    expect(before.map((l) => l.split(' ')[3])).toEqual(['cgroup2', 'cgroup', 'overlay', ...(HAS_BINFMT ? ['binfmt_misc'] : [])]);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
    const dir = tmp('mntfs-img');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4']);
    expect(d.code, d.stderr).toBe(0);
    // as CRIU 4.2 writes them (Debian's crit as the reference decoder): fstype codes, source, options
    const ids = critDecode(`${dir}/ids-1.img`).entries[0];
    const mnts = critDecode(`${dir}/mountpoints-${ids.mnt_ns_id}.img`).entries as { mountpoint: string; fstype: number; source: string; options: string; shared_id: number }[];
    const at = (p: string) => mnts.find((m) => m.mountpoint === path.join(x, p))!;
    expect(at('cg2')).toMatchObject({ fstype: 23, source: 'crtcg2', root: '/' });
    expect(at('cg2').shared_id).toBeGreaterThan(0);
    expect(at('cg1')).toMatchObject({ fstype: 12, source: 'crtmntfs' });
    expect(at('cg1').options).toMatch(/(^|,)name=crtmntfs(,|$)/);
    expect(at('ovl')).toMatchObject({ fstype: 17, source: 'ovlsrc' });
    expect(at('ovl').options).toContain(`lowerdir=${x}/lower,upperdir=${x}/upper,workdir=${x}/work`);
    if (HAS_BINFMT) expect(at('bfm')).toMatchObject({ fstype: 4, source: 'binfmt_misc' });
    expect(waitReaped(w.pid)).toBe(true);
    const root = restoreRoot(dir);
    restoredRoots.push(root);
    expect(readlinkSync(`/proc/${root}/ns/mnt`)).not.toBe(readlinkSync(`/proc/${process.pid}/ns/mnt`));
    expect(mountsUnder(root, x)).toEqual(before);
    expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    // the workload's files through them
    expect(inNs(root, `cat ${x}/ovl/up.txt ${x}/ovl/note.txt`)).toBe('through the overlay\ngone from the merged view\n');
    expect(inNs(root, `ls ${x}/ovl`).split('\n').filter(Boolean).sort()).toEqual(['note.txt', 'up.txt']);
    expect(inNs(root, `cat ${x}/cg2/cgroup.controllers >/dev/null && ls ${x}/cg1`)).toContain('cgroup.procs');
    if (HAS_BINFMT) expect(inNs(root, `ls ${x}/bfm`)).toContain('register');
    inNs(root, `umount ${x}/cg1`);
  });

  it('refused by name at dump (exit 4, the tree left running): a ramfs of the tree\'s own (CRIU names no code for it) without --enable-fs, and with it while it holds files; mounted again empty with it', () => {
    const w = startWorkload('mntns', []);
    const x = tmp('mntfs-ramfs');
    mkdirSync(path.join(x, 'r'));
    inNs(w.pid, `mount -t ramfs ramsrc ${x}/r && echo data > ${x}/r/f`);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('mntfs-ramfs-img'), '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`mount \\d+ at ${x}/r \\(ramfs, source ramsrc\\).*dump with --enable-fs ramfs`));
    const e = criu(['dump', '-t', String(w.pid), '-D', tmp('mntfs-ramfs-img2'), '-o', 'dump.log', '--enable-fs', 'ramfs']);
    expect(e.code, e.stderr).toBe(4);
    expect(e.stderr).toMatch(/\(ramfs, source ramsrc\).*holds files in memory only \(f\)/);
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
    // empty: mounted again as CRIU 4.2 mounts it (fstype AUTO, fsname)
    inNs(w.pid, `rm ${x}/r/f`);
    const dir = tmp('mntfs-ramfs-img3');
    const f = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--enable-fs', 'ramfs']);
    expect(f.code, f.stderr).toBe(0);
    const ids = critDecode(`${dir}/ids-1.img`).entries[0];
    const m = (critDecode(`${dir}/mountpoints-${ids.mnt_ns_id}.img`).entries as { mountpoint: string }[]).find((e) => e.mountpoint === `${x}/r`);
    expect(m).toMatchObject({ fstype: 16, fsname: 'ramfs', source: 'ramsrc' });
    expect(waitReaped(w.pid)).toBe(true);
    const root = restoreRoot(dir);
    restoredRoots.push(root);
    expect(mountsUnder(root, x).map((l) => l.split(' ').slice(0, 5).join(' '))).toEqual(['/r / rw,relatime ramfs ramsrc']);
    expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
  });

  it('refused by name at dump (exit 4, the tree left running): an overlay whose upper layer lies on a tmpfs of the tree\'s own (tar drops its extended attributes), even with --enable-fs all', () => {
    const w = startWorkload('mntns', []);
    const x = tmp('mntfs-ovltmp');
    for (const d of ['t', 'lower', 'ovl']) mkdirSync(path.join(x, d));
    inNs(w.pid, `mount -t tmpfs tt ${x}/t && mkdir ${x}/t/upper ${x}/t/work && mount -t overlay ov -o lowerdir=${x}/lower,upperdir=${x}/t/upper,workdir=${x}/t/work ${x}/ovl`);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('mntfs-ovltmp-img'), '-o', 'dump.log', '--enable-fs', 'all']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`mount \\d+ at ${x}/ovl \\(overlay, source ov\\).*has its upper layer ${x}/t/upper on a tmpfs of the tree's own`));
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
  });

  it('--enable-fs ext4: an ext4 on a loop device the tree mounted is written as CRIU 4.2 writes it (AUTO, fsname) and mounted again from its device and options, its files there; refused by name without', () => {
    const x = tmp('mntfs-ext4');
    const img = path.join(x, 'fs.img');
    mkdirSync(path.join(x, 'm'));
    expect(spawnSync('truncate', ['-s', '8M', img]).status).toBe(0);
    expect(spawnSync('mkfs.ext4', ['-q', '-F', img]).status).toBe(0);
    const lo = spawnSync('losetup', ['--find', '--show', img], { encoding: 'utf8' });
    expect(lo.status, lo.stderr).toBe(0);
    const dev = lo.stdout.trim();
    try {
      const w = startWorkload('mntns', []);
      inNs(w.pid, `mount -t ext4 -o noatime ${dev} ${x}/m && echo on the device > ${x}/m/f.txt`);
      const before = mountsUnder(w.pid, x);
      const r = criu(['dump', '-t', String(w.pid), '-D', tmp('mntfs-ext4-img0'), '-o', 'dump.log']);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/\(ext4, source \/dev\/loop\d+\).*dump with --enable-fs ext4/);
      const dir = tmp('mntfs-ext4-img');
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--enable-fs', 'ext4']);
      expect(d.code, d.stderr).toBe(0);
      const ids = critDecode(`${dir}/ids-1.img`).entries[0];
      const m = (critDecode(`${dir}/mountpoints-${ids.mnt_ns_id}.img`).entries as { mountpoint: string }[]).find((e) => e.mountpoint === `${x}/m`);
      expect(m).toMatchObject({ fstype: 16, fsname: 'ext4', source: dev });
      expect(waitReaped(w.pid)).toBe(true);
      const root = restoreRoot(dir);
      restoredRoots.push(root);
      expect(mountsUnder(root, x)).toEqual(before);
      expect(inNs(root, `cat ${x}/m/f.txt`)).toBe('on the device\n');
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      killTree(root);
      restoredRoots.splice(0);
      expect(waitReaped(root)).toBe(true);
    } finally {
      spawnSync('losetup', ['-d', dev]);
    }
  });

  it.skipIf(!CRIU)(`cgroup2 and an overlay both ways with CRIU 4.2: crtools restores CRIU's dump, CRIU (--root /) crtools'; mounts as dumped, files through the overlay intact, verdict ok${CRIU ? '' : ' (skipped: no CRIU 4.2; set CRIU=)'}`, () => {
    const w = startWorkload('mntns', []);
    const x = tmp('mntfs-criu');
    for (const d of ['cg2', 'lower', 'upper', 'work', 'ovl']) mkdirSync(path.join(x, d));
    writeFileSync(path.join(x, 'lower/low.txt'), 'low\n');
    inNs(w.pid, `mount -t cgroup2 cgroup2 ${x}/cg2 && mount --make-shared ${x}/cg2 && mount -t overlay ovlsrc -o lowerdir=${x}/lower,upperdir=${x}/upper,workdir=${x}/work ${x}/ovl && echo up > ${x}/ovl/up.txt`);
    bothWaysWithCriu('mntfs', w.pid, restoredRoots, (root) => {
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
      return mountsUnder(root, x);
    }, (root, before) => {
      expect(mountsUnder(root, x)).toEqual(before);
      expect(inNs(root, `cat ${x}/ovl/up.txt ${x}/ovl/low.txt`)).toBe('up\nlow\n');
      expect(askVerdict(w.state, root, 10_000)).toBe('check ok');
    });
  });
});
