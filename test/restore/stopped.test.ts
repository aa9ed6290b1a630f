/**
 * Stopped tasks end to end: a task in group-stop (SIGSTOP) is dumped as TASK_STOPPED with its
 * stop signal, comes back from restore stopped (State: T, running none of its own code: a
 * SIGUSR1 goes unanswered, its counter and CPU time stand still) and runs on after SIGCONT.
 * Threads that never enter the kernel show that no thread runs a single instruction between the
 * restore (or a dump -s) and the stop: their counters are the dumped ones to the last increment.
 * Every process is found and killed by pid.
 */
import { chmodSync, closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { askVerdict, childrenOf, criu, killAllStarted, killTree, killTreeAndWait, ourCritDecode, readState, sleep, startWorkload, tmp, treePids, waitReaped, waitVerdict } from '../dump/helpers.js';

const mine: number[] = [];
afterEach(() => {
  for (const p of mine.splice(0)) killTree(p);
});
afterAll(() => killAllStarted());

/** The state letter of /proc/PID/status ("T" stopped, "S" sleeping, ...). */
function stateOf(pid: number): string {
  return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

/** utime + stime of /proc/PID/stat, in clock ticks. */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

function stopAndWait(pid: number): void {
  process.kill(pid, 'SIGSTOP');
  for (let i = 0; i < 300 && stateOf(pid) !== 'T'; i++) sleep(10);
  expect(stateOf(pid)).toBe('T');
}

/** Dump the tree of root (then gone), restore it detached; returns its pids, root first. */
function dumpRestore(root: number, name: string, restoreArgs: string[] = []): { pids: number[]; dir: string } {
  const pids = treePids(root);
  const dir = tmp(`stopped-${name}`);
  const d = criu(['dump', '-t', String(root), '-D', dir, '-o', 'dump.log']);
  expect(d.code, d.stderr).toBe(0);
  for (const p of pids) expect(waitReaped(p)).toBe(true);
  const r = criu(['restore', '-D', dir, '-d', ...restoreArgs], 60_000);
  mine.push(root);
  expect(r.code, r.stderr).toBe(0);
  expect(treePids(root)).toEqual(pids);
  return { pids, dir };
}

function taskCore(dir: string, pid: number): { task_state: unknown; stop_signo?: number } {
  return ourCritDecode(path.join(dir, `core-${pid}.img`)).entries[0].tc;
}

function cleanUp(root: number): void {
  killTreeAndWait(root);
}

describe('stopped tasks', () => {
  it('a SIGSTOPped task is dumped TASK_STOPPED and restored stopped; it runs nothing until SIGCONT', () => {
    const w = startWorkload('pattern', ['4']);
    stopAndWait(w.pid);
    const { dir } = dumpRestore(w.pid, 'one');
    const tc = taskCore(dir, w.pid);
    expect(tc.task_state).toBe(3); // TASK_STOPPED
    expect(tc.stop_signo).toBe(19);
    expect(stateOf(w.pid)).toBe('T');
    expect(readFileSync(`/proc/${w.pid}/status`, 'utf8')).toMatch(/TracerPid:\s+0\n/);
    // a stopped task handles no signal: the verdict asked for now only comes after SIGCONT
    writeFileSync(w.state, '');
    process.kill(w.pid, 'SIGUSR1');
    const ticks = cpuTicks(w.pid);
    sleep(500);
    expect(readState(w.state)).toBe('');
    expect(cpuTicks(w.pid)).toBe(ticks);
    expect(stateOf(w.pid)).toBe('T');
    process.kill(w.pid, 'SIGCONT');
    expect(waitVerdict(w.state, 10_000)).toBe('check ok bad=0');
    expect(stateOf(w.pid)).not.toBe('T');
    cleanUp(w.pid);
  });

  it('a stopped counter: the count stands still after restore and moves on after SIGCONT', () => {
    const file = path.join(tmp('stopped-count'), 'count');
    // written beside and renamed over, so a stop never leaves the file half written
    const prog = `import os, time\nn = 0\nwhile True:\n    n += 1\n    open(${JSON.stringify(file + '.new')}, "w").write(str(n))\n    os.rename(${JSON.stringify(file + '.new')}, ${JSON.stringify(file)})\n    time.sleep(0.02)`;
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', prog]);
    const count = () => Number(readState(file)) || 0;
    for (let i = 0; i < 500 && count() < 3; i++) sleep(10);
    stopAndWait(w.pid);
    const at = count();
    expect(at).toBeGreaterThan(0);
    dumpRestore(w.pid, 'count');
    expect(stateOf(w.pid)).toBe('T');
    sleep(500);
    expect(count()).toBe(at);
    expect(stateOf(w.pid)).toBe('T');
    process.kill(w.pid, 'SIGCONT');
    for (let i = 0; i < 300 && count() <= at + 2; i++) sleep(10);
    expect(count()).toBeGreaterThan(at + 2);
    cleanUp(w.pid);
  });

  it('a stopped child under a running parent: the child alone comes back stopped', () => {
    const w = startWorkload('pattern', ['2', '2']);
    const [child] = childrenOf(w.pid);
    expect(child).toBeGreaterThan(0);
    stopAndWait(child!);
    const { dir } = dumpRestore(w.pid, 'child');
    expect(taskCore(dir, child!).stop_signo).toBe(19);
    expect(taskCore(dir, w.pid).stop_signo).toBeUndefined();
    expect(stateOf(child!)).toBe('T');
    expect(stateOf(w.pid)).not.toBe('T');
    // the parent asks the child for its share of the check: no answer while the child is stopped
    writeFileSync(w.state, '');
    process.kill(w.pid, 'SIGUSR1');
    sleep(500);
    expect(readState(w.state)).toBe('');
    expect(stateOf(child!)).toBe('T');
    process.kill(child!, 'SIGCONT');
    expect(waitVerdict(w.state, 10_000)).toBe('check ok bad=0');
    cleanUp(w.pid);
  });

  it('a job stopped by SIGTSTP comes back stopped by SIGTSTP (its parent sees the stop signal) and counts on after SIGCONT', () => {
    const w = startWorkload('jobstop', []);
    const [child] = childrenOf(w.pid);
    expect(child).toBeGreaterThan(0);
    process.kill(child!, 'SIGTSTP');
    for (let i = 0; i < 300 && stateOf(child!) !== 'T'; i++) sleep(10);
    expect(stateOf(child!)).toBe('T');
    const before = askVerdict(w.state, w.pid);
    expect(before).toMatch(/^check stopped=20 count=\d+$/);
    const { dir } = dumpRestore(w.pid, 'tstp');
    expect(taskCore(dir, child!).stop_signo).toBe(20);
    expect(stateOf(child!)).toBe('T');
    sleep(300);
    expect(askVerdict(w.state, w.pid)).toBe(before);
    process.kill(child!, 'SIGCONT');
    sleep(300);
    const after = askVerdict(w.state, w.pid);
    expect(after).toMatch(/^check running count=\d+$/);
    expect(Number(after.split('=')[1])).toBeGreaterThan(Number(before.split('count=')[1]));
    cleanUp(w.pid);
  });

  it('-s with a stopped child: every task stopped; SIGCONT resumes each on its own', () => {
    const w = startWorkload('pattern', ['2', '2']);
    const [child] = childrenOf(w.pid);
    stopAndWait(child!);
    dumpRestore(w.pid, 'leave', ['-s']);
    expect(stateOf(w.pid)).toBe('T');
    expect(stateOf(child!)).toBe('T');
    process.kill(w.pid, 'SIGCONT');
    for (let i = 0; i < 300 && stateOf(w.pid) === 'T'; i++) sleep(10);
    expect(stateOf(w.pid)).not.toBe('T');
    expect(stateOf(child!)).toBe('T');
    writeFileSync(w.state, '');
    process.kill(w.pid, 'SIGUSR1');
    sleep(300);
    expect(readState(w.state)).toBe('');
    process.kill(child!, 'SIGCONT');
    expect(waitVerdict(w.state, 10_000)).toBe('check ok bad=0');
    cleanUp(w.pid);
  });
});

/** Workers of `threads spin` in these tests. */
const SPINNERS = 3;

/** Where the counters of a `threads` workload are (its ready line: addr=0xA). */
function countersAddr(state: string): number {
  return Number(BigInt(/addr=(0x[0-9a-f]+)/.exec(readFileSync(state, 'utf8'))![1]!));
}

/** The counters of a `threads spin` workload (one a 64-byte slot) as /proc/PID/mem has them now. */
function countersOf(pid: number, state: string): bigint[] {
  const buf = Buffer.alloc(SPINNERS * 64);
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    expect(readSync(fd, buf, 0, buf.length, countersAddr(state))).toBe(buf.length);
  } finally {
    closeSync(fd);
  }
  return Array.from({ length: SPINNERS }, (_, i) => buf.readBigUInt64LE(i * 64));
}

/**
 * An action script that, at post-dump (the tree frozen as its images have it), copies the
 * spinning workers' counters out of the dumped root's memory; read back with the returned function.
 */
function postDumpCounters(state: string, name: string): { script: string; read: () => bigint[] } {
  const dir = tmp(`stopped-${name}-script`);
  const out = path.join(dir, 'counters');
  const script = path.join(dir, 'post-dump.sh');
  const py = `import os; f = open("/proc/%s/mem" % os.environ["CRTOOLS_INIT_PID"], "rb"); f.seek(${countersAddr(state)}); open(${JSON.stringify(out)}, "wb").write(f.read(${SPINNERS * 64}))`;
  writeFileSync(script, `#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0\nexec /usr/bin/python3 -c '${py}'\n`);
  chmodSync(script, 0o755);
  return {
    script,
    read: () => {
      const b = readFileSync(out);
      return Array.from({ length: b.length / 64 }, (_, i) => b.readBigUInt64LE(i * 64));
    },
  };
}

/** Every thread of pid in group stop (State: T). */
function allThreadsStopped(pid: number): boolean {
  return treeThreads(pid).every((t) => /^State:\s+T/m.test(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8')));
}

function treeThreads(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number);
}

describe('threads that never enter the kernel: none runs between restore and stop', () => {
  function spinnersDumped(name: string, dumpArgs: string[] = []): { w: ReturnType<typeof startWorkload>; dir: string; dumped: bigint[] } {
    const w = startWorkload('threads', ['spin', String(SPINNERS)]);
    const post = postDumpCounters(w.state, name);
    const dir = tmp(`stopped-${name}`);
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '--action-script', post.script, ...dumpArgs]);
    expect(d.code, d.stderr).toBe(0);
    const dumped = post.read();
    expect(dumped.length).toBe(SPINNERS);
    for (const c of dumped) expect(c).toBeGreaterThan(0n);
    return { w, dir, dumped };
  }

  function restoredStopped(w: { pid: number; state: string }, dir: string, dumped: bigint[], args: string[]): void {
    const r = criu(['restore', '-D', dir, '-d', '-o', 'restore.log', ...args], 60_000);
    mine.push(w.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(countersOf(w.pid, w.state)).toEqual(dumped);
    for (let i = 0; i < 300 && !allThreadsStopped(w.pid); i++) sleep(10);
    expect(allThreadsStopped(w.pid)).toBe(true);
    sleep(200);
    expect(countersOf(w.pid, w.state)).toEqual(dumped);
    process.kill(w.pid, 'SIGCONT');
    for (let i = 0; i < 300 && countersOf(w.pid, w.state).some((c, k) => c === dumped[k]); i++) sleep(10);
    const after = countersOf(w.pid, w.state);
    for (let k = 0; k < dumped.length; k++) expect(after[k]).toBeGreaterThan(dumped[k]!);
    cleanUp(w.pid);
  }

  it('restore -s of running threads: each counter is the dumped one until SIGCONT, then all move on', () => {
    const { w, dir, dumped } = spinnersDumped('spin-s');
    expect(waitReaped(w.pid)).toBe(true);
    restoredStopped(w, dir, dumped, ['-s']);
  });

  it('dumped stopped (SIGSTOP), restored stopped: each counter is the dumped one until SIGCONT', () => {
    const w0 = startWorkload('threads', ['spin', String(SPINNERS)]);
    stopAndWait(w0.pid);
    for (let i = 0; i < 300 && !allThreadsStopped(w0.pid); i++) sleep(10);
    const atStop = countersOf(w0.pid, w0.state);
    const dir = tmp('stopped-spin-T');
    const d = criu(['dump', '-t', String(w0.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w0.pid)).toBe(true);
    restoredStopped(w0, dir, atStop, []);
  });

  it('dump -s: the tree left stopped holds the dumped counters (no thread ran after the dump)', () => {
    const { w, dumped } = spinnersDumped('spin-dump-s', ['-s']);
    mine.push(w.pid);
    expect(countersOf(w.pid, w.state)).toEqual(dumped);
    for (let i = 0; i < 300 && !allThreadsStopped(w.pid); i++) sleep(10);
    expect(allThreadsStopped(w.pid)).toBe(true);
    expect(countersOf(w.pid, w.state)).toEqual(dumped);
    cleanUp(w.pid);
  });
});
