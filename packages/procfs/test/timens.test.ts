import { describe, expect, it } from 'vitest';
import { formatTimensOffsets, parseTimensOffsets, timespecAdd } from './lib.js';

describe('timens_offsets', () => {
  it('parses the kernel\'s lines, negative seconds included', () => {
    expect(parseTimensOffsets('monotonic           0         0\nboottime       -86400    500000000\n')).toEqual({
      monotonic: { sec: 0n, nsec: 0n }, boottime: { sec: -86400n, nsec: 500000000n },
    });
  });
  it('rejects a missing clock or a malformed line with PROCFS_PARSE', () => {
    expect(() => parseTimensOffsets('monotonic 0 0\n')).toThrow(expect.objectContaining({ code: 'PROCFS_PARSE' }));
    expect(() => parseTimensOffsets('monotonic 0 0\nboottime x 0\n')).toThrow(expect.objectContaining({ code: 'PROCFS_PARSE' }));
  });
  it('adds and subtracts timespecs, normalizing the nanoseconds (also below zero)', () => {
    expect(timespecAdd({ sec: 5n, nsec: 900_000_000n }, { sec: 1n, nsec: 200_000_000n })).toEqual({ sec: 7n, nsec: 100_000_000n });
    expect(timespecAdd({ sec: 1n, nsec: 0n }, { sec: 0n, nsec: 0n }, { sec: 2n, nsec: 500_000_000n })).toEqual({ sec: -2n, nsec: 500_000_000n });
  });
  it('formats the offsets to write as clock ids (1 monotonic, 7 boottime)', () => {
    expect(formatTimensOffsets({ monotonic: { sec: 86400000n, nsec: 5n }, boottime: { sec: -3n, nsec: 0n } })).toBe('1 86400000 5\n7 -3 0\n');
  });
});
