import { describe, expect, it } from 'vitest';
import { compareFingerprints, EXPECTED_CHANGES, NOT_CARRIED_YET, type AreaPrint, type Fingerprint } from '../src/index.js';
import { joinAreas } from '../src/memory.js';
import { fdinfoLines, InodeIds } from '../src/fds.js';
import { limitsOf, timersOf } from '../src/task.js';

function print(over: { flags?: string; starttime?: string; sig?: string; shared?: string[][]; fdinfo?: string[] } = {}): Fingerprint {
  return {
    schema: 1,
    root: 10,
    tasks: [
      {
        pid: 10, comm: 'w', exe: '/bin/w', cwd: '/', root: '/', cmdline: 'w',
        status: { SigBlk: over.sig ?? '0000000000000000' }, stat: { flags: over.flags ?? '4194368', starttime: over.starttime ?? '100' },
        limits: {}, cgroup: '', loginuid: '', sessionid: '', personality: '', timerslack_ns: '', oom_score_adj: '', coredump_filter: '', lsm: '', ns: {}, timers: [], auxv: '', procOwner: '',
        threads: [{ tid: 10, status: {}, stat: {} }],
        areas: [{ range: '1000-2000', perms: 'rw-p', pgoff: '0', name: '', deleted: false, backing: '', vmFlags: ['rd', 'wr'], guardPages: 0 }],
        fds: { '3': { target: 'pipe#1', fdinfo: over.fdinfo ?? ['pos: 0'], fcntl: { F_GETFL: 0 } } },
        shares: { files: 10, fs: 10, vm: 10, sighand: 10 },
      },
    ],
    sharedPages: over.shared ?? [],
  };
}

describe('compareFingerprints', () => {
  it('equal prints: no difference', () => {
    expect(compareFingerprints(print(), print())).toEqual([]);
  });

  it('a changed field is named by its path, with both values', () => {
    expect(compareFingerprints(print(), print({ sig: '0000000000000001' }))).toEqual([
      { path: 'tasks[10].status.SigBlk', before: '0000000000000000', after: '0000000000000001' },
    ]);
  });

  it('the start time may change; of stat.flags only PF_FORKNOEXEC, PF_SUPERPRIV and the flags of a call in progress', () => {
    expect(compareFingerprints(print(), print({ starttime: '900', flags: String(4194368 | 0x100) }))).toEqual([]);
    // (a task caught in a system call: PF_BLOCK_TS | PF_MEMALLOC_NOFS, seen in a python3 writing to a socket)
    expect(compareFingerprints(print({ flags: String(0x20440000) }), print({ flags: String(0x400040) }))).toEqual([]);
    // PF_MCE_EARLY (prctl PR_MCE_KILL): the program's own
    expect(compareFingerprints(print(), print({ flags: String(4194368 | 0x8000000) }))).toHaveLength(1);
  });

  it('shared pages are compared as groups: a lost group is a difference, an equal one is not', () => {
    const before = print({ shared: [['10:1000', '11:1000']] });
    expect(compareFingerprints(before, print())).toEqual([{ path: 'sharedPages[10:1000 11:1000]', before: true, after: undefined }]);
    expect(compareFingerprints(before, print({ shared: [['10:1000', '11:1000']] }))).toEqual([]);
    // an expected change naming the groups still forgives them
    expect(compareFingerprints(before, print(), [...EXPECTED_CHANGES, { path: /^sharedPages\[/, why: 'this test lets the sharing go' }])).toEqual([]);
  });

  it('less sharing is a difference: a group split in two, or a page gone from it', () => {
    const before = print({ shared: [['10:1000', '11:1000', '12:1000']] });
    expect(compareFingerprints(before, print({ shared: [['10:1000', '11:1000']] }))).toEqual([
      { path: 'sharedPages[10:1000 11:1000 12:1000]', before: true, after: '10:1000 11:1000 | not shared' },
    ]);
    expect(compareFingerprints(before, print({ shared: [['10:1000', '12:1000'], ['11:1000', '13:1000']] }))).toContainEqual(
      { path: 'sharedPages[10:1000 11:1000 12:1000]', before: true, after: '10:1000 12:1000 | 11:1000 13:1000' },
    );
  });

  it('more sharing only where the contents were equal (pageDigests of the pages before)', () => {
    const before = { ...print({ shared: [['10:1000', '11:1000']] }), pageDigests: { '10:1000': 'aa', '11:1000': 'aa', '12:1000': 'aa', '13:1000': 'bb' } };
    // a child's own copy with the parent's content becomes one page with it again: accepted
    expect(compareFingerprints(before, print({ shared: [['10:1000', '11:1000', '12:1000']] }))).toEqual([]);
    expect(compareFingerprints(before, print({ shared: [['10:1000', '11:1000'], ['12:1000', '99:1000']] }))).toEqual([
      { path: 'sharedPages[12:1000 99:1000]', before: undefined, after: true },
    ]);
    // a page with other content, or one whose content is not known, joined: a difference
    expect(compareFingerprints(before, print({ shared: [['10:1000', '11:1000', '13:1000']] }))).toEqual([
      { path: 'sharedPages[10:1000 11:1000 13:1000]', before: undefined, after: true },
    ]);
    expect(compareFingerprints(print({ shared: [['10:1000', '11:1000']] }), print({ shared: [['10:1000', '11:1000', '12:1000']] }))).toEqual([
      { path: 'sharedPages[10:1000 11:1000 12:1000]', before: undefined, after: true },
    ]);
  });

  it("what is not carried yet is VM_ACCOUNT ('ac') on areas without write (only that flag); huge pages' sharing and their file are compared strictly", () => {
    expect(NOT_CARRIED_YET).toHaveLength(1);
    const [ac] = NOT_CARRIED_YET;
    for (const e of [...EXPECTED_CHANGES, ...NOT_CARRIED_YET]) {
      expect(e.path.test('sharedHugePages[10:7f0000000000 11:7f0000000000]')).toBe(false);
      expect(e.path.test('tasks[10].areas[1000-2000].backing')).toBe(false);
    }
    const path = 'tasks[10].areas[1000-2000].vmFlags';
    expect(ac!.path.test(path)).toBe(true);
    expect(ac!.keep!(JSON.stringify(['ac', 'me', 'rd']))).toBe(ac!.keep!(JSON.stringify(['me', 'rd'])));
    expect(ac!.keep!(JSON.stringify(['ac', 'me', 'rd', 'wr']))).not.toBe(ac!.keep!(JSON.stringify(['me', 'rd', 'wr'])));
    expect(ac!.keep!(JSON.stringify(['me', 'rd', 'lo']))).not.toBe(ac!.keep!(JSON.stringify(['me', 'rd'])));
  });

  it('every expected change says why', () => {
    for (const e of [...EXPECTED_CHANGES, ...NOT_CARRIED_YET]) expect(e.why.length).toBeGreaterThan(20);
  });
});

describe('the parts', () => {
  it('fdinfo: pipe inodes as ids, time left out, epoll targets as a set', () => {
    const ids = new InodeIds();
    expect(ids.of('pipe:[777]')).toBe('pipe#1');
    expect(ids.of('/tmp/x (deleted)', '55')).toBe('deleted#2');
    const a = fdinfoLines('pos:\t0\nflags:\t02\nino:\t777\ntfd:        9 events:       19 data: 9  pos:0 ino:309 sdev:f\ntfd:        4 events:       19 data: 4  pos:0 ino:1 sdev:f\nit_value: (0, 5)\n', ids);
    expect(a).toEqual(['pos: 0', 'flags: 02', 'ino: pipe#1', 'tfd: 4 events: 19 data: 4 pos:0 ino:1 sdev:f', 'tfd: 9 events: 19 data: 9 pos:0 ino:pipe#1 sdev:f']);
  });

  it('limits and timers', () => {
    expect(limitsOf('Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 1048576              files     \n')).toEqual({ 'Max open files': '1024 1048576' });
    expect(timersOf('ID: 0\nsignal: 14/0000000000000000\nnotify: signal/pid.5\nClockID: 1\n')).toEqual(['ID: 0 signal: 14/0000000000000000 notify: signal/pid.5 ClockID: 1']);
  });
});

describe('joinAreas', () => {
  const area = (range: string, over: Partial<AreaPrint> = {}): AreaPrint => ({ range, perms: 'rw-p', pgoff: '0', name: '', deleted: false, backing: '', vmFlags: ['ac', 'rd', 'wr'], guardPages: 0, ...over });

  it('adjacent plain private anonymous areas alike are one (what a restore maps afresh merges)', () => {
    expect(joinAreas([area('1000-5000', { guardPages: 1 }), area('5000-8000', { guardPages: 2 }), area('8000-9000')])).toEqual([area('1000-9000', { guardPages: 3 })]);
  });

  it('areas that differ in anything shown, are apart, or are not plain anonymous private memory stay apart', () => {
    const apart = [
      [area('1000-2000'), area('3000-4000')],
      [area('1000-2000'), area('2000-3000', { perms: 'r--p' })],
      [area('1000-2000'), area('2000-3000', { vmFlags: ['ac', 'gd', 'rd', 'wr'] })],
      [area('1000-2000'), area('2000-3000', { name: '[heap]' })],
      [area('1000-2000', { backing: '08:01 12' }), area('2000-3000', { backing: '08:01 12' })],
      [area('1000-2000', { perms: 'rw-s' }), area('2000-3000', { perms: 'rw-s' })],
      [area('1000-2000'), area('2000-3000', { pageSize: 2097152 })],
    ];
    for (const pair of apart) expect(joinAreas(pair)).toEqual(pair);
  });
});
