import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '@crtools/common';
import { inheritMap } from '../src/restore.js';

describe('--inherit-fd descriptors', () => {
  it('a descriptor that is open is taken under its key', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      expect(inheritMap([{ key: 'pipe:[1]', fd }])).toEqual(new Map([['pipe:[1]', fd]]));
    } finally {
      closeSync(fd);
    }
  });

  it('one that is not open, or a tty[] key given something that is not a terminal: one usage line (exit 1)', () => {
    const fd = openSync('/dev/null', 'r');
    closeSync(fd);
    expect(() => inheritMap([{ key: 'pipe:[1]', fd }])).toThrow(`--inherit-fd fd[${fd}]:pipe:[1]: descriptor ${fd} is not open`);
    const file = openSync('/dev/null', 'r');
    try {
      let err: unknown;
      try {
        inheritMap([{ key: 'tty[8800:19]', fd: file }]);
      } catch (e) {
        err = e;
      }
      expect(String((err as Error).message)).toBe(`--inherit-fd fd[${file}]:tty[8800:19]: descriptor ${file} is not a terminal (/dev/null): was it passed to criu?`);
      expect((err as { exitCode?: number }).exitCode).toBe(ExitCode.USAGE);
    } finally {
      closeSync(file);
    }
  });
});
