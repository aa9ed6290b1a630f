import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkCpu, checkGuards, validatePlan } from '../src/launch.js';
import { specialTargets, encodeBody, regionLayout, finishPlan } from '../src/encode.js';
import { findHoles } from '../src/hole.js';
import { guardsFrom, isGuardEntry, splitAtAreas } from '../src/plan/memory.js';
import { fieldOffset, recordSize } from '../src/layout.js';
import { X86_REGS, type MountPlan, type RestorePlan, type TaskPlan, type ThreadPlan, type X86Reg } from '../src/plan.js';
import { isCrtoolsError } from '@crtools/common';
import { rootedPlan } from '../src/rooted.js';
import { hostPathOf } from '../src/mounts.js';
import { createGhosts, ghostPlaces } from '../src/ghosts.js';

function thread(tid: number, xstateBv = 3n): ThreadPlan {
  const regs = Object.fromEntries(X86_REGS.map((r) => [r, 0n])) as Record<X86Reg, bigint>;
  return { tid, regs, fxsave: Buffer.alloc(512), xstateBv, blkSigset: 0n, sas: { sp: 0n, size: 0n, flags: 2 }, clearTid: 0n };
}

function task(pid: number, parent: number, extra: Partial<TaskPlan> = {}): TaskPlan {
  return {
    pid, parent, pgid: pid, sid: pid, threads: [thread(pid)], vmas: [], pages: [], fds: [], umask: 0o22, personality: 0,
    mm: { startCode: 0n, endCode: 0n, startData: 0n, endData: 0n, startStack: 0n, startBrk: 0n, brk: 0n, argStart: 0n, argEnd: 0n, envStart: 0n, envEnd: 0n },
    auxv: [], dumpable: 1, sigactions: [], rlimits: [], creds: { uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0, groups: [] },
    itimers: [], childSubreaper: false, ...extra,
  };
}

const specials = [
  { name: '[vvar]', start: 0x7f0000000000n, end: 0x7f0000004000n },
  { name: '[vvar_vclock]', start: 0x7f0000004000n, end: 0x7f0000006000n },
  { name: '[vdso]', start: 0x7f0000006000n, end: 0x7f0000008000n },
];

describe('plan checks', () => {
  it('validatePlan: root first, parents before children, unique pids, 512-byte fxsave', () => {
    expect(() => validatePlan({ tasks: [task(100, -1), task(101, 0)], files: [] })).not.toThrow();
    expect(() => validatePlan({ tasks: [task(100, -1, { vmas: [{ start: 1n << 60n, end: (1n << 60n) + 0x2000n, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' }] })], files: [] })).not.toThrow();
    for (const bad of [
      { tasks: [], files: [] },
      { tasks: [task(100, 0)], files: [] },
      { tasks: [task(100, -1), task(101, 1)], files: [] },
      { tasks: [task(100, -1), task(100, 0)], files: [] },
      { tasks: [task(1, -1)], files: [] },
      { tasks: [task(100, -1, { fds: [{ fd: 0, file: 3, cloexec: false }] })], files: [] },
      { tasks: [task(100, -1, { vmas: [{ start: 0x1001n, end: 0x2000n, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' }] })], files: [] },
      { tasks: [task(100, -1, { vmas: [{ start: 0x1000n, end: 0x2001n, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' }] })], files: [] },
      // (above 2^53, where a double cannot tell 0x...001 from 0x...000)
      { tasks: [task(100, -1, { vmas: [{ start: 1n << 60n, end: (1n << 60n) + 0x1001n, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' }] })], files: [] },
      { tasks: [task(100, -1, { guards: [{ start: 0x2000n, end: 0x2000n }] })], files: [] },
    ] as RestorePlan[]) {
      let e: unknown;
      try {
        validatePlan(bad);
      } catch (x) {
        e = x;
      }
      expect(isCrtoolsError(e) && e.code === 'RESTORE_BAD_PLAN' && e.exitCode === 3).toBe(true);
    }
  });

  it('checkCpu names the xsave components this CPU lacks', () => {
    const plan: RestorePlan = { tasks: [task(100, -1, { threads: [thread(100, 0xa2n)] })], files: [] };
    expect(() => checkCpu(plan, 0x2e7n)).not.toThrow();
    expect(() => checkCpu(plan, 0x207n)).toThrow(/pid 100 was dumped on a CPU with AVX-512 opmask, AVX-512 Hi16_ZMM which this CPU lacks/);
  });

  it('specialTargets: the recorded vvar area takes [vvar] then [vvar_vclock]; size mismatches are refused', () => {
    const t = task(100, -1, {
      vmas: [
        { start: 0x7f5d5e292000n, end: 0x7f5d5e298000n, pgoff: 0n, prot: 1, flags: 0x22, kind: 'vvar' },
        { start: 0x7f5d5e298000n, end: 0x7f5d5e29a000n, pgoff: 0n, prot: 5, flags: 0x22, kind: 'vdso' },
      ],
    });
    expect(specialTargets(t, specials)).toEqual([0x7f5d5e292000n, 0x7f5d5e296000n, 0x7f5d5e298000n]);
    const none = specialTargets(task(101, -1), specials);
    expect(none.every((x) => x === (1n << 64n) - 1n)).toBe(true);
    t.vmas[0]!.end = 0x7f5d5e296000n;
    expect(() => specialTargets(t, specials)).toThrow(/vvar area is 4 pages, this kernel has 6/);
  });

  it('splitAtAreas: a run across adjacent areas becomes one run per area, offsets following', () => {
    const P = 0x1000n;
    const area = (start: bigint, end: bigint, madv?: bigint) => ({ start, end, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' as const, ...(madv ? { madv } : {}) });
    // a thread's stack (MADV_NOHUGEPAGE) right below a heap mapping, then a gap, then another area
    const areas = [area(0x10000n, 0x20000n, 1n << 15n), area(0x20000n, 0x40000n), area(0x50000n, 0x60000n)];
    const runs = [
      { vaddr: 0x1e000n, npages: 0x12n, offset: 0n, path: '/x/pages-1.img' },
      { vaddr: 0x50000n, npages: 2n, offset: 0x12n * P },
    ];
    expect(splitAtAreas(runs, areas)).toEqual([
      { vaddr: 0x1e000n, npages: 2n, offset: 0n, path: '/x/pages-1.img' },
      { vaddr: 0x20000n, npages: 0x10n, offset: 2n * P, path: '/x/pages-1.img' },
      { vaddr: 0x50000n, npages: 2n, offset: 0x12n * P },
    ]);
    expect(splitAtAreas(runs.slice(1), areas)[0]).toBe(runs[1]);
  });

  it('findHoles: free in the launcher and in every recorded layout, with air around', () => {
    const plan: RestorePlan = {
      tasks: [task(100, -1, { vmas: [{ start: 0x7fe000000000n, end: 0x7ff000000000n, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' }] })],
      files: [],
    };
    const self = [{ start: 0x7fd000000000n, end: 0x7fd100000000n }];
    const holes = findHoles(0x100000n, plan, self);
    expect(holes.length).toBeGreaterThan(0);
    for (const h of holes) {
      for (const b of [...self, { start: 0x7fe000000000n, end: 0x7ff000000000n }]) {
        expect(h + 0x100000n <= b.start - 0x1000000n || h >= b.end + 0x1000000n).toBe(true);
      }
    }
  });

  it('encode: header, tasks and files land where the layout says', () => {
    const plan: RestorePlan = {
      tasks: [task(100, -1, { fds: [{ fd: 7, file: 0, cloexec: true }] }), task(101, 0)],
      files: [{ kind: 'reg', path: '/dev/null', flags: 1, pos: 0n }],
    };
    const { w, fdBase } = encodeBody(plan, specials);
    expect(fdBase).toBe(16);
    const lay = regionLayout(8000, w.size, plan, specials);
    const buf = finishPlan(w, plan, { ...lay, start: 0x700000000000n }, fdBase, 1000);
    const hdr = (f: string) => buf.readBigUInt64LE(fieldOffset('hdr', f));
    expect(hdr('ntasks')).toBe(2n);
    expect(hdr('region_start')).toBe(0x700000000000n);
    expect(hdr('status_addr')).toBe(0x700000000000n + lay.statusOff);
    const t1 = Number(hdr('tasks_off')) + recordSize('task');
    expect(buf.readBigUInt64LE(t1 + fieldOffset('task', 'pid'))).toBe(101n);
    expect(buf.readBigUInt64LE(t1 + fieldOffset('task', 'parent'))).toBe(0n);
    const fd = Number(buf.readBigUInt64LE(Number(hdr('tasks_off')) + fieldOffset('task', 'fds_off')));
    expect(buf.readBigUInt64LE(fd + fieldOffset('fd', 'fd'))).toBe(7n);
    expect(buf.readBigUInt64LE(fd + fieldOffset('fd', 'flags'))).toBe(1n);
    expect(lay.size % 4096n).toBe(0n);
  });

  it('encode: a lazy restore\'s lazy pages are ranges, not runs of the blob\'s plan (the daemon serves them; a run has no lazy field); an area holding only lazy pages is still mapped as one the restorer fills', () => {
    const P = 4096n;
    const base = 0x7f1000000000n;
    const runs = [
      { vaddr: base, npages: 2n, offset: 0n },
      { vaddr: base + 0x1000n * P, npages: 3n, offset: 52n * P },
    ];
    const lazyRanges = [...Array.from({ length: 50 }, (_, i) => ({ start: base + (4n + 4n * BigInt(i)) * P, end: base + (5n + 4n * BigInt(i)) * P })), { start: base + 0x2000n * P, end: base + 0x2004n * P }];
    const ro = { start: base + 0x2000n * P, end: base + 0x2004n * P, pgoff: 0n, prot: 1, flags: 0x22, kind: 'anon' as const, lazy: true };
    const plan: RestorePlan = {
      lazy: true,
      tasks: [task(100, -1, { pagesPath: '/x/pages-1.img', vmas: [{ start: base, end: base + 0x1004n * P, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon', lazy: true }, ro], pages: runs, lazyRanges })],
      files: [],
    };
    expect(() => fieldOffset('run', 'lazy')).toThrow();
    const buf = encodeBody(plan, specials).w.finish();
    const t0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off')));
    expect(buf.readBigUInt64LE(t0 + fieldOffset('task', 'nruns'))).toBe(2n);
    const r0 = Number(buf.readBigUInt64LE(t0 + fieldOffset('task', 'runs_off')));
    const run = (i: number, f: string) => buf.readBigUInt64LE(r0 + i * recordSize('run') + fieldOffset('run', f));
    expect([run(0, 'vaddr'), run(0, 'npages'), run(0, 'off')]).toEqual([base, 2n, 0n]);
    expect([run(1, 'vaddr'), run(1, 'npages'), run(1, 'off')]).toEqual([base + 0x1000n * P, 3n, 52n * P]);
    // (the read-only area holding only lazy pages is mapped as before: writable while restoring)
    const v0 = Number(buf.readBigUInt64LE(t0 + fieldOffset('task', 'vmas_off')));
    const vma = (i: number, f: string) => buf.readBigUInt64LE(v0 + i * recordSize('vma') + fieldOffset('vma', f));
    expect([vma(1, 'prot'), vma(1, 'map_prot'), vma(1, 'lazy')]).toEqual([1n, 3n, 1n]);
    // a CPU patch inside a lazy range is refused by name
    const patched: RestorePlan = { ...plan, tasks: [{ ...plan.tasks[0]!, patches: [{ addr: base + 0x2001n * P + 8n, value: 1n }] } as never] };
    expect(() => encodeBody(patched, specials)).toThrow(/--lazy-pages with code re-pointed for this CPU/);
  });

  it('encode: nested network namespaces — a task entering one and a socket made in one name its held descriptor (+ 1), the header the root\'s; an id not held is refused', () => {
    const plan: RestorePlan = {
      tasks: [task(100, -1), task(101, 0, { netns: 12, fds: [{ fd: 3, file: 0, cloexec: false }] }), task(102, 1, { netns: 11 })],
      files: [{ kind: 'reg', path: '/dev/null', flags: 0, pos: 0n }, { kind: 'reg', path: '/dev/null', flags: 0, pos: 0n, netns: 12 }],
      held: [40, 41], netHeld: { root: 0, byId: new Map([[11, 0], [12, 1]]) },
    };
    const buf = encodeBody(plan, specials).w.finish();
    const t0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off')));
    const f0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'files_off')));
    const task_ = (i: number) => Number(buf.readBigUInt64LE(t0 + i * recordSize('task') + fieldOffset('task', 'netns')));
    const file = (i: number) => Number(buf.readBigUInt64LE(f0 + i * recordSize('file') + fieldOffset('file', 'netns')));
    expect([task_(0), task_(1), task_(2)]).toEqual([0, 2, 1]);
    expect([file(0), file(1)]).toEqual([0, 2]);
    expect(() => encodeBody({ ...plan, netHeld: { root: 0, byId: new Map([[11, 0]]) } }, specials)).toThrow(/network namespace 12 is not held/);
  });

  it('encode: I/O signal settings go to the first task holding the file at a descriptor (zombies hold none)', () => {
    const plan: RestorePlan = {
      tasks: [task(100, -1), task(101, 0, { zombie: { status: 0 }, fds: [{ fd: 3, file: 0, cloexec: false }] }), task(102, 0, { fds: [{ fd: 3, file: 0, cloexec: false }, { fd: 4, file: 1, cloexec: false }, { fd: 5, file: 2, cloexec: false }] }), task(103, 0, { fds: [{ fd: 3, file: 0, cloexec: false }] })],
      files: [
        { kind: 'reg', path: '/dev/null', flags: 0, pos: 0n, fown: { signum: 35, pidType: 2, pid: 101, uid: 1000, euid: 1001 } },
        { kind: 'reg', path: '/dev/null', flags: 0o20000, pos: 0n },
        { kind: 'reg', path: '/dev/null', flags: 0, pos: 0n },
      ],
    };
    const buf = encodeBody(plan, specials).w.finish();
    const f0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'files_off')));
    const get = (i: number, f: string) => Number(buf.readBigUInt64LE(f0 + i * recordSize('file') + fieldOffset('file', f)));
    expect(['fown_task', 'fown_signum', 'fown_type', 'fown_pid', 'fown_uid', 'fown_euid'].map((f) => get(0, f))).toEqual([102, 35, 2, 101, 1000, 1001]);
    expect([get(1, 'fown_task'), get(1, 'fown_pid'), get(1, 'flags')]).toEqual([102, 0, 0o20000]); // O_ASYNC alone
    expect(get(2, 'fown_task')).toBe(0);
  });

  it('encode: pending signals as 128-byte siginfo blocks per thread and per process; bad ones refused', () => {
    const si = (signo: number, val: number) => {
      const b = Buffer.alloc(128);
      b.writeInt32LE(signo, 0);
      b.writeInt32LE(val, 24);
      return b;
    };
    const th = { ...thread(100), pendingSignals: [si(36, 1), si(36, 2)] };
    const plan: RestorePlan = { tasks: [task(100, -1, { threads: [th], pendingSignals: [si(12, 3)] })], files: [] };
    const buf = encodeBody(plan, specials).w.finish();
    const t0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off')));
    const at = (off: number, rec: 'task' | 'thread', f: string) => Number(buf.readBigUInt64LE(off + fieldOffset(rec, f)));
    expect(at(t0, 'task', 'nsigs')).toBe(1);
    const shared = at(t0, 'task', 'sigs_off');
    expect(buf.readInt32LE(shared)).toBe(12);
    expect(buf.readInt32LE(shared + 24)).toBe(3);
    const th0 = at(t0, 'task', 'threads_off');
    expect(at(th0, 'thread', 'nsigs')).toBe(2);
    const ts = at(th0, 'thread', 'sigs_off');
    expect([buf.readInt32LE(ts), buf.readInt32LE(ts + 24), buf.readInt32LE(ts + 128), buf.readInt32LE(ts + 152)]).toEqual([36, 1, 36, 2]);
    const bad = (b: Buffer) => encodeBody({ tasks: [task(100, -1, { pendingSignals: [b] })], files: [] }, specials);
    expect(() => bad(Buffer.alloc(64))).toThrow(/64 bytes, not 128/);
    expect(() => bad(si(65, 0))).toThrow(/out of range/);
  });

  it('encode: seccomp per thread — filters oldest first as (instructions, flags, program) records, strict mode alone; bad ones refused', () => {
    const prog = (n: number) => Buffer.alloc(8 * n, n);
    const filters = [{ filter: prog(3), flags: 0 }, { filter: prog(5), flags: 2 }];
    const plan: RestorePlan = { tasks: [task(100, -1, { threads: [{ ...thread(100), seccomp: { strict: false, filters } }, { ...thread(101), seccomp: { strict: true, filters: [] } }, thread(102)] })], files: [] };
    const buf = encodeBody(plan, specials).w.finish();
    const t0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off')));
    const th0 = Number(buf.readBigUInt64LE(t0 + fieldOffset('task', 'threads_off')));
    const th = (i: number, f: string) => Number(buf.readBigUInt64LE(th0 + i * recordSize('thread') + fieldOffset('thread', f)));
    expect([0, 1, 2].map((i) => [th(i, 'seccomp_mode'), th(i, 'nseccomp')])).toEqual([[2, 2], [1, 0], [0, 0]]);
    expect([th(1, 'seccomp_off'), th(2, 'seccomp_off')]).toEqual([0, 0]);
    const recs = th(0, 'seccomp_off');
    const rec = (i: number, f: string) => Number(buf.readBigUInt64LE(recs + i * recordSize('seccomp') + fieldOffset('seccomp', f)));
    expect([rec(0, 'len'), rec(0, 'flags'), rec(1, 'len'), rec(1, 'flags')]).toEqual([3, 0, 5, 2]);
    expect(buf.subarray(rec(0, 'data'), rec(0, 'data') + 24)).toEqual(prog(3));
    expect(buf.subarray(rec(1, 'data'), rec(1, 'data') + 40)).toEqual(prog(5));
    const bad = (seccomp: ThreadPlan['seccomp']) => encodeBody({ tasks: [task(100, -1, { threads: [{ ...thread(100), seccomp }] })], files: [] }, specials);
    expect(() => bad({ strict: false, filters: [] })).toThrow(/filter mode without filters/);
    expect(() => bad({ strict: true, filters })).toThrow(/strict mode with filters/);
    expect(() => bad({ strict: false, filters: [{ filter: Buffer.alloc(12), flags: 0 }] })).toThrow(/is 12 bytes/);
    expect(() => bad({ strict: false, filters: [{ filter: prog(1), flags: 8 }] })).toThrow(/flags 0x8/);
  });

  it('encode: POSIX timers as ptimer records with id, notify and time left', () => {
    const posixTimers = [{ id: 2, clockId: 1, signo: 37, notify: 4, sival: 0x71n, notifyTid: 100, isec: 0n, insec: 10_000_000n, vsec: 0n, vnsec: 5n }];
    const buf = encodeBody({ tasks: [task(100, -1, { posixTimers })], files: [] }, specials).w.finish();
    const t0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off')));
    expect(buf.readBigUInt64LE(t0 + fieldOffset('task', 'ntimers'))).toBe(1n);
    const pt = Number(buf.readBigUInt64LE(t0 + fieldOffset('task', 'timers_off')));
    const f = (n: string) => buf.readBigUInt64LE(pt + fieldOffset('ptimer', n));
    expect([f('id'), f('clock_id'), f('signo'), f('notify'), f('sival'), f('notify_tid'), f('insec'), f('vnsec')]).toEqual([2n, 1n, 37n, 4n, 0x71n, 100n, 10_000_000n, 5n]);
  });

  describe('guard regions (MADV_GUARD_INSTALL)', () => {
    const area = { start: 0x10000n, end: 0x20000n, pgoff: 0n, prot: 3, flags: 0x22, kind: 'anon' as const };
    const next = { ...area, start: 0x20000n, end: 0x30000n, prot: 1 };
    // as CRIU 4.2 writes them: after the areas, status VMA_AREA_GUARD and nothing else
    const entry = (start: bigint, end: bigint) => ({ start, end, pgoff: 0n, shmid: 0n, prot: 0, flags: 0, status: 1 << 16, fd: -1n });

    it('mm.img entries with VMA_AREA_GUARD are guard ranges, checked against the areas', () => {
      expect(isGuardEntry(entry(0x11000n, 0x12000n))).toBe(true);
      expect(isGuardEntry({ ...entry(0x10000n, 0x20000n), status: 0x1 | 0x20 })).toBe(false);
      // a range across two adjacent areas is one range (PAGEMAP_SCAN joins them)
      expect(guardsFrom([entry(0x11000n, 0x12000n), entry(0x1f000n, 0x21000n)], [area, next], 100)).toEqual([
        { start: 0x11000n, end: 0x12000n }, { start: 0x1f000n, end: 0x21000n },
      ]);
      expect(() => guardsFrom([entry(0x2f000n, 0x31000n)], [area, next], 100)).toThrow(/mm-100.img: guard region 2f000-31000 lies outside the task's mappings/);
      expect(() => guardsFrom([entry(0x11800n, 0x12000n)], [area], 100)).toThrow(/not a page range/);
    });

    it('checkGuards refuses, by pid and range, only a plan with guards on a kernel without them', () => {
      const plan: RestorePlan = { tasks: [task(100, -1), task(101, 0, { guards: [{ start: 0x11000n, end: 0x13000n }] })], files: [] };
      let asked = 0;
      const no = () => (asked++, false);
      expect(() => checkGuards({ tasks: [task(100, -1)], files: [] }, no)).not.toThrow();
      expect(asked).toBe(0); // nothing to install: the kernel is not even asked
      expect(() => checkGuards(plan, () => true)).not.toThrow();
      let e: unknown;
      try {
        checkGuards(plan, no);
      } catch (x) {
        e = x;
      }
      expect(isCrtoolsError(e) && e.code === 'RESTORE_NO_GUARD_REGIONS' && e.exitCode === 4).toBe(true);
      expect((e as Error).message).toMatch(/^pid 101 has a guard region at 11000-13000, and this kernel cannot install guard regions/);
    });

    it('encode: guard records per task', () => {
      const guards = [{ start: 0x11000n, end: 0x13000n }, { start: 0x1f000n, end: 0x21000n }];
      const buf = encodeBody({ tasks: [task(100, -1, { vmas: [area, next], guards })], files: [] }, specials).w.finish();
      const t0 = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'tasks_off')));
      expect(buf.readBigUInt64LE(t0 + fieldOffset('task', 'nguards'))).toBe(2n);
      const g = Number(buf.readBigUInt64LE(t0 + fieldOffset('task', 'guards_off')));
      const f = (k: number, n: string) => buf.readBigUInt64LE(g + k * recordSize('guard') + fieldOffset('guard', n));
      expect([f(0, 'start'), f(0, 'end'), f(1, 'start'), f(1, 'end')]).toEqual([0x11000n, 0x13000n, 0x1f000n, 0x21000n]);
    });
  });
});

describe('--root: the plan reached through the new root until the pivot (rootedPlan)', () => {
  const base = (): RestorePlan => ({
    tasks: [task(1, -1, {
      exe: '/bin/busybox', cwd: '/', root: '/',
      vmas: [{ start: 0x400000n, end: 0x401000n, kind: 'file-private', path: '/bin/busybox', prot: 5, flags: 2, pgoff: 0n } as TaskPlan['vmas'][number]],
    })],
    files: [{ kind: 'reg', path: '/dev/null', flags: 2, pos: 0n } as RestorePlan['files'][number], { kind: 'pipe-r' } as unknown as RestorePlan['files'][number]],
  });

  it('prefixes files, exe, working directory and mapped files; a root of / stays the pivot\'s', () => {
    const p = rootedPlan(base(), '/run/c/criu-root');
    const t = p.tasks[0]!;
    expect([t.exe, t.cwd, t.root, t.vmas[0]!.path]).toEqual(['/run/c/criu-root/bin/busybox', '/run/c/criu-root', '/', '/run/c/criu-root/bin/busybox']);
    expect(p.files).toEqual([expect.objectContaining({ kind: 'reg', path: '/run/c/criu-root/dev/null' }), { kind: 'pipe-r' }]);
    expect(rootedPlan({ ...base(), tasks: [{ ...base().tasks[0]!, root: '/jail' }] }, '/r').tasks[0]!.root).toBe('/r/jail');
  });

  it('a unix socket\'s name is kept as bound (a path one bound with the plan\'s root); unlinked files are left to the ghost places; a terminal is opened below the root', () => {
    const bound = (name: string) => ({ ...base(), files: [{ kind: 'unix-bound', unixBound: { address: Buffer.concat([Buffer.from([1, 0]), Buffer.from(name)]) } } as unknown as RestorePlan['files'][number]] });
    const p = rootedPlan(bound('/run/s.sock\0'), '/r');
    expect(p.files).toEqual(bound('/run/s.sock\0').files);
    expect(p.root).toBe('/r');
    expect(rootedPlan(bound('\0abstract'), '/r').files).toEqual(bound('\0abstract').files);
    const ghost = { ...base(), ghosts: [{ path: '/tmp/gone' } as unknown as NonNullable<RestorePlan['ghosts']>[number]] };
    expect(rootedPlan(ghost, '/r').ghosts).toEqual(ghost.ghosts);
    // a terminal: /dev/ptmx, /dev/pts/N (the tree's own devpts) and /dev/tty below the root
    const tty = (path: string) => ({ kind: 'tty', flags: 2, pos: 0n, path } as unknown as RestorePlan['files'][number]);
    expect(rootedPlan({ ...base(), files: ['/dev/ptmx', '/dev/pts/3', '/dev/tty'].map(tty) }, '/r').files).toEqual(['/r/dev/ptmx', '/r/dev/pts/3', '/r/dev/tty'].map(tty));
    // an inotify watch and a fanotify inode mark keep the restorer's path (the same inode until
    // the pivot); a fanotify mount mark names the tree's mount point: below the new root
    const watches = { ...base(), files: [
      { kind: 'inotify', flags: 0, pos: 0n, watches: [{ wd: 1, mask: 2, path: '/host/f' }] },
      { kind: 'fanotify', flags: 0, pos: 0n, faflags: 0, evflags: 0, marks: [{ flags: 0x1, mask: 2, path: '/host/f' }, { flags: 0x11, mask: 0x20, path: '/dev' }] },
    ] as RestorePlan['files'] };
    expect(rootedPlan(watches, '/r').files).toEqual([watches.files[0], { ...watches.files[1], marks: [{ flags: 0x1, mask: 2, path: '/host/f' }, { flags: 0x11, mask: 0x20, path: '/r/dev' }] }]);
    // ... when it is the recorded inode; a path naming another file here is refused by name
    const self = statSync(process.execPath, { bigint: true }).ino;
    const on = (ino: bigint) => ({ ...base(), files: [{ kind: 'inotify', flags: 0, pos: 0n, watches: [{ wd: 3, mask: 2, path: process.execPath, ino }] }] as RestorePlan['files'] });
    expect(rootedPlan(on(self), '/r').files).toEqual(on(self).files);
    expect(() => rootedPlan(on(self + 1n), '/r')).toThrow(`restore: option root: an inotify watch (wd 3) on ${process.execPath}, which here is inode ${self} and not the recorded inode ${self + 1n}, under another root is not supported by crtools yet`);
    const mark = { ...base(), files: [{ kind: 'fanotify', flags: 0, pos: 0n, faflags: 0, evflags: 0, marks: [{ flags: 0x1, mask: 2, path: '/no/such/file', ino: 5n }] }] as RestorePlan['files'] };
    expect(() => rootedPlan(mark, '/r')).toThrow('restore: option root: a fanotify inode mark on /no/such/file, which here is no file and not the recorded inode 5,');
    // a file opened once every task exists (another task's /proc file): through the tree's /proc
    // below the new root (a proc of the tree's pid namespace), still opened late
    const late = { ...base(), files: [{ kind: 'reg', path: '/proc/6/stat', flags: 0, pos: 0n, late: true } as RestorePlan['files'][number]] };
    expect(rootedPlan(late, '/r').files).toEqual([{ kind: 'reg', path: '/r/proc/6/stat', flags: 0, pos: 0n, late: true }]);
  });

  it('the --root directory goes to the plan header (root), a string of the plan', () => {
    const { w, fdBase } = encodeBody({ ...base(), files: [], root: '/run/c/criu-root' }, []);
    const buf = finishPlan(w, base(), { ...regionLayout(4096, w.size, base(), []), start: 0x10000000n }, fdBase, 1000);
    const off = Number(buf.readBigUInt64LE(fieldOffset('hdr', 'root')));
    expect(off).toBeGreaterThan(0);
    expect(buf.subarray(off, buf.indexOf(0, off)).toString()).toBe('/run/c/criu-root');
    const none = encodeBody({ ...base(), files: [] }, []);
    expect(finishPlan(none.w, base(), { ...regionLayout(4096, none.w.size, base(), []), start: 0x10000000n }, none.fdBase, 1000).readBigUInt64LE(fieldOffset('hdr', 'root'))).toBe(0n);
  });
});

describe('--root: where the restorer reaches a path of the tree before its mounts exist (hostPathOf)', () => {
  const mount = (id: number, parent: number, mountpoint: string, extra: Partial<MountPlan> = {}): MountPlan => ({
    id, parent, mountpoint, root: '/', fstype: 1, dev: id, source: 'x', options: '', flags: 0, sbFlags: 0, shared: 0, master: 0, ...extra,
  });
  const mounts: MountPlan[] = [
    mount(1, 0, '/', { root: '/var/lib/c/rootfs', dev: 100 }),
    mount(2, 1, '/dev', { fsname: 'tmpfs' }),
    mount(3, 2, '/dev/shm', { fsname: 'tmpfs' }),
    mount(4, 1, '/data', { extKey: 'data' }),
    mount(5, 1, '/etc/hosts', { extKey: 'hosts' }),
    // a bind of a directory of the root mount's file system, and one of that bind's
    mount(6, 1, '/srv', { root: '/var/lib/c/rootfs/opt/srv', dev: 100 }),
    mount(7, 1, '/mnt/d', { root: '/var/lib/c/rootfs/opt/srv/sub', dev: 100 }),
  ];
  const ext = new Map([['data', '/host/data'], ['hosts', '/host/hosts']]);
  const at = (p: string) => hostPathOf(mounts, '/run/root', ext, p);

  it('below the --root directory for the root mount, below the external path for an external one, through binds to where they come from', () => {
    expect(at('/tmp/ghost')).toBe('/run/root/tmp/ghost');
    expect(at('/data/x/y')).toBe('/host/data/x/y');
    expect(at('/etc/hosts')).toBe('/host/hosts');
    expect(at('/srv/f')).toBe('/run/root/opt/srv/f');
    expect(at('/mnt/d/f')).toBe('/run/root/opt/srv/sub/f');
    // a name beside a mount point is the parent mount's
    expect(at('/datafile')).toBe('/run/root/datafile');
  });

  it('undefined on a mount the restore makes anew (reached from inside the tree only)', () => {
    expect(at('/dev/shm/ghost')).toBeUndefined();
    expect(at('/dev/null')).toBeUndefined();
  });

  it('ghostPlaces: --root opens them below the root, makes each where hostPathOf says, the rest through the root task', () => {
    const plan = { tasks: [], files: [], namespaces: { mounts }, ghosts: [{ path: '/tmp/ghost' }] } as unknown as RestorePlan;
    const places = ghostPlaces(plan, { root: '/run/root', ext });
    expect([places.task('/tmp/ghost'), places.now('/tmp/ghost'), places.now('/dev/shm/g'), places.inTree(42)]).toEqual(['/run/root/tmp/ghost', '/run/root/tmp/ghost', undefined, '/proc/42/root/run/root']);
    // a read-only mount made anew: an unlinked file there is refused by name before anything is made
    const ro = { ...plan, namespaces: { mounts: [...mounts, mount(8, 1, '/ro', { fsname: 'tmpfs', flags: 1 })] }, ghosts: [{ path: '/ro/g' }] } as unknown as RestorePlan;
    expect(() => createGhosts(ro, ghostPlaces(ro, { root: '/run/root', ext }))).toThrow('restore: the unlinked file /ro/g lies on a read-only mount the restore makes anew in the tree\'s mount namespace, where crtools does not make unlinked files yet');
    // no mount namespace of the tree's: the restorer's own paths
    const same = ghostPlaces({ ...plan, namespaces: undefined });
    expect([same.task('/dev/shm/g'), same.now('/dev/shm/g')]).toEqual(['/dev/shm/g', '/dev/shm/g']);
  });
});
