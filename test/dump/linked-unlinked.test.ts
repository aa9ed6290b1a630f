/**
 * An open file whose name was removed while the inode keeps another (ln a b; rm a: zdtm's
 * unlink_fstat03): kept as a ghost, it came back as a copy that b no longer led to (the restore
 * succeeded with the state changed). As CRIU 4.2:
 * - without --link-remap it is refused by name (exit 4, the tree left running, the descriptor
 *   still on b's inode); once b is gone too (nlink 0) it is a ghost file again;
 * - with --link-remap the dump gives it a hard link link_remap.<id> beside a (files.img entry of
 *   its own, remap-fpath.img LINKED); the restore opens the same inode by its name and removes
 *   the link: the descriptor is on b's inode again, a write through it shows in b; a dump with
 *   -R removes the link at once; both ways with CRIU 4.2 (each restores the other's link).
 * And what a dump cannot find again is refused by name there, not left to fail the restore: an
 * inotify watch on a file unlinked since, a working directory in the /proc directory of a
 * process gone (zdtm unhashed_proc).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, unlinkSync, writeFileSync, writeSync, openSync, closeSync, linkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, critDecode, expectDumpRefused, killAllStarted, killTree, procStatus, sleep, startWorkload, tmp, waitGone, waitReaped, criu } from './helpers.js';
import { killRestored, restoreDir } from '../restore/roundtrip.js';
import { CRIU, runBy } from '../restore/criu-ref.js';

afterEach(() => {
  killRestored();
  killAllStarted();
});

/**
 * A directory with a file a and a second link b to it, and a shell that opened a as its fd 3,
 * removed a and became a sleep: once its fd 3 reads "a (deleted)".
 */
function holdingRemoved(name: string): { dir: string; a: string; b: string; w: ReturnType<typeof startWorkload> } {
  const dir = tmp(name);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  writeFileSync(a, 'hello');
  linkSync(a, b);
  const w = startWorkload('launch', ['/bin/sh', '-c', `exec 3<>${a}; rm ${a}; exec sleep 1000`], dir);
  for (let i = 0; i < 500; i++) {
    try {
      if (readlinkSync(`/proc/${w.pid}/fd/3`).endsWith(' (deleted)') && readlinkSync(`/proc/${w.pid}/exe`).endsWith('/sleep')) break;
    } catch {
      /* not yet */
    }
    sleep(10);
  }
  expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${a} (deleted)`);
  return { dir, a, b, w };
}

describe('an unlinked file that keeps other links', () => {
  it('is refused by name at dump (exit 4), the tree left running on the same file; with no link left it is a ghost again', () => {
    const { a, b, w } = holdingRemoved('linked-unlinked');
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    expectDumpRefused(w.pid, /fd 3.*the file's name was removed, but it still has 1 other link\(s\)/, 'linked-unlinked');
    expect(alive(w.pid)).toBe(true);
    expect(procStatus(w.pid)['TracerPid']).toBe('0');
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    // the last name gone: a ghost file, restored with its contents
    unlinkSync(b);
    const img = tmp('linked-unlinked-ghost');
    const d = criu(['dump', '-t', String(w.pid), '-D', img]);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = restoreDir(img);
    expect(r.code, r.stderr).toBe(0);
    expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${a} (deleted)`);
    expect(readFileSync(`/proc/${w.pid}/fd/3`, 'utf8')).toBe('hello');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('--link-remap: the same file comes back (a link made at dump, removed by the restore); -R removes the link', () => {
    const { dir, a, b, w } = holdingRemoved('link-remap');
    const remaps = () => readdirSync(dir).filter((n) => n.startsWith('link_remap.'));
    // -R: the link goes with the dump
    const kept = tmp('link-remap-R');
    const d0 = criu(['dump', '-t', String(w.pid), '-D', kept, '-R', '--link-remap']);
    expect(d0.code, d0.stderr).toBe(0);
    expect(remaps()).toEqual([]);
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    const img = tmp('link-remap-img');
    const d = criu(['dump', '-t', String(w.pid), '-D', img, '--link-remap']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const [link] = remaps();
    expect(link).toMatch(/^link_remap\.\d+$/);
    expect(statSync(path.join(dir, link!)).ino).toBe(statSync(b).ino);
    const remap = critDecode(path.join(img, 'remap-fpath.img')).entries;
    expect(remap).toHaveLength(1);
    expect(remap[0].remap_type).toBe('LINKED');
    const files = critDecode(path.join(img, 'files.img')).entries;
    expect(files.find((f: any) => f.id === remap[0].remap_id)?.reg?.name).toBe(path.join(dir, link!));
    expect(files.find((f: any) => f.id === remap[0].orig_id)?.reg?.name).toBe(a);
    const r = restoreDir(img);
    expect(r.code, r.stderr).toBe(0);
    expect(remaps()).toEqual([]);
    expect(readdirSync(dir).filter((n) => n === 'a')).toEqual([]);
    expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${a} (deleted)`);
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    const fd = openSync(`/proc/${w.pid}/fd/3`, 'r+');
    writeSync(fd, 'J', 0);
    closeSync(fd);
    expect(readFileSync(b, 'utf8')).toBe('Jello');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('--link-remap with the removed name\'s directory removed too (zdtm unlink_regular00): the link goes in the directory above, the restore opens the same file by it and removes it', () => {
    const dir = tmp('link-remap-rmdir');
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    const a = path.join(sub, 'a');
    const b = path.join(dir, 'b');
    writeFileSync(a, 'hello');
    linkSync(a, b);
    const w = startWorkload('launch', ['/bin/sh', '-c', `exec 3<>${a}; rm ${a}; rmdir ${sub}; exec sleep 1000`], dir);
    for (let i = 0; i < 500 && !(existsSync(sub) === false && readlinkSync(`/proc/${w.pid}/exe`).endsWith('/sleep')); i++) sleep(10);
    expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${a} (deleted)`);
    const remaps = () => readdirSync(dir).filter((n) => n.startsWith('link_remap.'));
    const img = tmp('link-remap-rmdir-img');
    const d = criu(['dump', '-t', String(w.pid), '-D', img, '--link-remap']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const [link] = remaps();
    expect(link).toMatch(/^link_remap\.\d+$/);
    expect(statSync(path.join(dir, link!)).ino).toBe(statSync(b).ino);
    const remap = critDecode(path.join(img, 'remap-fpath.img')).entries;
    const files = critDecode(path.join(img, 'files.img')).entries;
    expect(files.find((f: any) => f.id === remap[0].remap_id)?.reg?.name).toBe(path.join(dir, link!));
    const r = restoreDir(img);
    expect(r.code, r.stderr).toBe(0);
    expect(remaps()).toEqual([]);
    expect(existsSync(sub)).toBe(false);
    // the same inode as b (what it was), opened by the link's name (the removed one's directory is gone)
    expect(statSync(`/proc/${w.pid}/fd/3`).ino).toBe(statSync(b).ino);
    expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${path.join(dir, link!)} (deleted)`);
    const fd = openSync(`/proc/${w.pid}/fd/3`, 'r+');
    writeSync(fd, 'J', 0);
    closeSync(fd);
    expect(readFileSync(b, 'utf8')).toBe('Jello');
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });

  it('an inotify watch on a file unlinked since (its inode alive in the tree) is refused by name at dump, not left to fail the restore', () => {
    const dir = tmp('watch-unlinked');
    const p = path.join(dir, 'watched');
    const py = `import ctypes, os, time\nl = ctypes.CDLL(None, use_errno=True)\nfd = l.inotify_init1(0)\nf = os.open(${JSON.stringify(p)}, os.O_CREAT | os.O_RDWR)\nassert l.inotify_add_watch(fd, ${JSON.stringify(p)}.encode(), 2) >= 0\nos.unlink(${JSON.stringify(p)})\ntime.sleep(1000)`;
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', py], dir);
    for (let i = 0; i < 500; i++) {
      try {
        if (readlinkSync(`/proc/${w.pid}/fd/4`).endsWith(' (deleted)')) break;
      } catch {
        /* not yet */
      }
      sleep(10);
    }
    expect(readlinkSync(`/proc/${w.pid}/fd/4`)).toBe(`${p} (deleted)`);
    expectDumpRefused(w.pid, new RegExp(`anon_inode:inotify.*a watch on ${p}, unlinked since .* is not supported yet`), 'watch-unlinked');
    expect(alive(w.pid)).toBe(true);
    expect(procStatus(w.pid)['TracerPid']).toBe('0');
  });

  it.skipIf(!CRIU)('--link-remap both ways with CRIU 4.2: each restores the file the other linked, on the same inode, the link gone', () => {
    for (const [dumper, restorer] of [['CRIU', 'us'], ['us', 'CRIU']] as const) {
      const { dir, a, b, w } = holdingRemoved(`link-remap-${dumper}`);
      const img = tmp(`link-remap-${dumper}-img`);
      runBy(dumper, img, ['dump', '-t', String(w.pid), '-D', img, '--link-remap', '-o', 'dump.log', '-v4']);
      expect(waitReaped(w.pid)).toBe(true);
      expect(readdirSync(dir).filter((n) => n.startsWith('link_remap.')), dumper).toHaveLength(1);
      runBy(restorer, img, ['restore', '-D', img, '-d', '-o', 'restore.log', '-v4']);
      expect(readdirSync(dir).filter((n) => n.startsWith('link_remap.')), restorer).toEqual([]);
      expect(readlinkSync(`/proc/${w.pid}/fd/3`)).toBe(`${a} (deleted)`);
      expect(statSync(`/proc/${w.pid}/fd/3`).ino, `${dumper} -> ${restorer}`).toBe(statSync(b).ino);
      killTree(w.pid);
      expect(waitGone(w.pid)).toBe(true);
    }
  });

  it('a working directory in the /proc directory of a process gone is refused by name at dump (exit 4), the tree left running', () => {
    const py = 'import os, signal, time\npid = os.fork()\nif pid == 0:\n    time.sleep(1000)\nos.chdir("/proc/%d" % pid)\nos.kill(pid, signal.SIGKILL)\nos.waitpid(pid, 0)\ntime.sleep(1000)';
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', py], tmp('unhashed-cwd'));
    let gone = false;
    for (let i = 0; i < 500 && !gone; i++) {
      try {
        const cwd = readlinkSync(`/proc/${w.pid}/cwd`);
        gone = /^\/proc\/\d+/.test(cwd) && !alive(Number(/\d+/.exec(cwd)![0]));
      } catch {
        /* not yet */
      }
      if (!gone) sleep(10);
    }
    expect(gone).toBe(true);
    expectDumpRefused(w.pid, /working directory \/proc\/\d+, a \/proc directory of a process gone, is not supported yet/, 'unhashed-cwd');
    expect(alive(w.pid)).toBe(true);
    expect(procStatus(w.pid)['TracerPid']).toBe('0');
  });
});
