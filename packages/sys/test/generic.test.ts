import { writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clockNow, CLOCK_MONOTONIC, closeFd, cpuid, KCMP_FILE, KCMP_VM, kernelObjectOrder, KernelObjects, listenBacklog, openPipe, peekPipe, sameKernelObject, setNativeBinding, unixSockets, xgetbv,
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
