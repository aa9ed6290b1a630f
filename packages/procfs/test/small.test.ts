import { describe, expect, it } from 'vitest';
import { decodePagemapEntry, pagemapRuns, parseAuxv, parseStat, PM, parseNulSeparated, parseFdinfo, PROCFS_PARSE, parseStatus } from './lib.js';

describe('pagemap entries', () => {
  it('decodes present, soft-dirty, exclusive, file and the PFN', () => {
    const e = PM.PRESENT | PM.EXCLUSIVE | PM.SOFT_DIRTY | PM.FILE | 0x1234n;
    expect(decodePagemapEntry(0x1000n, e)).toEqual({ vaddr: 0x1000n, present: true, swapped: false, softDirty: true, exclusive: true, file: true, uffdWp: false, pfn: 0x1234n });
  });
  it('decodes swap type and offset', () => {
    const e = PM.SWAPPED | (0x77n << 5n) | 3n;
    expect(decodePagemapEntry(0n, e)).toMatchObject({ present: false, swapped: true, swapType: 3, swapOffset: 0x77n });
  });
  it('finds runs of present pages', () => {
    const entries = new BigUint64Array([PM.PRESENT, PM.PRESENT, 0n, PM.SWAPPED, 0n]);
    expect(Array.from(pagemapRuns({ start: 0x10000n, end: 0x15000n, entries }))).toEqual([
      { start: 0x10000n, pages: 2 },
      { start: 0x13000n, pages: 1 },
    ]);
  });
});

describe('stat', () => {
  it('takes comm up to the last ")"', () => {
    const rest = Array.from({ length: 50 }, (_, i) => (i === 0 ? 'S' : String(i))).join(' ');
    const s = parseStat(`7 (x) y) (z) ${rest}\n`);
    expect(s.comm).toBe('x) y) (z');
    expect(s.ppid).toBe(1);
    expect(s.exitCode).toBe(49);
  });
  it('rejects a truncated stat with PROCFS_PARSE', () => {
    expect(() => parseStat('7 (x) S 1 2')).toThrow(expect.objectContaining({ code: PROCFS_PARSE }));
  });
});

describe('misc parsers', () => {
  it('auxv stops at AT_NULL and rejects odd lengths', () => {
    const b = Buffer.alloc(48);
    b.writeBigUInt64LE(6n, 0); b.writeBigUInt64LE(4096n, 8);
    expect(parseAuxv(b)).toEqual([{ type: 6, name: 'AT_PAGESZ', value: 4096n }, { type: 0, name: 'AT_NULL', value: 0n }]);
    expect(() => parseAuxv(b.subarray(0, 20))).toThrow(expect.objectContaining({ code: PROCFS_PARSE }));
  });
  it('NUL-separated strings keep empty ones but not the trailing terminator', () => {
    expect(parseNulSeparated('a\0\0b\0')).toEqual(['a', '', 'b']);
    expect(parseNulSeparated('')).toEqual([]);
  });
  it('fdinfo flags are octal', () => {
    expect(parseFdinfo('pos:\t0\nflags:\t02004002\nmnt_id:\t3\nino:\t9\n').flags).toBe(0o2004002);
  });
  it('status keys from the file cannot reach the prototype', () => {
    const s = parseStatus('__proto__:\tx\nName:\ty\n');
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
    expect(s.Name).toBe('y');
  });
});
