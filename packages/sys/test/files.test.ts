import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataExtents, setFileTimes } from '../src/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sys-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dataExtents', () => {
  it('finds the data between holes of a sparse file (or the whole file where the filesystem cannot tell)', () => {
    const fd = openSync(path.join(dir, 'sparse'), 'w+');
    try {
      ftruncateSync(fd, 4 << 20);
      writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 1 << 20);
      writeSync(fd, Buffer.alloc(8192, 2), 0, 8192, 3 << 20);
      const ext = dataExtents(fd, 4n << 20n);
      if (ext.length === 1 && ext[0]!.len === 4n << 20n) return; // no SEEK_DATA here
      expect(ext).toEqual([{ off: 1n << 20n, len: 4096n }, { off: 3n << 20n, len: 8192n }]);
      expect(dataExtents(fd, 0n)).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });

  it('a file of data only is one extent', () => {
    const fd = openSync(path.join(dir, 'full'), 'w+');
    try {
      writeSync(fd, Buffer.alloc(10000, 3));
      expect(dataExtents(fd, 10000n)).toEqual([{ off: 0n, len: 10000n }]);
    } finally {
      closeSync(fd);
    }
  });
});

describe('setFileTimes', () => {
  it('sets atime and mtime to the nanosecond', () => {
    const fd = openSync(path.join(dir, 'times'), 'w+');
    try {
      setFileTimes(fd, { sec: 1500000000n, nsec: 123456789 }, { sec: 1400000000n, nsec: 987654000 });
      const st = fstatSync(fd, { bigint: true });
      expect(st.atimeNs).toBe(1500000000123456789n);
      expect(st.mtimeNs).toBe(1400000000987654000n);
      expect(() => setFileTimes(fd, { sec: 0n, nsec: 1e9 }, { sec: 0n, nsec: 0 })).toThrow(RangeError);
    } finally {
      closeSync(fd);
    }
  });
});
