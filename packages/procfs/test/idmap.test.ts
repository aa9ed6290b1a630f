import { describe, expect, it } from 'vitest';
import { formatIdMap, idInside, idOutside, parseIdMap, UNMAPPED_ID } from './lib.js';

describe('uid_map / gid_map', () => {
  const text = '         0          0          1\n         1     100000       1000\n';
  const map = [{ first: 0, lowerFirst: 0, count: 1 }, { first: 1, lowerFirst: 100000, count: 1000 }];

  it('parses the kernel\'s padded lines, one extent each; an empty map is no extent', () => {
    expect(parseIdMap(text)).toEqual(map);
    expect(parseIdMap('')).toEqual([]);
  });
  it('rejects a malformed line with PROCFS_PARSE', () => {
    expect(() => parseIdMap('0 0\n')).toThrow(expect.objectContaining({ code: 'PROCFS_PARSE' }));
    expect(() => parseIdMap('0 -1 1\n')).toThrow(expect.objectContaining({ code: 'PROCFS_PARSE' }));
  });
  it('formats every extent for one write', () => {
    expect(formatIdMap(map)).toBe('0 0 1\n1 100000 1000\n');
  });
  it('turns ids both ways through the extents; an id no extent holds is UNMAPPED_ID (as CRIU\'s INVALID_ID)', () => {
    expect(idInside(map, 0)).toBe(0);
    expect(idInside(map, 100999)).toBe(1000);
    expect(idInside(map, 101000)).toBe(UNMAPPED_ID);
    expect(idInside(map, 5)).toBe(UNMAPPED_ID);
    expect(idOutside(map, 1000)).toBe(100999);
    expect(idOutside(map, 1001)).toBe(UNMAPPED_ID);
    expect(idOutside([{ first: 0, lowerFirst: 4294967294, count: 1 }], 0)).toBe(4294967294);
  });
});
