import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONST, PLAN_MAGIC, PlanWriter, STEPS, fieldOffset, fieldsOf, recordSize } from '../src/layout.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('plan layout: one description for C and TypeScript', () => {
  it('the generated C header declares the same records, fields and constants', () => {
    execFileSync(process.execPath, [`${root}scripts/gen-layout.mjs`]);
    const h = readFileSync(`${root}blobs/plan-layout.h`, 'utf8');
    const layout = JSON.parse(readFileSync(`${root}layout.json`, 'utf8'));
    for (const name of Object.keys(layout.records)) {
      const m = new RegExp(`struct plan_${name} \\{([^}]*)\\}`).exec(h);
      expect(m, name).not.toBeNull();
      const fields = [...m![1]!.matchAll(/unsigned long long (\w+);/g)].map((x) => x[1]);
      expect(fields).toEqual(fieldsOf(name as never));
      expect(h).toContain(`#define PLAN_${name.toUpperCase()}_SIZE ${recordSize(name as never)}`);
    }
    expect(h).toContain(`#define PLAN_MAGIC 0x${PLAN_MAGIC.toString(16)}ULL`);
    expect(h).toContain('#define NO_PARENT 0xffffffffffffffffULL');
    STEPS.forEach((s, i) => expect(h).toContain(`#define STEP_${s.toUpperCase()} ${i}`));
    expect(CONST.NO_PARENT).toBe((1n << 64n) - 1n);
  });

  it('PlanWriter writes u64 fields at their layout offsets and refuses unknown fields', () => {
    const w = new PlanWriter();
    const off = w.record('run', { vaddr: 0x7fff00001000n, npages: 3, off: 8192n });
    const buf = w.finish();
    expect(buf.readBigUInt64LE(off + fieldOffset('run', 'vaddr'))).toBe(0x7fff00001000n);
    expect(buf.readBigUInt64LE(off + fieldOffset('run', 'npages'))).toBe(3n);
    expect(buf.readBigUInt64LE(off + fieldOffset('run', 'path'))).toBe(0n);
    expect(() => w.record('run', { nope: 1 })).toThrow(/run has no field nope/);
    expect(() => fieldOffset('vma', 'nope')).toThrow();
  });

  it('a number field is the 64 bits BigInt would give it (safe integers, negative ones, booleans); a fraction is refused', () => {
    const vals = [0, 1, -1, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 2 ** 32 + 5, -(2 ** 32) - 5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53 + 2, -(2 ** 60), 0x7fffffff, -0x80000000];
    const w = new PlanWriter();
    const offs = vals.map((v) => w.record('run', { vaddr: v, npages: v < 0, cmp: v > 0 }));
    const buf = w.finish();
    vals.forEach((v, i) => {
      expect(buf.readBigUInt64LE(offs[i]! + fieldOffset('run', 'vaddr')), String(v)).toBe(BigInt.asUintN(64, BigInt(v)));
      expect(buf.readBigUInt64LE(offs[i]! + fieldOffset('run', 'npages'))).toBe(v < 0 ? 1n : 0n);
      expect(buf.readBigUInt64LE(offs[i]! + fieldOffset('run', 'cmp'))).toBe(v > 0 ? 1n : 0n);
    });
    expect(() => w.record('run', { vaddr: 1.5 })).toThrow(RangeError);
  });

  it('records() of many (written by the code made per record) are the bytes record() writes one by one, and refuse an unknown field as it does', () => {
    const list = Array.from({ length: 200 }, (_, i) => ({
      start: 0x7f0000000000n + BigInt(i) * 0x1000n, end: 0x7f0000001000n + BigInt(i) * 0x1000n, pgoff: i, prot: i % 8, flags: 0x22,
      kind: i % 3, file_size: i % 2 ? -1n : 4096n, madv: i % 5 ? 0n : 1n << 63n, map_prot: i % 8, uffd: i % 2 === 0, inherit: undefined, lazy: i % 7 === 0, shmid: -(i + 1),
    }));
    const bulk = new PlanWriter();
    const at = bulk.records('vma', list);
    const one = new PlanWriter();
    const offs = list.map((v) => one.record('vma', v));
    expect(offs[0]).toBe(at);
    expect(bulk.finish().equals(one.finish())).toBe(true);
    const bad = [...list.slice(0, 99), { ...list[0]!, nope: 1 }];
    expect(() => new PlanWriter().records('vma', bad)).toThrow(/vma has no field nope/);
  });

  it('negative values are stored two-complement; strings are NUL-terminated; bytes aligned', () => {
    const w = new PlanWriter();
    const r = w.record('vma', { file_size: -1n });
    const s = w.string('/dev/null');
    const b = w.bytes(Buffer.from([1, 2, 3]), 64);
    const buf = w.finish();
    expect(buf.readBigUInt64LE(r + fieldOffset('vma', 'file_size'))).toBe((1n << 64n) - 1n);
    expect(buf.subarray(s, s + 10).toString('latin1')).toBe('/dev/null\0');
    expect(b % 64).toBe(0);
    expect([...buf.subarray(b, b + 3)]).toEqual([1, 2, 3]);
  });

  it.skipIf(!existsSync(`${root}blobs/restorer.elf`))('the built blob has no relocations and starts with its entry', () => {
    const rel = execFileSync('readelf', ['-rW', `${root}blobs/restorer.elf`], { encoding: 'utf8' });
    expect(rel).not.toMatch(/R_X86_64_/);
    const syms = execFileSync('nm', [`${root}blobs/restorer.elf`], { encoding: 'utf8' });
    expect(syms).toMatch(/^0000000000000000 T _start$/m);
    expect(syms).toMatch(/^0000000000000002 [tT] blob_syscall_insn$/m);
  });
});
