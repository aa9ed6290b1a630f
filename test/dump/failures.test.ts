import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { criuBin } from '../lib/paths.js';
import { alive, critDecode, criu, killAllStarted, procStatus, sleep, startWorkload, tmp, waitGone } from './helpers.js';

afterAll(() => killAllStarted());

function untracedAndRunning(pid: number) {
  const st = procStatus(pid);
  expect(st['TracerPid']).toBe('0');
  expect(st['State']).not.toMatch(/^[tT]/);
}

/** Start a dump in the background and wait until its log says the parasite is gone (memory phase). */
async function dumpInMemoryPhase(pid: number, dir: string) {
  const child = spawn(process.execPath, [criuBin, 'dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v4'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (c, sig) => res(c ?? (sig ? -1 : null))));
  const log = path.join(dir, 'dump.log');
  for (let i = 0; i < 2000; i++) {
    if (existsSync(log) && /collected \d+ thread/.test(readFileSync(log, 'utf8'))) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  return { child, exited, stderr: () => stderr };
}

function noImages(dir: string) {
  const left = readdirSync(dir).filter((f) => f !== 'dump.log');
  expect(left).toEqual([]);
}

describe('criu dump failure paths leave the tree as it was and no image set', () => {
  it('ENOSPC in the images dir (a 1 MiB tmpfs): error line, task intact, nothing left', (ctx) => {
    const mnt = tmp('enospc');
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    if (m.status !== 0) return ctx.skip('cannot mount a tmpfs here');
    try {
      const w = startWorkload('pattern', ['16']);
      const dir = path.join(mnt, 'img');
      mkdirSync(dir);
      const r = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/ENOSPC|no space/i);
      expect(existsSync(path.join(dir, 'inventory.img'))).toBe(false);
      expect(readdirSync(dir).filter((f) => f !== 'dump.log')).toEqual([]);
      untracedAndRunning(w.pid);
      expect(w.check(10_000)).toBe('check ok bad=0');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('EPERM (the dumper runs as nobody): one error line naming ptrace, task untouched', (ctx) => {
    if (!existsSync('/usr/bin/setpriv')) return ctx.skip('setpriv is not installed');
    const w = startWorkload('sleeper', []);
    const base = tmp('eperm');
    chmodSync(base, 0o777);
    const dir = path.join(base, 'img');
    const r = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, criuBin, 'dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`criu: ptrace(PTRACE_SEIZE) (pid ${w.pid}): EPERM`);
    noImages(dir);
    untracedAndRunning(w.pid);
    expect(w.check()).toMatch(/^check ok/);
  });

  it('a task of the tree traced by another process (strace): refused by name with its tracer, exit 4, the tree runs on untraced by us', (ctx) => {
    if (!existsSync('/usr/bin/strace')) return ctx.skip('strace is not installed');
    const w = startWorkload('cowtree', ['4', '2']);
    const child = Number(readFileSync(`/proc/${w.pid}/task/${w.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(child).toBeGreaterThan(0);
    const tracer = spawn('/usr/bin/strace', ['-q', '-o', '/dev/null', '-p', String(child)], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 500 && procStatus(child)['TracerPid'] === '0'; i++) sleep(10);
      expect(procStatus(child)['TracerPid']).toBe(String(tracer.pid));
      const dir = tmp('traced');
      const r = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
      expect(r.code).toBe(4);
      expect(r.stderr.trim()).toBe(`criu: task ${child} is traced by process ${tracer.pid} (strace): a task under another tracer cannot be dumped`);
      noImages(dir);
      untracedAndRunning(w.pid);
      expect(procStatus(child)['TracerPid']).toBe(String(tracer.pid));
    } finally {
      tracer.kill('SIGKILL');
    }
    for (let i = 0; i < 500 && procStatus(child)['TracerPid'] !== '0'; i++) sleep(10);
    expect(w.check(10_000)).toBe('check ok kids=2 grandkids=1');
  });

  it('a zombie that stays (its parent never waits) is dumped as one after the grace; the tree runs on', () => {
    const w = startWorkload('launch', ['/bin/sh', '-c', '/bin/true & exec /bin/sleep 1000']);
    let zombie = 0;
    for (let i = 0; i < 300 && !zombie; i++) {
      sleep(10);
      for (const t of readdirSync(`/proc/${w.pid}/task`)) {
        for (const c of readFileSync(`/proc/${w.pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean)) {
          if (/\) Z /.test(readFileSync(`/proc/${c}/stat`, 'utf8'))) zombie = Number(c);
        }
      }
    }
    expect(zombie).toBeGreaterThan(0);
    const dir = tmp('zombie');
    const r = criu(['dump', '-t', String(w.pid), '-D', dir, '-R']);
    expect(r.code, r.stderr).toBe(0);
    const core = critDecode(path.join(dir, `core-${zombie}.img`)).entries[0]; // Debian's crit reads it
    expect(core.tc.task_state).toBe(2); // TASK_DEAD
    expect(core.tc.exit_code).toBe(0); // /bin/true
    expect(readdirSync(dir).filter((f) => f.includes(String(zombie)))).toEqual([`core-${zombie}.img`]);
    untracedAndRunning(w.pid);
  });

  it("a zombie that its parent reaps soon (between its exit and the parent's wait) does not fail the dump", () => {
    // the child exits at once and stays a zombie until its parent's waitpid, 0.6 s later
    // (python, since a shell reaps every child whenever it waits for any)
    const py = 'import os, time\npid = os.fork()\nif pid == 0: os._exit(3)\ntime.sleep(0.6)\nos.waitpid(pid, 0)\ntime.sleep(1000)';
    const w = startWorkload('launch', ['/usr/bin/python3', '-c', py]);
    let zombie = 0;
    for (let i = 0; i < 300 && !zombie; i++) {
      sleep(5);
      for (const c of readFileSync(`/proc/${w.pid}/task/${w.pid}/children`, 'utf8').split(/\s+/).filter(Boolean)) {
        try {
          if (/\) Z /.test(readFileSync(`/proc/${c}/stat`, 'utf8'))) zombie = Number(c);
        } catch { /* reaped meanwhile */ }
      }
    }
    expect(zombie).toBeGreaterThan(0);
    const dir = tmp('zombie-transient');
    const r = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log', '-v4', '-R']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'dump.log'), 'utf8')).toMatch(new RegExp(`task ${zombie} is a zombie; thawing`));
    expect(existsSync(path.join(dir, 'inventory.img'))).toBe(true);
    untracedAndRunning(w.pid);
  });

  it('the target is killed during the memory phase: the dump fails cleanly', async () => {
    const w = startWorkload('pattern', ['512']);
    const dir = tmp('gone');
    const d = await dumpInMemoryPhase(w.pid, dir);
    process.kill(w.pid, 'SIGKILL');
    const code = await d.exited;
    expect(code).not.toBe(0);
    expect(d.stderr().trim().split("\n"), d.stderr()).toHaveLength(1);
    expect(waitGone(w.pid)).toBe(true);
    noImages(dir);
  });

  it('the dumper gets SIGTERM during the memory phase: the task resumes intact, nothing is left', async () => {
    const w = startWorkload('pattern', ['512']);
    const dir = tmp('term');
    const d = await dumpInMemoryPhase(w.pid, dir);
    d.child.kill('SIGTERM');
    const code = await d.exited;
    expect(code).not.toBe(0);
    expect(d.stderr()).toMatch(/interrupted/);
    noImages(dir);
    untracedAndRunning(w.pid);
    expect(w.check(20_000)).toBe('check ok bad=0');
  });

  it('the dumper is SIGKILLed during the memory phase: the kernel detaches, the task runs on intact', async () => {
    const w = startWorkload('pattern', ['512']);
    const dir = tmp('kill');
    const d = await dumpInMemoryPhase(w.pid, dir);
    d.child.kill('SIGKILL');
    await d.exited;
    sleep(100);
    expect(alive(w.pid)).toBe(true);
    untracedAndRunning(w.pid);
    expect(w.check(20_000)).toBe('check ok bad=0');
    // no image set that looks complete (the private temp dir may remain; inventory never does)
    expect(existsSync(path.join(dir, 'inventory.img'))).toBe(false);
  });

  it('the dumper is SIGKILLed while the task runs its page transfer (in vmsplice): the task goes back to itself and runs on intact', async () => {
    // (without the parasite's SIGTRAP handler the task, untraced, reached the command's int3 and died of it)
    const w = startWorkload('pattern', ['512']);
    const dir = tmp('kill-vmsplice');
    const child = spawn(process.execPath, [criuBin, 'dump', '-t', String(w.pid), '-D', dir], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    let inside = false;
    while (!inside && child.exitCode === null && child.signalCode === null) {
      try {
        inside = readFileSync(`/proc/${w.pid}/syscall`, 'utf8').startsWith('278 ');
      } catch {
        /* (between its threads' stops) */
      }
      if (!inside) await new Promise((r) => setImmediate(r));
    }
    // held there: the pipe fills while the dumper is stopped, then the dumper dies
    child.kill('SIGSTOP');
    child.kill('SIGKILL');
    await exited;
    expect(inside, 'the task was never seen in its vmsplice').toBe(true);
    sleep(100);
    expect(alive(w.pid)).toBe(true);
    untracedAndRunning(w.pid);
    expect(w.check(20_000)).toBe('check ok bad=0');
    expect(existsSync(path.join(dir, 'inventory.img'))).toBe(false);
  });
});
