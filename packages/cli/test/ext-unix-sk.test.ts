import { describe, expect, it } from 'vitest';
import { isCrtoolsError } from '@crtools/common';
import { dumpOptionsFromArgs } from '../src/criu/dump.js';
import { extUnixSkExternals } from '../src/criu/flags.js';

describe('dump --ext-unix-sk[=INO,...] (CRIU\'s test/others/socketpairs passes one)', () => {
  it('each inode named is an --external unix[INO]; a bare flag or one after -- names none', () => {
    expect(extUnixSkExternals(['dump', '--ext-unix-sk=1046066', '-t', '5'])).toEqual(['unix[1046066]']);
    expect(extUnixSkExternals(['-x12,34', '--ext-unix-sk', '-x'])).toEqual(['unix[12]', 'unix[34]']);
    expect(extUnixSkExternals(['--', '--ext-unix-sk=7'])).toEqual([]);
    const o = dumpOptionsFromArgs({ 'images-dir': '/d', 'ext-unix-sk': true }, ['--ext-unix-sk=99', '--external', 'unix[5]']);
    expect(o.ext_unix_sk).toBe(true);
    expect(o.external).toEqual(['unix[5]', 'unix[99]']);
  });

  it('anything but positive 32-bit inodes is a usage error', () => {
    for (const bad of ['--ext-unix-sk=abc', '--ext-unix-sk=0', '-x12,x', '--ext-unix-sk=4294967296']) {
      let err: unknown;
      try {
        extUnixSkExternals([bad]);
      } catch (e) {
        err = e;
      }
      expect(isCrtoolsError(err), bad).toBe(true);
      expect((err as { code: string }).code).toBe('USAGE');
      expect((err as Error).message).toMatch(/^invalid argument for --ext-unix-sk: /);
    }
  });
});
