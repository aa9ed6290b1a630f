/**
 * Unix sockets' queues and states end to end (workload unixq): descriptors in flight
 * (SCM_RIGHTS) made again and sent with their message, datagrams from several senders each
 * from its own, a datagram socket connected to another with what it received, seqpacket
 * connections (accepted, waiting), shutdowns, a message of no bytes — round-tripped twice with
 * the fingerprint, the workload reading everything back. And what is still refused, named.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killRestored, roundTrip } from './roundtrip.js';
import { askVerdict, criu, critDecode, haveCrit, ourCritDecode, killAllStarted, killTree, startWorkload, tmp, treePids, waitGone } from '../dump/helpers.js';

const mine: number[] = [];
afterEach(() => {
  for (const p of mine.splice(0)) killTree(p);
  killRestored();
});
afterAll(() => killAllStarted());

describe('unix sockets: queues and states', () => {
  it('unixq: descriptors in flight (a pipe with data, a file at its position, a pipe end the task holds too), datagrams from named, abstract, connected and unnamed senders, seqpacket accepted/waiting connections, shutdowns, a zero-length datagram', () => {
    const dir = tmp('unixq');
    roundTrip('unixq', [dir], (pid, st) => {
      expect(treePids(pid)).toEqual([pid]);
      // every message read back with its sender and descriptors, the files through them; then all queued again
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [{
      // sp0 (fd 3): "hdr-A" and "with-fds" were two writes; the peek gives them as one piece (it
      // does not show where a stream write ended), sent again as one with the descriptors: the
      // same bytes and descriptors, one buffer fewer charged to the sender (as with CRIU 4.2)
      path: /\.fds\[3\]\.fcntl\.SIOCOUTQ$/, why: 'stream writes before a message with descriptors are sent again joined to it',
    }], (images) => {
      // the queue as the reference crit reads it (ours without it): SCM_RIGHTS naming files of files.img no descriptor names
      const decode = haveCrit ? critDecode : ourCritDecode;
      const q = decode(path.join(images, 'sk-queues.img'));
      const files = decode(path.join(images, 'files.img')).entries as { id: number; type: string }[];
      const fdinfo = readdirSync(images).filter((f) => f.startsWith('fdinfo-')).flatMap((f) => decode(path.join(images, f)).entries as { id: number }[]);
      const rights = (q.entries as { scm?: { type: number; rights: number[] }[] }[]).flatMap((e) => e.scm ?? []);
      expect(rights.map((s) => s.type)).toEqual([1, 1, 1]); // SCM_RIGHTS: the stream's, the seqpacket's, a datagram's
      const inflight = rights.flatMap((s) => s.rights);
      expect(inflight).toHaveLength(4);
      for (const id of inflight) expect(files.some((f) => f.id === id)).toBe(true);
      // the pipe read end and both opens of f.txt are held by no task; the pipe write end is the task's own
      expect(inflight.filter((id) => !fdinfo.some((f) => f.id === id))).toHaveLength(3);
    });
  });

  it('unixbound: datagram pairs bound to names of their own (abstract, one path name both ends share, unlinked in a removed directory; a path name kept with its mode), a bound datagram socket and a listener in a removed directory, round-tripped twice (zdtm scm06, sk-unix01)', () => {
    const dir = tmp('unixbound');
    roundTrip('unixbound', [dir], (pid, st) => {
      // each name, each queued datagram with its sender's name, a datagram each way; the
      // removed directories still gone (made for the bind and removed again)
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(askVerdict(st, pid)).toBe('check ok');
      expect(readdirSync(dir).sort()).toEqual(['r']);
    }, true, undefined, [], (images) => {
      const decode = haveCrit ? critDecode : ourCritDecode;
      const usks = (decode(path.join(images, 'files.img')).entries as { usk?: { type: unknown; name?: string; deleted?: boolean; peer: number; ino: number } }[])
        .map((f) => f.usk).filter((u) => u !== undefined);
      const dgram = usks.filter((u) => u!.type === 2 || u!.type === 'DGRAM');
      // both ends of the pair bound to gone/q: each the other's peer, both deleted
      const q = dgram.filter((u) => String(u!.name ?? '').replace(/=00$/, '').endsWith('gone/q')); // (crit shows a path's NUL as =00)
      expect(q).toHaveLength(2);
      expect(q.every((u) => u!.deleted === true)).toBe(true);
      expect(q[0]!.peer).toBe(q[1]!.ino);
      expect(q[1]!.peer).toBe(q[0]!.ino);
    });
  });

  it('refused by name, all at once with --check-only (exit 4, the tree runs on, the queues intact): credentials in a queue (SO_PASSCRED), data sent on a connection waiting in a listener\'s queue, a socket in flight, a peer outside the tree', () => {
    const dir = tmp('unixq-refused');
    const w = startWorkload('unixq', [dir, 'refused']);
    const outside = Number(/outside=(\d+)/.exec(readFileSync(w.state, 'utf8'))![1]);
    mine.push(w.pid, outside);
    const r = criu(['dump', '--check-only', '-t', String(w.pid), '-D', dir, '-o', 'check.log']);
    expect(r.code, r.stderr).toBe(4);
    const lines = r.stderr.trim().split('\n');
    const named = [
      new RegExp(`^criu: task ${w.pid} fd \\d+: messages queued with their senders' credentials \\(SO_PASSCRED\\) are not supported`),
      new RegExp(`^criu: task ${w.pid} fd \\d+: socket:\\[\\d+\\] \\(unix socket waiting in the queue of listener socket:\\[\\d+\\] with data sent`),
      new RegExp(`^criu: task ${w.pid} fd \\d+: a descriptor in flight in its queue is a socket \\(socket:\\[\\d+\\]\\), which is not supported in flight$`),
      new RegExp(`^criu: task ${w.pid} fd \\d+: socket:\\[\\d+\\] is connected to socket:\\[\\d+\\] outside the dumped tree, which is not supported without --ext-unix-sk \\(--external unix\\[\\d+\\] names it: restored from a descriptor handed over, --inherit-fd fd\\[N\\]:socket:\\[\\d+\\]\\)$`),
    ];
    expect(lines).toHaveLength(named.length + 1);
    named.forEach((re, i) => expect(lines[i]).toMatch(re));
    expect(lines[named.length]).toBe(`criu: a dump of the tree of ${w.pid} would fail: 4 things in it cannot be dumped`);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
    // a real dump stops at the first, the tree resumed with every queue as it was
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('unixq-refused-dump')]);
    expect(d.code).toBe(4);
    expect(d.stderr.trim()).toMatch(named[0]!);
    expect(askVerdict(w.state, w.pid)).toBe('check ok');
    killTree(w.pid);
    killTree(outside);
    expect(waitGone(w.pid)).toBe(true);
    expect(waitGone(outside)).toBe(true);
    mine.splice(0);
  });
});

describe('unix sockets bound to relative names, the working directory changed since (zdtm sk-unix-rel, fifo_upon_unix_socket01)', () => {
  it('unixrel: one bound and connected to by a relative name, one whose file was replaced by a FIFO (held open), the task in / now: each bound again in its directory under its relative name, the FIFO left at the name, twice', () => {
    const dir = tmp('unixrel');
    roundTrip('unixrel', [dir], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (images) => {
      // as CRIU 4.2 writes them: the relative name with the directory it was bound in
      const usks = (ourCritDecode(path.join(images, 'files.img')).entries as { usk?: { name?: string; name_dir?: string; deleted?: boolean } }[]).map((f) => f.usk).filter((u) => u?.name_dir);
      expect(usks.map((u) => [String(u!.name).replace(/=00$/, ''), u!.name_dir, !!u!.deleted]).sort()).toEqual([['a.sock', dir, false], ['f.sock', dir, true]]);
    });
  });
});

describe('a unix socket whose file a mount covers since (zdtm overmount_sock)', () => {
  it('unixbound with a tmpfs mounted over DIR after DIR/r was bound: the dump refuses DIR/r by name (exit 4), the tree runs on unchanged', () => {
    const dir = tmp('unixbound-over');
    const w = startWorkload('unixbound', [dir]);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'unixbound-over', dir]).status).toBe(0);
    try {
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp('unixbound-over-dump'), '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(4);
      expect(d.stderr).toMatch(new RegExp(`^criu: .*unix socket bound to "${path.join(dir, 'r').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}", whose file lies under a mount made over its directory since \\(the directory now shows another file system\\): binding it again there is not supported by crtools yet`));
      expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    } finally {
      expect(spawnSync('umount', [dir]).status).toBe(0);
    }
    // (the covering mount gone, nothing held it: the tree is as it was)
    expect(askVerdict(w.state, w.pid, 10_000)).toBe('check ok');
  });
});
