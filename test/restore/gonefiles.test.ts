/**
 * Files whose names, or whose holders, are gone (issue 15), carried as CRIU 4.2 carries them,
 * round-tripped twice with the workload's own verdict (test/workloads/gonefiles.c), decoded by
 * Debian's crit, and both ways with CRIU 4.2:
 * - an inotify watch on a file unlinked since, which the task still holds (zdtm inotify00): the
 *   watch by its handle alone, found again as the ghost file of that device and inode, made again
 *   before the watch is put on it; writes through the held descriptor come as IN_MODIFY, and the
 *   ghost's names are gone. One on an inode no task of the tree holds is refused by name;
 * - a working directory in the /proc directory of a process gone (zdtm unhashed_proc): that
 *   process's dead pid remap (remap-fpath.img PROCFS), entered by the restore's root while a
 *   process with that pid lives again and kept by the tasks forked after; several such
 *   directories in one tree are refused by name;
 * - --link-remap when the removed name's directory was removed too: the link_remap name in the
 *   nearest directory above that is left (as CRIU 4.2 walks up), the removed directory made for
 *   the while at restore and removed again.
 */
import { closeSync, openSync, readdirSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, askVerdict, critDecode, expectDumpRefused, haveCrit, killAllStarted, killTree, ourCritDecode, procStatus, sleep, startWorkload, tmp, treePids, waitGone, waitReaped } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';
import { CRIU, runBy } from './criu-ref.js';

afterEach(() => {
  killRestored();
  killAllStarted();
});

const decode = (f: string) => (haveCrit ? critDecode(f) : ourCritDecode(f));
const ok = (mode: string) => (pid: number, state: string) => expect(askVerdict(state, pid)).toBe(`check ok ${mode}`);

/**
 * Dumped by one tool, restored by the other (CRIU 4.2 keeps the pids), the workload's verdict
 * after: `check ok MODE`, or what `byCriu` says a restore by CRIU 4.2 gives (as it gives from its own dump).
 */
function across(mode: string, dumpArgs: string[] = [], byCriu = `check ok ${mode}`, pairs: [('CRIU' | 'us'), ('CRIU' | 'us')][] = [['CRIU', 'us'], ['us', 'CRIU']]): void {
  for (const [dumper, restorer] of pairs) {
    const dir = tmp(`gone-${mode}-${dumper}`);
    const w = startWorkload('gonefiles', [mode, dir]);
    const pids = treePids(w.pid);
    const img = tmp(`gone-${mode}-${dumper}-img`);
    runBy(dumper, img, ['dump', '-t', String(w.pid), '-D', img, '-o', 'dump.log', '-v4', ...dumpArgs]);
    for (const p of pids) expect(waitReaped(p)).toBe(true);
    runBy(restorer, img, ['restore', '-D', img, '-d', '-o', 'restore.log', '-v4']);
    const want = restorer === 'CRIU' ? byCriu : `check ok ${mode}`;
    expect(askVerdict(w.state, w.pid), `${dumper} -> ${restorer}`).toBe(want);
    if (want === `check ok ${mode}`) expect(askVerdict(w.state, w.pid), `${dumper} -> ${restorer}`).toBe(want);
    killTree(w.pid);
    for (const p of pids) expect(waitGone(p)).toBe(true);
  }
}

describe('an inotify watch on a file unlinked since (zdtm inotify00)', () => {
  it('held by the task: the watch comes back on the ghost file made of it, IN_MODIFY on a write through the held fd, the ghost gone', () => {
    const dir = tmp('gone-watch');
    roundTrip('gonefiles', ['watch', dir], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok watch');
      expect(readdirSync(dir).filter((n) => !n.includes('.state'))).toEqual([]);
    }, true, undefined, [
      // (its inode number is the ghost's either way: the fingerprint names both deleted#1)
      { path: /^tasks\[\d+\]\.fds\[4\]\.fdinfo$/, why: "the watched file is the ghost made again: its kernel file handle is the new inode's", keep: (v) => String(v).replace(/ f_handle:[0-9a-f]+/, '') },
    ], (img) => {
      // as CRIU 4.2 writes it: the watch's handle without a path, the file a ghost of the same device and inode
      const ify = decode(path.join(img, 'files.img')).entries.find((f: any) => f.type === 'INOTIFY').ify;
      const wd = ify.wd.find((x: any) => Number(x.wd) === 3);
      expect(wd.f_handle.path).toBeUndefined();
      const remaps = decode(path.join(img, 'remap-fpath.img')).entries;
      expect(remaps.map((r: any) => r.remap_type)).toEqual(['GHOST']);
      const head = decode(path.join(img, `ghost-file-${Number(remaps[0].remap_id).toString(16)}.img`)).entries[0];
      expect([Number(head.dev), Number(head.ino)]).toEqual([Number(wd.s_dev), Number(wd.i_ino)]);
    });
  });

  it.skipIf(!CRIU)('dumped by CRIU 4.2, restored by us: the watch on the ghost as dumped', () => across('watch', [], undefined, [['CRIU', 'us']]));

  // CRIU 4.2's restore links the ghost at the file's name, opens it there and unlinks that name,
  // then puts the watch on through the ghost's own name, whose unlinking at the end (the inode's
  // last link: the kernel's inode-removal notice) ends the watch, IN_DELETE_SELF and IN_IGNORED
  // queued: so it restores its own dump, and ours the same
  it.skipIf(!CRIU)('dumped by us, restored by CRIU 4.2: as CRIU 4.2 restores its own dump of it (the watch ended, IN_DELETE_SELF | IN_IGNORED)', () =>
    across('watch', [], 'check bad watch events modified=0 other=2 masks=0x8400', [['us', 'CRIU'], ['CRIU', 'CRIU']]));

  it('on an inode no task of the tree holds (an outside process does) is refused by name, the tree left running', () => {
    const dir = tmp('gone-watch-outside');
    const p = path.join(dir, 'watched');
    writeFileSync(p, 'x');
    const held = openSync(p, 'r');
    try {
      const py = `import ctypes, time\nl = ctypes.CDLL(None, use_errno=True)\nfd = l.inotify_init1(0)\nassert l.inotify_add_watch(fd, ${JSON.stringify(p)}.encode(), 2) >= 0\nopen(${JSON.stringify(path.join(dir, 'ready'))}, 'w').close()\ntime.sleep(1000)`;
      const w = startWorkload('launch', ['/usr/bin/python3', '-c', py], dir);
      for (let i = 0; i < 500 && !readdirSync(dir).includes('ready'); i++) sleep(10);
      unlinkSync(p);
      expectDumpRefused(w.pid, new RegExp(`^criu: task ${w.pid} fd 3 \\(anon_inode:inotify\\): watch 1: a watch on ${p}, unlinked since, whose inode no task of the tree holds open or mapped \\(nothing to make it again from\\), which is not supported$`), 'gone-watch-outside');
      expect(alive(w.pid)).toBe(true);
      expect(procStatus(w.pid)['TracerPid']).toBe('0');
    } finally {
      closeSync(held);
    }
  });
});

describe('a working directory in the /proc directory of a process gone (zdtm unhashed_proc)', () => {
  it('the root\'s and a child\'s: still there (getcwd ENOENT, /proc/self/cwd as it read), the pid free again; remap-fpath.img PROCFS', () =>
    roundTrip('gonefiles', ['cwd', tmp('gone-cwd')], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok cwd');
      const gone = Number(/^\/proc\/(\d+) \(deleted\)$/.exec(readlinkSync(`/proc/${pid}/cwd`))![1]);
      expect(alive(gone)).toBe(false);
    }, true, undefined, [], (img, pid) => {
      const remaps = decode(path.join(img, 'remap-fpath.img')).entries;
      expect(remaps.map((r: any) => r.remap_type)).toEqual(['PROCFS']);
      const fs = decode(path.join(img, `fs-${pid}.img`)).entries[0];
      expect(remaps[0].orig_id).toBe(fs.cwd_id);
      const cwd = decode(path.join(img, 'files.img')).entries.find((f: any) => f.id === fs.cwd_id);
      expect(cwd.reg.name).toBe(`/proc/${remaps[0].remap_id}`);
    }));

  it.skipIf(!CRIU)('both ways with CRIU 4.2', () => across('cwd'));

  it('two tasks in the /proc directories of two processes gone: refused by name (the restore enters one), the tree left running', () => {
    const dir = tmp('gone-cwd2');
    const ready = path.join(dir, 'ready');
    const py = `import os, signal, time\na = os.fork()\nif a == 0:\n    time.sleep(1000)\nb = os.fork()\nif b == 0:\n    time.sleep(1000)\nc = os.fork()\nif c == 0:\n    os.chdir("/proc/%d" % a)\n    time.sleep(1000)\nos.chdir("/proc/%d" % b)\ntime.sleep(0.3)\nfor p in (a, b):\n    os.kill(p, signal.SIGKILL)\n    os.waitpid(p, 0)\nopen(${JSON.stringify(ready)}, "w").close()\ntime.sleep(1000)`;
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', py], dir);
    for (let i = 0; i < 500 && !readdirSync(dir).includes('ready'); i++) sleep(10);
    expect(treePids(w.pid)).toHaveLength(2);
    expectDumpRefused(w.pid, /working directory \/proc\/\d+, a \/proc directory of a process gone, is not supported beside another task's in \/proc\/\d+$/, 'gone-cwd2');
    expect(alive(w.pid)).toBe(true);
    expect(procStatus(w.pid)['TracerPid']).toBe('0');
  });
});

describe('--link-remap when the removed name\'s directory was removed too', () => {
  it('the link in the nearest directory left above it, the same inode back, the directory and the link gone again', () => {
    const dir = tmp('gone-lremap');
    roundTrip('gonefiles', ['lremap', dir], ok('lremap'), true, undefined, [], (img) => {
      const remaps = decode(path.join(img, 'remap-fpath.img')).entries;
      expect(remaps.map((r: any) => r.remap_type)).toEqual(['LINKED']);
      const files = decode(path.join(img, 'files.img')).entries;
      expect(files.find((f: any) => f.id === remaps[0].orig_id).reg.name).toBe(path.join(dir, 'sub/a'));
      expect(files.find((f: any) => f.id === remaps[0].remap_id).reg.name).toBe(path.join(dir, `link_remap.${remaps[0].remap_id}`));
      expect(readdirSync(dir).filter((n) => !n.includes('.state')).sort()).toEqual(['b', `link_remap.${remaps[0].remap_id}`]);
    }, ['--link-remap']);
  });

  it.skipIf(!CRIU)('both ways with CRIU 4.2', () => across('lremap', ['--link-remap']));
});
