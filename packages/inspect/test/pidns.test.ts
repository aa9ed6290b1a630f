import { describe, expect, it } from 'vitest';
import { compareFingerprints, insideView, type Fingerprint } from '../src/index.js';

/** a tree in its own pid namespace: init (outer pid `root`) with a thread and a child */
function print(root: number, sigBlk = '0'): Fingerprint {
  const child = root + 5;
  const thread = root + 7;
  const base = { comm: 'w', exe: '/bin/w', cwd: '/', root: '/', cmdline: 'w', limits: {}, cgroup: '', loginuid: '', sessionid: '', personality: '', timerslack_ns: '', oom_score_adj: '', coredump_filter: '', lsm: '', ns: {}, timers: [], auxv: '', procOwner: '', areas: [], fds: {} };
  return {
    schema: 1,
    root,
    tasks: [
      {
        ...base, pid: root,
        status: { Tgid: String(root), Pid: String(root), PPid: '77', NStgid: `${root}\t1`, NSpid: `${root}\t1`, NSpgid: `${root}\t1`, NSsid: `${root}\t1`, SigBlk: sigBlk },
        stat: { ppid: '77', pgrp: String(root), session: String(root), tpgid: '-1' },
        threads: [{ tid: root, status: { NSpid: `${root}\t1` }, stat: {} }, { tid: thread, status: { NSpid: `${thread}\t4` }, stat: {} }],
        fds: { '3': { target: 'anon_inode:[pidfd]', fdinfo: ['pos: 0', `Pid: ${child}`, `NSpid: ${child}\t2`, `ino: (the pidfs inode of process ${child})`], fcntl: { F_GETOWN_EX: `1:${child}` } } },
        shares: { files: root, fs: root, vm: root, sighand: root },
      },
      {
        ...base, pid: child,
        status: { Tgid: String(child), Pid: String(child), PPid: String(root), NSpid: `${child}\t2` },
        stat: { ppid: String(root), pgrp: String(root), session: String(root) },
        threads: [{ tid: child, status: { NSpid: `${child}\t2` }, stat: {} }],
        shares: { files: child, fs: child, vm: child, sighand: child },
      },
    ],
    sharedPages: [[`${root}:1000`, `${child}:1000`]],
    pageDigests: { [`${child}:2000`]: 'ab' },
  };
}

describe('insideView', () => {
  it('names tasks, threads and their pid fields as the namespace sees them', () => {
    const v = insideView(print(500));
    expect(v.root).toBe(1);
    expect(v.tasks.map((t) => t.pid)).toEqual([1, 2]);
    expect(v.tasks[0]!.threads.map((t) => t.tid)).toEqual([1, 4]);
    expect(v.tasks[0]!.status).toMatchObject({ Tgid: '1', Pid: '1', PPid: '77', NSpid: '1', NSsid: '1' });
    expect(v.tasks[1]!.stat).toMatchObject({ ppid: '1', pgrp: '1', session: '1' });
    expect(v.tasks[0]!.stat.tpgid).toBe('-1');
    expect(v.tasks[1]!.shares.vm).toBe(2);
    expect(v.sharedPages).toEqual([['1:1000', '2:1000']]);
    expect(v.pageDigests).toEqual({ '2:2000': 'ab' });
    expect(v.tasks[0]!.fds['3']!.fdinfo).toEqual(['pos: 0', 'Pid: 2', 'NSpid: 2', 'ino: (the pidfs inode of process 2)']);
    expect(v.tasks[0]!.fds['3']!.fcntl).toEqual({ F_GETOWN_EX: '1:2' });
  });

  it('a terminal\'s session and foreground group (TIOCGSID, TIOCGPGRP) by the pids inside; other tty fields and "none" as they are', () => {
    const f = print(500);
    f.tasks[1]!.fds['0'] = { target: '/dev/pts/3', fdinfo: [], fcntl: {}, tty: { TIOCGSID: 500, TIOCGPGRP: 505, TIOCGPTN: 3, TIOCGDEV: 500 } };
    f.tasks[1]!.fds['1'] = { target: '/dev/pts/4', fdinfo: [], fcntl: {}, tty: { TIOCGSID: -25, TIOCGPGRP: 0 } };
    const v = insideView(f);
    expect(v.tasks[1]!.fds['0']!.tty).toEqual({ TIOCGSID: 1, TIOCGPGRP: 2, TIOCGPTN: 3, TIOCGDEV: 500 });
    expect(v.tasks[1]!.fds['1']!.tty).toEqual({ TIOCGSID: -25, TIOCGPGRP: 0 });
  });

  it('two trees at other outer pids compare equal inside; a real difference stays one', () => {
    expect(compareFingerprints(insideView(print(500)), insideView(print(900)))).toEqual([]);
    expect(compareFingerprints(insideView(print(500)), insideView(print(900, '1')))).toEqual([
      { path: 'tasks[1].status.SigBlk', before: '0', after: '1' },
    ]);
  });
});
