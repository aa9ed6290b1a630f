import { describe, expect, it } from 'vitest';
import { ExitCode } from '@crtools/common';
import { refuseNotYet } from '../src/criu/not-yet-options.js';

function outcome(args: Record<string, unknown>): { exit?: number; message?: string } | 'accepted' {
  try {
    refuseNotYet(args, {});
    return 'accepted';
  } catch (e) {
    return { exit: (e as { exitCode?: number }).exitCode, message: (e as Error).message };
  }
}

describe('options crtools does not carry out (yet)', () => {
  it('are refused by name, exit 4', () => {
    expect(outcome({ 'link-remap': true })).toEqual({ exit: ExitCode.UNSUPPORTED, message: '--link-remap is not supported yet (crtools issue 14)' });
  });

  it('--file-validation: filesize (what every restore does) accepted, buildid refused by name, anything else a usage error', () => {
    expect(outcome({ 'file-validation': 'filesize' })).toBe('accepted');
    expect(outcome({ 'file-validation': 'buildid' })).toMatchObject({ exit: ExitCode.UNSUPPORTED, message: expect.stringMatching(/^--file-validation buildid is not supported yet/) });
    expect(outcome({ 'file-validation': '1' })).toEqual({ exit: ExitCode.USAGE, message: 'invalid argument for --file-validation: 1 (filesize, buildid)' });
    expect(outcome({ 'file-validation': '' })).toMatchObject({ exit: ExitCode.USAGE });
  });
});
