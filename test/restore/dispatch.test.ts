/**
 * IFUNC choices re-pointed after a move to another CPU (packages/restorer/src/dispatch.ts),
 * checked without a second CPU: a checkpoint made here needs no change, and one whose libc GOT
 * slots were rewritten to other variants (as another CPU would have chosen) gets this CPU's back.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixturesDir } from '../lib/paths.js';
import { buildRestorePlan, dispatchPatches, elfFacts, type TaskPlan } from '@crtools/restorer';
import { criu, killAllStarted, startWorkload, tmp, waitReaped } from '../dump/helpers.js';

afterAll(() => killAllStarted());

const CPU_AVX512 = /avx512f/.test(readFileSync('/proc/cpuinfo', 'utf8'));

/** where the dumped u64 at addr lives: [pages image, offset] */
function locate(t: TaskPlan, addr: bigint): [string, number] | undefined {
  const r = t.pages.find((p) => addr >= p.vaddr && addr + 8n <= p.vaddr + p.npages * 4096n);
  return r ? [r.path ?? t.pagesPath!, Number(r.offset + addr - r.vaddr)] : undefined;
}

function rw(file: string, off: number, value?: bigint): bigint {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(8);
  readSync(fd, b, 0, 8, off);
  const old = b.readBigUInt64LE(0);
  if (value !== undefined) {
    b.writeBigUInt64LE(value, 0);
    writeSync(fd, b, 0, 8, off);
  }
  closeSync(fd);
  return old;
}

function libcOf(t: TaskPlan) {
  const v = t.vmas.find((x) => x.kind === 'file-private' && x.pgoff === 0n && /\/libc\.so\.6$/.test(x.path ?? ''));
  expect(v, 'libc mapped').toBeDefined();
  const facts = elfFacts(v!.path!)!;
  expect(facts.irelative.length).toBeGreaterThan(10);
  const text = t.vmas.filter((x) => x.path === v!.path && x.prot & 4);
  return { base: v!.start, facts, inText: (a: bigint) => text.some((x) => a >= x.start && a < x.end) };
}

describe('IFUNC choices after a move to another CPU', () => {
  it('a checkpoint made on this CPU needs no change; rewritten choices are put back, in libc and in the program', async () => {
    const w = startWorkload('shmem', ['shm']); // it calls memset itself
    const dir = tmp('dispatch');
    const d = criu(['dump', '-t', String(w.pid), '-D', dir, '-o', 'dump.log']);
    expect(d.code, d.stderr).toBe(0);
    expect(waitReaped(w.pid)).toBe(true);
    let t = (await buildRestorePlan(dir)).tasks[0]!;
    expect(dispatchPatches(t)).toEqual([]);

    // play another CPU: every libc IRELATIVE slot, and every GOT slot elsewhere bound to one
    // of those choices, now holds another address in libc's text (the variant "it" chose)
    const libc = libcOf(t);
    const moved = new Map<bigint, bigint>();
    const want = new Map<bigint, bigint>();
    for (const off of libc.facts.irelative) {
      const at = locate(t, libc.base + off);
      if (!at) continue;
      const now = rw(at[0], at[1]);
      if (!libc.inText(now)) continue; // glibc's cache-size resolver returns 0, not a function
      if (!moved.has(now)) moved.set(now, now + 0x40n);
      rw(at[0], at[1], moved.get(now));
      want.set(libc.base + off, now);
    }
    expect(want.size).toBeGreaterThan(10);
    const exe = t.vmas.find((x) => x.kind === 'file-private' && x.pgoff === 0n && x.path === t.exe)!;
    const exeFacts = elfFacts(exe.path!)!;
    let bound = 0;
    for (const [addr, size] of exeFacts.gots) {
      for (let a = exe.start + addr; a < exe.start + addr + BigInt(size); a += 8n) {
        const at = locate(t, a);
        const now = at && rw(at[0], at[1]);
        if (at && now !== undefined && moved.has(now)) {
          rw(at[0], at[1], moved.get(now));
          want.set(a, now);
          bound++;
        }
      }
    }
    expect(bound).toBeGreaterThan(0); // its own GOT slot for memset, bound before the dump
    t = (await buildRestorePlan(dir)).tasks[0]!;
    const got = new Map(dispatchPatches(t).map((p) => [p.addr, p.value]));
    expect(got).toEqual(want);
  });

  it.skipIf(CPU_AVX512 || !existsSync('/tmp/criu-fixtures/bin/pattern'))('the CRIU 4.2 pattern fixture (dumped with AVX-512): its libc choices move to this CPU\'s', async () => {
    const t = (await buildRestorePlan(path.join(fixturesDir, 'pattern'))).tasks[0]!;
    const libc = libcOf(t);
    const patches = dispatchPatches(t);
    expect(patches.length).toBeGreaterThan(10);
    for (const p of patches) expect(libc.inText(p.value)).toBe(true);
  });
});
