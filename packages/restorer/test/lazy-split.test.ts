import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeLazySplits, encodeLazySplits, fileIdent, LAZY_SPLIT_FILE, LAZY_SPLIT_MAGIC, LAZY_SPLIT_MAX, readLazySplits, removeLazySplits, sameFile, writeLazySplits, type LazySplit } from '../src/lazy-socket.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'crtools-lazy-split-'));
  dirs.push(d);
  return d;
}

function split(pid: number, dir: string, nranges = 2): LazySplit {
  writeFileSync(join(dir, `pagemap-${pid}.img`), 'p');
  writeFileSync(join(dir, `mm-${pid}.img`), 'm');
  return {
    pid,
    pagemap: fileIdent(join(dir, `pagemap-${pid}.img`))!,
    mm: fileIdent(join(dir, `mm-${pid}.img`))!,
    pagesPath: join(dir, 'pages-1.img'),
    entries: 4621,
    ranges: Array.from({ length: nranges }, (_, i) => ({ start: 0x7f0000000000n + BigInt(i) * 0x200000n, end: 0x7f0000100000n + BigInt(i) * 0x200000n })),
    segments: [
      { vaddr: 0x7ffffffde000n, nrPages: 3, path: join(dir, 'pages-1.img'), offset: 0 },
      { vaddr: 0xffffffffff000000n, nrPages: 1, path: join(dir, 'parent', 'pages-2.img'), offset: 8192 },
    ],
  };
}

describe('the lazy-pages daemon\'s splits (lazy-socket.ts)', () => {
  it('go through the message as they were: addresses, runs, files', () => {
    const d = tmp();
    const s = [split(1, d), split(7, d, 5)];
    const msg = encodeLazySplits(s)!;
    expect(msg.readUInt32LE(0)).toBe(LAZY_SPLIT_MAGIC);
    expect(msg.readUInt32LE(4)).toBe(msg.length - 8);
    const back = decodeLazySplits(msg.subarray(8));
    expect([...back.keys()]).toEqual([1, 7]);
    expect(back.get(1)).toEqual(s[0]);
    expect(back.get(7)).toEqual(s[1]);
  });

  it('are not written beyond LAZY_SPLIT_MAX (the restore walks the pagemap then)', () => {
    const d = tmp();
    expect(encodeLazySplits([split(1, d, 3000)])).toBeUndefined();
    expect(encodeLazySplits([split(1, d, 100)])!.length).toBeLessThanOrEqual(LAZY_SPLIT_MAX);
  });

  it('are taken only for the files the daemon read: another file, or the same one changed, is not the same', () => {
    const d = tmp();
    const a = join(d, 'a.img');
    writeFileSync(a, 'x');
    const before = fileIdent(a);
    expect(sameFile(before, fileIdent(a))).toBe(true);
    expect(sameFile(before, fileIdent(join(d, 'missing.img')))).toBe(false);
    writeFileSync(join(d, 'b.img'), 'x');
    expect(sameFile(before, fileIdent(join(d, 'b.img')))).toBe(false);
    utimesSync(a, new Date(1000), new Date(2000));
    expect(sameFile(before, fileIdent(a))).toBe(false);
  });

  it('go through the work directory: none there (CRIU\'s daemon) is no split, ours are taken whole, a torn or foreign file is none, and the daemon removes them', () => {
    const d = tmp();
    expect(readLazySplits(d)).toBeUndefined();
    const s = [split(3, d)];
    expect(writeLazySplits(d, s)).toBe(true);
    expect(readdirSync(d).filter((f) => f.startsWith(LAZY_SPLIT_FILE))).toEqual([LAZY_SPLIT_FILE]);
    expect(readLazySplits(d)?.get(3)).toEqual(s[0]);
    const whole = readFileSync(join(d, LAZY_SPLIT_FILE));
    writeFileSync(join(d, LAZY_SPLIT_FILE), whole.subarray(0, whole.length - 1));
    expect(readLazySplits(d)).toBeUndefined();
    writeFileSync(join(d, LAZY_SPLIT_FILE), 'not ours at all');
    expect(readLazySplits(d)).toBeUndefined();
    removeLazySplits(d);
    removeLazySplits(d);
    expect(existsSync(join(d, LAZY_SPLIT_FILE))).toBe(false);
    expect(writeLazySplits(d, [])).toBe(false);
    expect(writeLazySplits(d, [split(1, d, 3000)])).toBe(false);
    expect(existsSync(join(d, LAZY_SPLIT_FILE))).toBe(false);
  });
});
