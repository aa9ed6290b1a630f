/**
 * More kinds of file state (issue 15), round-tripped twice with the state fingerprint and the
 * workload's own verdict (test/workloads/fsmisc.c), and what stays refused by name: the dump
 * exits 4 naming the task and the object (a lease without --file-locks: exit 1, as other locks), `--check-only` lists it, the tree runs on untouched.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { askVerdict, criu, critDecode, haveCrit, killAllStarted, ourCritDecode, startWorkload, tmp, treePids, waitGone, killTree } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';
import type { ExpectedChange } from '@crtools/inspect';

afterEach(killRestored);
afterAll(() => killAllStarted());

const ok = (mode: string) => (pid: number, state: string) => expect(askVerdict(state, pid)).toBe(`check ok ${mode}`);

describe('carried', () => {
  it('a removed working directory: still the cwd (nlink 0, mode 0710, its name " (deleted)"), nothing can be made in it', () =>
    roundTrip('fsmisc', ['cwd', tmp('fs-cwd')], ok('cwd')));

  it('a removed directory held open (O_DIRECTORY): an empty directory, unlinked, mode 0750', () =>
    roundTrip('fsmisc', ['udir', tmp('fs-udir')], ok('udir')));

  it('a removed directory held open whose parent was removed too: the parent is made for the while and removed again', () =>
    roundTrip('fsmisc', ['udir2', tmp('fs-udir2')], ok('udir2')));

  it('a child chroot()ed without a chdir(): its root the directory, its working directory outside it, as they were', () =>
    roundTrip('fsmisc', ['chroot', tmp('fs-chroot')], (pid, st) => {
      expect(treePids(pid)).toHaveLength(2);
      expect(askVerdict(st, pid)).toBe('check ok chroot');
    }));

  it('/proc/self/status held open: it reads the restored task (same pid)', () =>
    roundTrip('fsmisc', ['proc', tmp('fs-proc')], ok('proc'), true, undefined, [
      { path: /^tasks\[\d+\]\.fds\[3\]\.fdinfo$/, why: "a /proc/PID file's inode is the restored task's", keep: (v) => String(v).replace(/"ino: \d+"/, '') },
    ]));

  it('a dangling symbolic link held by O_PATH|O_NOFOLLOW: still the link itself, its target as it was (CRIU zdtm symlink)', () =>
    roundTrip('fsmisc', ['symlink', tmp('fs-symlink')], ok('symlink')));
  it('an unlinked symbolic link held by O_PATH|O_NOFOLLOW: made again with its target, owner and times, unlinked again (CRIU zdtm symlink01)', () =>
    roundTrip('fsmisc', ['usymlink', tmp('fs-usymlink')], ok('usymlink')));

  it('an epoll target whose fd was closed (a dup still open): watched again through the dup, its data kept', () =>
    // as CRIU 4.2 writes it, the target is added again under the descriptor that holds the file
    roundTrip('fsmisc', ['epoll', tmp('fs-epoll')], ok('epoll'), true, undefined, [
      { path: /^tasks\[\d+\]\.fds\[4\]\.fdinfo$/, why: 'the closed target is watched again under the dup that holds its file (CRIU 4.2 does the same)', keep: (v) => String(v).replace(/tfd: \d+ /, '') },
    ]));

  it('a read lease (F_SETLEASE, --file-locks): held again, and a writer\'s open still breaks it (EWOULDBLOCK, SIGIO to the holder)', () =>
    roundTrip('fsmisc', ['lease', tmp('fs-lease')], ok('lease'), true, undefined, [], undefined, ['--file-locks'], ['--file-locks']));

  it('a write lease (F_WRLCK, --file-locks): held again, a reader\'s open breaks it', () =>
    roundTrip('fsmisc', ['wlease', tmp('fs-wlease')], ok('wlease'), true, undefined, [], undefined, ['--file-locks'], ['--file-locks']));

  it('MAP_SHARED of /dev/zero, shared with a child: contents kept, still shared both ways', () =>
    roundTrip('fsmisc', ['devzero', tmp('fs-devzero')], ok('devzero')));

  it('unlinked device nodes held open (/dev/null and /dev/zero made with mknod): ghost files with their device numbers, modes and flags, unlinked again, still working', () => {
    const dir = tmp('fs-devnode');
    roundTrip('fsmisc', ['devnode', dir], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok devnode');
      expect(readdirSync(dir)).toEqual([]); // nothing of the restore is left under a name
    }, true, undefined, [], (img) => {
      // a ghost head each, with its device number (as stat(2) gives it) and no contents; Debian's crit decodes them
      const heads = readdirSync(img).filter((f) => f.startsWith('ghost-file-')).map((f) => {
        const doc = haveCrit ? critDecode(path.join(img, f)) : ourCritDecode(path.join(img, f));
        expect(doc.entries).toHaveLength(1);
        return doc.entries[0];
      });
      // (crit shows what follows the head as its `extra`: nothing, for a device)
      expect(heads.map((h: any) => [Number(h.mode), Number(h.rdev), h.extra ?? '']).sort()).toEqual([[0o20604, 0x105, ''], [0o20640, 0x103, '']]);
    });
  });
});

describe('refused by name', () => {
  /** check-only names each (regexes, in order), a dump exits 4 with the first, the workload runs on */
  function refused(mode: string, named: RegExp[], code = 4): void {
    const w = startWorkload('fsmisc', [mode, tmp(`fs-${mode}`)]);
    const pids = treePids(w.pid);
    try {
      const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp(`fs-${mode}-check`), '-o', 'check.log']);
      expect(c.code, c.stderr).toBe(code);
      const lines = c.stderr.trim().split('\n');
      expect(lines).toHaveLength(named.length + 1);
      named.forEach((re, i) => expect(lines[i]).toMatch(re));
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp(`fs-${mode}-dump`), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(code);
      expect(d.stderr.trim().split('\n')).toHaveLength(1);
      expect(d.stderr.trim()).toMatch(named[0]!);
      expect(treePids(w.pid).sort()).toEqual(pids.sort());
      expect(askVerdict(w.state, w.pid)).toBe(`check ok ${mode}`);
    } finally {
      killTree(w.pid);
      for (const p of pids) expect(waitGone(p)).toBe(true);
    }
  }

  it('a file lease without --file-locks (as CRIU 4.2: the option keeps it)', () =>
    refused('lease', [/^criu: task \d+ fd 3 \(.*\/leased\): a LEASE READ lock is held; dump with --file-locks to keep it$/], 1));
  it('an io_uring: its descriptor and its ring', () =>
    refused('iouring', [
      /^criu: task \d+: mapping [0-9a-f]+-[0-9a-f]+ anon_inode:\[io_uring\]: an io_uring ring is not supported yet$/,
      /^criu: task \d+ fd 3: anon_inode:\[io_uring\] is not supported/,
    ]));
  it('an epoll target held only by another task', () =>
    refused('epollchild', [/^criu: task \d+ fd 4 \(anon_inode:\[eventpoll\]\): watches a file no longer open at fd \d+ nor at any other descriptor of the task/]));
  it('/proc/PID of a process outside the tree', () =>
    refused('procout', [/^criu: task \d+ fd 3 \(\/proc\/\d+\/status\): a file of process \d+, outside the dumped tree, is not supported/]));
});

/**
 * The /proc files at the descriptors `path` names (the root's 3, 4 and 10, the child's and
 * grandchild's 5, 7, 8 and 11, the epoll watching 11 at 12; the gone process's 9 and 13) are
 * opened anew: their inodes are the restored tasks'. The namespace files keep theirs (the root's
 * 5 is one, which the workload checks by inode itself).
 */
function procInodes(path: RegExp): ExpectedChange {
  return { path, why: "a /proc/PID file's inode is the restored task's", keep: (v) => String(v).replace(/"ino: \d+"/, '').replace(/ ino:[0-9a-f]+/, '') };
}

describe('/proc files of the tree\'s other tasks and threads, namespace files (issue 15)', () => {
  it('carried: the root holds a child\'s /proc/PID/status (at an offset) and its thread\'s /proc/PID/task/TID/comm, the files of its network and the child\'s UTS namespace; the child\'s /proc/self/stat (close-on-exec, at an offset) is one open file with its child\'s, which holds the thread\'s stat; the child\'s epoll watching its /proc/self/mountinfo; the root\'s /proc/self/task/TID/comm of a thread of its own; the grandchild\'s /proc/CHILD/status at its lowest free number (where the restore\'s pidfd on the root once landed and took the file away: zdtm child_opened_proc, ns flavour)', () =>
    roundTrip('procfiles', [], (pid, st) => {
      expect(treePids(pid)).toHaveLength(3);
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [procInodes(/^tasks\[\d+\]\.fds\[(3|4|5|7|8|10|11|12)\]\.fdinfo$/)], (dir, pid) => {
      // as CRIU 4.2 writes them: the /proc files as regular files by path, the namespace files as NS entries
      const files = ourCritDecode(path.join(dir, 'files.img')).entries as { type: string; reg?: { name: string }; nsf?: { ns_id: number; ns_cflag: number; flags: number } }[];
      const names = files.filter((f) => f.type === 'REG' && f.reg!.name.startsWith('/proc/')).map((f) => f.reg!.name.replace(/\d+/g, 'N')).sort();
      expect(names).toEqual(['/proc/N/mountinfo', '/proc/N/stat', '/proc/N/status', '/proc/N/status', '/proc/N/task/N/comm', '/proc/N/task/N/comm', '/proc/N/task/N/stat']);
      const ids = ourCritDecode(path.join(dir, `ids-${pid}.img`)).entries[0] as Record<string, number>;
      const ns = files.filter((f) => f.type === 'NS').map((f) => f.nsf!);
      expect(ns.map((n) => [n.ns_id, n.ns_cflag]).sort()).toEqual([[ids.net_ns_id, 0x40000000], [ids.uts_ns_id, 0x04000000]].sort());
      if (haveCrit) {
        const ref = (critDecode(path.join(dir, 'files.img')).entries as typeof files).filter((f) => f.type === 'NS').map((f) => f.nsf);
        expect(ref).toEqual(ns);
      }
    }));

  function refusedProc(mode: string, named: RegExp): void {
    const w = startWorkload('procfiles', [mode]);
    const pids = treePids(w.pid);
    try {
      const c = criu(['dump', '--check-only', '-t', String(w.pid), '-D', tmp(`procfiles-${mode}-check`), '-o', 'check.log']);
      expect(c.code, c.stderr).toBe(4);
      expect(c.stderr.trim().split('\n')[0]).toMatch(named);
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp(`procfiles-${mode}-dump`), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr.trim().split('\n')).toHaveLength(1);
      expect(d.stderr.trim()).toMatch(named);
      expect(treePids(w.pid).sort()).toEqual(pids.sort());
      expect(askVerdict(w.state, w.pid)).toBe('check ok');
    } finally {
      killTree(w.pid);
      for (const p of pids) expect(waitGone(p)).toBe(true);
    }
  }

  it('refused by name: the file of a network namespace no task of the tree lives in', () =>
    refusedProc('netns', /^criu: task \d+ fd 9 \(net:\[\d+\]\): a file of net namespace \d+, in which no task of the dumped tree lives, is not supported/));
  it('refused by name: a child\'s /proc file in flight in a unix socket\'s queue (the restore sends the queues before such files exist)', () =>
    refusedProc('inflight', /^criu: task \d+ fd \d+: a descriptor in flight in its queue is a \/proc file of a task other than the root \(\/proc\/\d+\/status\), which is not supported in flight$/));
  it('/proc/PID/status and /proc/PID of a process gone (exited and reaped), round-tripped twice: made again by a process with that pid, ended once the files are open (remap-fpath.img PROCFS, as CRIU 4.2 writes it)', () =>
    roundTrip('procfiles', ['gone'], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [procInodes(/^tasks\[\d+\]\.fds\[(3|4|5|7|8|9|10|11|12|13)\]\.fdinfo$/)], (dir) => {
      // (Debian's crit knows remap-fpath.img: one PROCFS entry for the process gone)
      const remaps = (haveCrit ? critDecode(path.join(dir, 'remap-fpath.img')) : ourCritDecode(path.join(dir, 'remap-fpath.img'))).entries as { orig_id: number; remap_id: number; remap_type: string }[];
      expect(remaps.map((r) => r.remap_type)).toEqual(['PROCFS']);
      const files = (haveCrit ? critDecode(path.join(dir, 'files.img')) : ourCritDecode(path.join(dir, 'files.img'))).entries as { id: number; type: string; reg?: { name: string } }[];
      const named = files.filter((f) => f.reg && new RegExp(`^/proc/${remaps[0]!.remap_id}(/status)?$`).test(f.reg.name));
      expect(named).toHaveLength(2);
      expect(named.map((f) => f.id)).toContain(remaps[0]!.orig_id);
    }));
});
