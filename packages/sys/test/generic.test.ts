import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clockNow, CLOCK_MONOTONIC, closeFd, cpuid, KCMP_FILE, KCMP_VM, kernelObjectOrder, KernelObjects, killReleasing, listenBacklog, openPipe, peekPipe, sameKernelObject, setNativeBinding, unixSockets, xgetbv,
  type SysNative,
} from '../src/index.js';

afterEach(() => setNativeBinding(undefined));

describe('the generic system calls', () => {
  it('kcmp: a task shares its memory with itself', () => {
    expect(sameKernelObject(process.pid, process.pid, KCMP_VM)).toBe(true);
  });

  it('kcmp orders two different objects both ways, and KernelObjects finds each object once', () => {
    const a = openPipe(1 << 16);
    const b = openPipe(1 << 16);
    try {
      const ab = kernelObjectOrder(process.pid, process.pid, KCMP_FILE, a.rd, b.rd);
      expect(ab === -1 || ab === 1).toBe(true);
      expect(kernelObjectOrder(process.pid, process.pid, KCMP_FILE, b.rd, a.rd)).toBe(-ab!);
      expect(kernelObjectOrder(process.pid, process.pid, KCMP_FILE, a.wr, a.wr)).toBe(0);
      const set = new KernelObjects<string>(KCMP_FILE);
      for (const [fd, name] of [[a.rd, 'a.rd'], [b.wr, 'b.wr'], [b.rd, 'b.rd'], [a.wr, 'a.wr']] as const) {
        expect(set.findOrAdd(process.pid, fd, () => name)).toEqual({ value: name, found: false });
      }
      for (const [fd, name] of [[a.wr, 'a.wr'], [b.rd, 'b.rd'], [a.rd, 'a.rd'], [b.wr, 'b.wr']] as const) expect(set.find(process.pid, fd)).toBe(name);
      expect(set.findOrAdd(process.pid, a.rd, () => 'again')).toEqual({ value: 'a.rd', found: true });
    } finally {
      for (const fd of [a.rd, a.wr, b.rd, b.wr]) closeFd(fd);
    }
  });

  it('killReleasing kills a process and frees its memory from here or lets it free it (ESRCH: it dropped it first); a gone pid is ESRCH', async () => {
    // a child with 64 MiB of its own written memory, waiting
    const c = spawn(process.execPath, ['-e', 'const b = Buffer.alloc(64 << 20, 1); process.stdout.write("ready"); setInterval(() => b[0]++, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => c.stdout!.once('data', r));
    const exited = new Promise<NodeJS.Signals | null>((r) => c.on('exit', (_code, sig) => r(sig)));
    const [r] = killReleasing([c.pid!], true);
    expect(r!.kill).toBe(0);
    // 0: freed here; ESRCH: the woken process had already let go of its memory (it frees it itself)
    expect([0, constants.errno.ESRCH]).toContain(r!.release);
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(`/proc/${c.pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${c.pid}/stat`, 'utf8'))).toBe(false);
    // not asked: release -1; gone: the kill's ESRCH
    expect(killReleasing([c.pid!], false)).toEqual([{ pid: c.pid, kill: constants.errno.ESRCH, release: -1 }]);
  });

  it('clock_gettime gives bigints', () => {
    const t = clockNow(CLOCK_MONOTONIC);
    expect(typeof t.tv_sec).toBe('bigint');
    expect(t.tv_nsec).toBeLessThan(1_000_000_000n);
  });

  it('a pipe can be looked into without consuming it', () => {
    const p = openPipe(1 << 16);
    try {
      expect(p.capacity).toBe(1 << 16);
      writeSync(p.wr, 'hello');
      expect(peekPipe(p.rd).data.toString()).toBe('hello');
      expect(peekPipe(p.rd)).toMatchObject({ size: 1 << 16 });
    } finally {
      closeFd(p.rd);
      closeFd(p.wr);
    }
  });

  it('cpuid and xgetbv answer', () => {
    expect(cpuid(0)[0]).toBeGreaterThan(0);
    expect(typeof xgetbv()).toBe('bigint');
  });

  it('sock_diag lists unix sockets (root: the netns is ours)', () => {
    expect(Array.isArray(unixSockets())).toBe(true);
  });

  it('a failed call is a Node-shaped error named as the caller knows it, with context', () => {
    setNativeBinding({ listenQueues: () => ({ errno: 2, syscall: 'sock_diag' }) } as unknown as SysNative);
    expect(() => listenBacklog(2, 42)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'sock_diag', message: 'sock_diag: ENOENT, listening socket:[42]' }));
  });
});
