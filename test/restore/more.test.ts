/**
 * Issue 15, more of what real programs hold: unix sockets whose peer is outside the dumped tree
 * (--ext-unix-sk for a datagram socket connected to a named one; --external unix[INO] with
 * --inherit-fd for a stream connection); AIO rings (io_setup); fanotify groups. Each round-tripped twice under
 * the state fingerprint, the images decoded by Debian's crit.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, fingerprint, NOT_CARRIED_YET } from '@crtools/inspect';
import { alive, askVerdict, critDecode, criu, haveCrit, killAllStarted, killTree, killTreeAndWait, startWorkload, tmp, treePids, waitGone, waitReaped, type Workload } from '../dump/helpers.js';
import { killRestored, roundTrip } from './roundtrip.js';
import { peerDgrams, restoreWithSocket, socketIno, startUnixPeer } from './unixext.js';
import { unmountFanotifyTmpfs } from './fanotify.js';

afterEach(killRestored);

/** files.img's records of sockets outside the tree (uflags EXTERN), as Debian's crit decodes them */
function externs(dir: string): { ino: number; type: number; state: number; name: string }[] {
  const files = critDecode(`${dir}/files.img`).entries as any[];
  return files.filter((f) => f.usk && Number(f.usk.uflags) & 1).map((f) => ({
    ino: Number(f.usk.ino), type: Number(f.usk.type), state: Number(f.usk.state), name: String(f.usk.name).replace(/=00$/, ''), // (crit shows the path's terminating NUL as =00)
  }));
}

describe('unix sockets whose peer is outside the tree', () => {
  let peer: Workload;
  let peerDir = '';
  const setup = () => {
    if (!peer) ({ dir: peerDir, peer } = startUnixPeer());
  };
  afterAll(() => {
    const pid = peer?.pid;
    killAllStarted();
    if (pid) expect(waitGone(pid)).toBe(true);
  });

  it('a datagram socket connected to a named one outside (--ext-unix-sk): connected to that name again, twice', () => {
    setup();
    let sent = peerDgrams(peer);
    roundTrip('unixext', ['dgram', peerDir], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
      // the datagram reached the peer outside
      const now = peerDgrams(peer);
      expect(now).toBeGreaterThan(sent);
      sent = now;
    }, true, undefined, [], (dir) => {
      // the peer's own record (as CRIU writes it: a datagram socket "listening" under its name)
      expect(externs(dir)).toEqual([expect.objectContaining({ type: 2, state: 10, name: `${peerDir}/d.sock` })]);
    }, ['--ext-unix-sk'], ['--ext-unix-sk']);
  });

  it('refused by name: without --ext-unix-sk; a stream peer with --ext-unix-sk; a restore without --ext-unix-sk', () => {
    setup();
    const d = startWorkload('unixext', ['dgram', peerDir]);
    const s = startWorkload('unixext', ['stream', peerDir]);
    try {
      const r1 = criu(['dump', '-t', String(d.pid), '-D', tmp('ext-no'), '-o', 'dump.log']);
      expect(r1.code).toBe(4);
      expect(r1.stderr).toMatch(/outside the dumped tree, which is not supported without --ext-unix-sk/);
      const r2 = criu(['dump', '-t', String(s.pid), '-D', tmp('ext-stream'), '-o', 'dump.log', '--ext-unix-sk']);
      expect(r2.code).toBe(4);
      expect(r2.stderr).toMatch(/the peer is a stream socket, half a connection \(--external unix\[\d+\] names it/);
      const c = criu(['dump', '--check-only', '-t', String(s.pid), '-D', tmp('ext-check'), '--ext-unix-sk']);
      expect(c.code).toBe(4);
      // other forms of --external are refused by name
      const r3 = criu(['dump', '-t', String(s.pid), '-D', tmp('ext-dev'), '-o', 'dump.log', '--external', 'dev[8/1]:y']);
      expect(r3.code).toBe(4);
      expect(r3.stderr).toMatch(/--external dev\[8\/1\]:y is not supported yet/);
      // both trees resumed intact
      expect(askVerdict(d.state, d.pid)).toBe('check ok');
      expect(askVerdict(s.state, s.pid)).toBe('check ok');
      // a dump with it, left running: its restore needs --ext-unix-sk too
      const dir = tmp('ext-restore-no');
      expect(criu(['dump', '-t', String(d.pid), '-D', dir, '-o', 'dump.log', '--ext-unix-sk', '-R']).code).toBe(0);
      const r4 = criu(['restore', '-D', dir, '-d', '-o', 'restore.log']);
      expect(r4.code).toBe(4);
      expect(r4.stderr).toMatch(/restored with --ext-unix-sk \(connected to that name again\) or from a descriptor handed over/);
      expect(askVerdict(d.state, d.pid)).toBe('check ok');
    } finally {
      for (const w of [d, s]) {
        killTree(w.pid);
        expect(waitGone(w.pid)).toBe(true);
      }
    }
  });

  it('a stream connection to a listener outside (--external unix[INO]): restored from a descriptor handed over (--inherit-fd), twice', () => {
    setup();
    const w = startWorkload('unixext', ['stream', peerDir]);
    try {
      for (let round = 0; round < 2; round++) {
        const ino = socketIno(w.pid, 3);
        const dir = tmp(`ext-stream-${round}`);
        const before = fingerprint(w.pid);
        const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--external', `unix[${ino}]`]);
        expect(d.code, d.stderr).toBe(0);
        expect(waitReaped(w.pid)).toBe(true);
        // the peer (the listener's accepted end) has a record of its own, under the listener's name
        expect(externs(dir)).toEqual([expect.objectContaining({ type: 2, state: 10, name: `${peerDir}/s.sock` })]);
        if (round === 0) {
          const no = criu(['restore', '-D', dir, '-d', '-o', 'restore-no.log']);
          expect(no.code).toBe(4);
          expect(no.stderr).toMatch(new RegExp(`restored only from a descriptor handed over, --inherit-fd 'fd\\[N\\]:socket:\\[${ino}\\]'`));
          expect(alive(w.pid)).toBe(false);
        }
        const r = restoreWithSocket(dir, peerDir, ino);
        expect(r.code, r.stderr).toBe(0);
        expect(compareFingerprints(before, fingerprint(w.pid), [...EXPECTED_CHANGES, ...NOT_CARRIED_YET])).toEqual([]);
        // the handed-over connection is the workload's: it talks to the echo peer through it
        expect(askVerdict(w.state, w.pid)).toBe('check ok');
      }
    } finally {
      killTreeAndWait(w.pid);
    }
  });
});

/** mm.img's AIO rings and ring areas, as Debian's crit decodes them */
function aioImage(dir: string, pid: number): { aios: { id: number; ring_len: number; nr_req: number }[]; areas: { start: number; status: number; flags: number }[] } {
  const mm = critDecode(`${dir}/mm-${pid}.img`).entries[0];
  return {
    aios: (mm.aios ?? []).map((a: any) => ({ id: Number(a.id), ring_len: Number(a.ring_len), nr_req: Number(a.nr_req) })),
    // VMA_AREA_AIORING (1 << 13)
    areas: (mm.vmas as any[]).filter((v) => Number(v.status) & (1 << 13)).map((v) => ({ start: Number(v.start), status: Number(v.status), flags: Number(v.flags) })),
  };
}

describe('AIO rings (io_setup)', () => {
  afterAll(killAllStarted);

  it('aiorings: a ring with completed events waiting (head and tail turned) and an empty one: same context ids, same events, io_submit and io_getevents go on, twice', () => {
    roundTrip('aiorings', ['rings'], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (dir, pid) => {
      if (!haveCrit) return;
      // as CRIU 4.2 writes them: each ring's address, length and the io_setup argument giving its size
      const { aios, areas } = aioImage(dir, pid);
      expect(aios.map((a) => [a.ring_len, a.nr_req]).sort()).toEqual([[4096, 62], [8192, 126]]);
      // the ring areas: VMA_AREA_AIORING alone, MAP_SHARED (1)
      expect(areas.map((a) => [a.status, a.flags])).toEqual([[1 << 13, 1], [1 << 13, 1]]);
      expect(aios.map((a) => a.id).sort()).toEqual(areas.map((a) => a.start).sort());
    });
  });

  it('refused by name: a ring a child forked after io_setup maps without its context; the tree goes on', () => {
    const w = startWorkload('aiorings', ['fork']);
    const kids = treePids(w.pid).filter((p) => p !== w.pid);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('aio-fork')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`task ${kids[0]}: AIO ring [0-9a-f]+-[0-9a-f]+ is task ${w.pid}'s ring too`));
    expect(alive(w.pid)).toBe(true);
    expect(treePids(w.pid)).toEqual([w.pid, ...kids]);
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });
});

describe('fanotify groups and their marks', () => {
  afterAll(() => {
    killAllStarted();
    unmountFanotifyTmpfs();
  });

  it('fanotify: inode marks (a file; a directory with its children, an ignored mask surviving modification) and a mount mark, in two groups: events reported as before, twice', () => {
    const dir = tmp('fanotify-marks');
    roundTrip('fanotify', ['marks', dir], (pid, st) => {
      expect(askVerdict(st, pid)).toBe('check ok');
    }, true, undefined, [], (d) => {
      if (!haveCrit) return;
      // as CRIU 4.2 writes them: the groups' flags, each mark inline by file handle or mount
      const groups = (critDecode(`${d}/files.img`).entries as any[]).filter((f) => f.ffy).map((f) => f.ffy);
      expect(groups).toHaveLength(2);
      const marks = groups.flatMap((g) => g.mark as any[]);
      expect(marks.filter((m) => m.type === 'INODE')).toHaveLength(2);
      expect(marks.filter((m) => m.type === 'MOUNT').map((m) => m.me.path)).toEqual([`${dir}/mnt`.slice(1)]);
    });
  });

  it('refused by name: a group with events not read; the tree goes on', () => {
    const dir = tmp('fanotify-pending');
    const w = startWorkload('fanotify', ['pending', dir]);
    const d = criu(['dump', '-t', String(w.pid), '-D', tmp('fanotify-pending-img')]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(new RegExp(`task ${w.pid} fd 3 \\(anon_inode:\\[fanotify\\]\\): fanotify group with \\d+ bytes of events not read`));
    expect(alive(w.pid)).toBe(true);
    killTree(w.pid);
    expect(waitGone(w.pid)).toBe(true);
  });
});
