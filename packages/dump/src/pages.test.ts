import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CriuLog, PAGE_SIZE } from '@crtools/common';
import { PagesPrefill } from './pages.js';

describe('PagesPrefill', () => {
  let dir: string;
  const lines: string[] = [];
  const log = new CriuLog(4, undefined, (l) => lines.push(l));
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'crtools-prefill-'));
    lines.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a file of zeros per task at its count, grown by what was written between the two counts', () => {
    const counts = [new Map([[101, 10], [202, 0], [303, 5]]), new Map([[101, 14], [202, 0], [303, 5]])];
    const p = PagesPrefill.make(dir, () => counts.shift()!, log);
    const a = p.take(101)!;
    // 14 pages counted the second time, 4 more written since the first: 14 + 4, and the slack
    expect(statSync(a).size).toBe((14 + 4 + 32) * PAGE_SIZE);
    expect(readFileSync(a).every((b) => b === 0)).toBe(true);
    // nothing grew: the first count and the slack
    expect(statSync(p.take(303)!).size).toBe((5 + 32) * PAGE_SIZE);
    // a task with nothing written gets no file
    expect(p.take(202)).toBeUndefined();
    expect(p.take(101)).toBeUndefined(); // handed over once
    expect(lines.some((l) => /pages prefilled before the freeze: .* for 2 task\(s\)/.test(l))).toBe(true);
  });

  it('removes the files no task took', () => {
    const p = PagesPrefill.make(dir, () => new Map([[7, 1], [8, 2]]), log);
    const kept = p.take(7)!;
    p.dispose();
    expect(readdirSync(dir)).toEqual([path.basename(kept)]);
  });

  it('makes nothing without a count, and a failed fill leaves nothing behind', () => {
    PagesPrefill.make(dir, () => new Map(), log);
    expect(readdirSync(dir)).toEqual([]);
    // the second count fails: the first count's file goes too, and the dump goes on without
    let n = 0;
    const p = PagesPrefill.make(dir, () => {
      if (n++) throw new Error('no such process');
      return new Map([[9, 3]]);
    }, log);
    expect(p.take(9)).toBeUndefined();
    expect(existsSync(dir) && readdirSync(dir)).toEqual([]);
    expect(lines.some((l) => /pages not prefilled: no such process/.test(l))).toBe(true);
  });
});
