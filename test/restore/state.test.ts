/**
 * criu dump → criu restore round trips for task state beyond memory and files: pending signals
 * (process-wide and per thread, with their siginfo), POSIX timers. Twice in a row: the restored
 * task is dumped again and that checkpoint restored; every process is killed by pid and checked gone.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { askVerdict, criu, killAllStarted, ourCritDecode, killTree, sleep, startWorkload, tmp, waitGone, waitReaped } from '../dump/helpers.js';
import { criuBin } from '../lib/paths.js';

const mine: number[] = [];
afterEach(() => {
  for (const p of mine.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

/** ShdPnd/SigPnd/SigBlk… of a thread, from /proc (SigQ counts the whole user: not asserted) */
function sigStatus(pid: number, tid = pid): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(.*)$/.exec(l);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function roundTrip(name: string, args: string[], check: (pid: number, w: ReturnType<typeof startWorkload>, round: number) => void) {
  const w = startWorkload(name, args);
  for (let round = 0; round < 2; round++) {
    // round 0 dumps the workload, round 1 the task round 0 restored
    const dir = tmp(`rt-${name}-${round}`);
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    const r = criu(['restore', '-D', dir, '-d'], 60_000);
    mine.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    check(w.pid, w, round);
  }
  const tids = readdirSync(`/proc/${w.pid}/task`).map(Number);
  killTree(w.pid);
  for (const p of [w.pid, ...tids]) expect(waitGone(p)).toBe(true);
}

describe('pending signals', () => {
  it('a process-wide SIGUSR2 and two thread-directed SIGRTMIN+2 stay pending with their values', () => {
    const SIGUSR2 = 1n << 11n;
    const SIGRT2 = 1n << 35n; // SIGRTMIN (34) + 2 = 36, bit 35
    roundTrip('pendsig', [], (pid, w, round) => {
      const st = sigStatus(pid);
      expect(BigInt('0x' + st.ShdPnd) & SIGUSR2).toBe(SIGUSR2);
      expect(BigInt('0x' + st.SigPnd) & SIGRT2).toBe(SIGRT2);
      expect(BigInt('0x' + st.ShdPnd) & SIGRT2).toBe(0n); // still the thread's, not the process's
      // the check takes the signals: only once they have been through both round trips
      if (round === 1) expect(w.check()).toBe('check ok shared=1 thread=2');
    });
  });
});

/** ids listed in /proc/PID/timers */
function procTimerIds(pid: number): number[] {
  return [...readFileSync(`/proc/${pid}/timers`, 'utf8').matchAll(/^ID: (\d+)$/gm)].map((m) => Number(m[1]));
}

describe('POSIX timers', () => {
  it('a periodic timer with a non-first id keeps ticking with the same id and value; a one-shot keeps its time left', () => {
    let ids: number[] = [];
    roundTrip('ptimer', [], (pid, w, round) => {
      if (round === 0) {
        const m = /id=(\d+) oneshot=(\d+)/.exec(readFileSync(w.state, 'utf8'));
        ids = [Number(m?.[1] ?? -1), Number(m?.[2] ?? -1)];
      }
      expect(ids[0]).toBeGreaterThan(0); // the first two timers were deleted before this one was made
      expect(procTimerIds(pid).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
      const v = w.check();
      expect(v).toMatch(new RegExp(`^check ok id=${ids[0]} ticks=\\+\\d+`));
    });
  });
});

/** policy (field 41), rt priority (40) and nice (19) of a thread from /proc/PID/task/TID/stat */
function schedOf(pid: number, tid: number): { policy: number; prio: number; nice: number } {
  const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
  return { nice: Number(f[16]), prio: Number(f[37]), policy: Number(f[38]) };
}

describe('scheduling and OOM score', () => {
  it('per-thread policy (with SCHED_RESET_ON_FORK), rt priority and nice, and oom_score_adj come back as dumped', () => {
    let tids: number[] = [];
    roundTrip('schedstate', [], (pid, w, round) => {
      if (round === 0) {
        const m = /idle=(\d+) fifo=(\d+)/.exec(readFileSync(w.state, 'utf8'));
        tids = [Number(m?.[1] ?? -1), Number(m?.[2] ?? -1)];
      }
      expect(schedOf(pid, pid)).toEqual({ policy: 0, prio: 0, nice: 7 });
      expect(schedOf(pid, tids[0]!)).toEqual({ policy: 5, prio: 0, nice: 0 });
      expect(schedOf(pid, tids[1]!)).toMatchObject({ policy: 1, prio: 3 });
      expect(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()).toBe('345');
      // SCHED_RESET_ON_FORK, which /proc does not show (CRIU's zdtm sched_policy00 found it lost)
      expect(w.check()).toBe('check ok');
    });
  });
});

describe('core dump filter', () => {
  const filterOf = (pid: number) => readFileSync(`/proc/${pid}/coredump_filter`, 'utf8').trim();
  it("the kernel's default is left out of mm.img (CRIU's own fields only) and set again by a restore that inherited another; any other value is carried", () => {
    const w = startWorkload('sleeper', []);
    expect(filterOf(w.pid)).toBe('00000033');
    for (const [round, filter] of [[0, '00000033'], [1, '0000003f']] as const) {
      // (the kernel reads what is written in C's notation: 0x for hex, a leading 0 for octal)
      writeFileSync(`/proc/${w.pid}/coredump_filter`, `0x${filter}`);
      const dir = tmp(`coredump-filter-${round}`);
      const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(d.code, d.stderr).toBe(0);
      const mm = ourCritDecode(path.join(dir, `mm-${w.pid}.img`)).entries[0];
      expect(mm.coredump_filter).toBe(round === 0 ? undefined : 0x3f);
      expect(waitReaped(w.pid)).toBe(true);
      // the restore runs with a filter of 0x7f, which its children would inherit
      const r = spawnSync('/bin/sh', ['-c', 'echo 0x7f > /proc/self/coredump_filter && exec "$@"', 'sh', process.execPath, criuBin, 'restore', '-D', dir, '-d'], { encoding: 'utf8', timeout: 60_000 });
      mine.push(w.pid);
      expect(r.status, r.stderr).toBe(0);
      expect(filterOf(w.pid)).toBe(filter);
      expect(w.check()).toMatch(/^check ok/);
    }
  });
});

describe('rseq critical sections', () => {
  // the dump stops the thread inside one; the first return to user space from the dumper's code
  // (or the restorer's) clears rseq_cs, so unless the ip is moved to the abort handler the
  // section runs on unguarded (CRIU's zdtm rseq01)
  it('a thread stopped in one is restarted at its abort handler after a restore, twice, and after dump -R', () => {
    roundTrip('rseqcs', [], (pid, w) => expect(askVerdict(w.state, pid, 10_000)).toMatch(/^check ok /));
    const w = startWorkload('rseqcs', []);
    for (let round = 0; round < 2; round++) {
      const d = criu(['dump', '-t', String(w.pid), '-D', tmp(`rseqcs-R-${round}`), '-R']);
      expect(d.code, d.stderr).toBe(0);
      expect(askVerdict(w.state, w.pid, 10_000)).toMatch(/^check ok /);
    }
    killTree(w.pid);
  });
});

describe('credentials of every thread', () => {
  it('a threaded task that switched gid and groups gets them back in each thread, not only the main one, and its dumpable flag set again after them', () => {
    roundTrip('credthreads', [], (pid, w) => {
      expect(readdirSync(`/proc/${pid}/task`)).toHaveLength(4);
      expect(w.check()).toBe('check ok threads=4');
    });
  });
});

describe('capabilities', () => {
  it('bounding, permitted, effective, inheritable and ambient sets and no_new_privs come back as dumped', () => {
    let want: Record<string, string> = {};
    const keys = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs'];
    const w0 = startWorkload('capstate', []);
    const st0 = sigStatus(w0.pid);
    want = Object.fromEntries(keys.map((k) => [k, st0[k]!]));
    killTree(w0.pid);
    expect(waitGone(w0.pid)).toBe(true);
    // the workload's own changes are visible: they are what must come back
    expect(BigInt('0x' + want.CapBnd) & (1n << 13n)).toBe(0n); // CAP_NET_RAW
    expect(BigInt('0x' + want.CapPrm) & (1n << 22n)).toBe(0n); // CAP_SYS_BOOT
    expect(BigInt('0x' + want.CapEff) & 1n).toBe(0n); // CAP_CHOWN
    expect(BigInt('0x' + want.CapAmb)).toBe(1n << 10n); // CAP_NET_BIND_SERVICE
    expect(want.NoNewPrivs).toBe('1');
    roundTrip('capstate', [], (pid) => {
      const st = sigStatus(pid);
      expect(Object.fromEntries(keys.map((k) => [k, st[k]]))).toEqual(want);
    });
  });
});
