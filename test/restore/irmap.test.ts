/**
 * --force-irmap and --irmap-scan-path (criu.8): an inotify watch on a file of a filesystem that
 * cannot open files by their kernel handle (procfs: the handle fdinfo shows is an inode number
 * only) has no path a restore could find it by; as CRIU, the dump finds the path by the file's
 * device and inode under the scan paths when asked (--force-irmap), and the restore watches that
 * file again. Without it the watch is written by its handle alone, as CRIU writes it; asked and
 * not found, the dump is refused by name and the tree goes on. Processes are killed by pid.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { askVerdict, criu, killAllStarted, killTree, ourCritDecode, readState, sleep, startWorkload, tmp, waitReaped } from '../dump/helpers.js';
import { restoreRoot } from './roundtrip.js';

const WATCHED = '/proc/sys/kernel/hostname';

// a python3 that watches WATCHED (IN_MODIFY) and says so; on SIGUSR1 "check ok" when its
// inotify descriptor still has that one watch (fdinfo: the same inode)
const PROGRAM = `
import ctypes, os, re, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
wd = libc.inotify_add_watch(fd, ${JSON.stringify(WATCHED)}.encode(), 2)
ino = os.stat(${JSON.stringify(WATCHED)}).st_ino
state = sys.argv[1]
def say(s):
    open(state + ".t", "w").write(s + "\\n"); os.rename(state + ".t", state)
def check(*_):
    w = re.findall(r"inotify wd:(\\w+) ino:(\\w+)", open("/proc/self/fdinfo/%d" % fd).read())
    say("check ok" if w == [("%x" % wd, "%x" % ino)] else "check bad %s" % w)
signal.signal(signal.SIGUSR1, check)
say("watching")
while True: time.sleep(0.05)
`;

const mine: number[] = [];
afterEach(() => {
  for (const p of mine.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

function watcher() {
  const dir = tmp('irmap-watcher');
  const w = startWorkload('launch', ['/usr/bin/python3', '-c', PROGRAM, path.join(dir, 'launch.state')], dir);
  for (let i = 0; i < 500 && readState(w.state) !== 'watching'; i++) sleep(10);
  expect(readState(w.state)).toBe('watching');
  return w;
}

/** the f_handle of each inotify watch in files.img */
function watches(dir: string): { i_ino: number; f_handle: { path?: string } }[] {
  return (ourCritDecode(path.join(dir, 'files.img')).entries as { ify?: { wd: { i_ino: number; f_handle: { path?: string } }[] } }[]).flatMap((e) => e.ify?.wd ?? []);
}

describe('--force-irmap', () => {
  it('a watch on a procfs file: found under --irmap-scan-path and written by its path; restored, the same file watched again', () => {
    const w = watcher();
    mine.push(w.pid);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
    // without --force-irmap: the handle alone, as CRIU writes it (a procfs handle opens nowhere)
    const plain = tmp('irmap-plain');
    const p = criu(['dump', '-t', String(w.pid), '-D', plain, '-o', 'dump.log', '-R']);
    expect(p.code, p.stderr).toBe(0);
    expect(watches(plain).map((x) => x.f_handle.path)).toEqual([undefined]);
    const dir = tmp('irmap');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--force-irmap', '--irmap-scan-path', '/proc/sys/kernel']);
    expect(d.code, d.stderr).toBe(0);
    expect(watches(dir).map((x) => x.f_handle.path)).toEqual([WATCHED]);
    expect(waitReaped(w.pid)).toBe(true);
    expect(restoreRoot(dir, ['--force-irmap'])).toBe(w.pid);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
  });

  it('asked for and not found under the scan paths: refused by name (exit 4), the tree goes on', () => {
    const w = watcher();
    mine.push(w.pid);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('irmap-none'), '-o', 'dump.log', '--force-irmap', '--irmap-scan-path', '/proc/sys/vm']);
    expect(d.code, d.stderr).toBe(4);
    expect(d.stderr.trim()).toMatch(new RegExp(`^criu: task ${w.pid} fd \\d+ \\(anon_inode:inotify\\): the watched file \\(device 0:\\d+, inode \\d+\\) opens by its handle nowhere and is not under the irmap scan paths \\(--irmap-scan-path\\)$`));
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
  });
});
