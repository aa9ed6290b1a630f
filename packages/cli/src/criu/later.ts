import { defineCommand } from 'citty';
import { CrtoolsError, ExitCode } from '@crtools/common';

/**
 * A criu.8 command crtools does not carry out yet: listed in `criu --help` like the others,
 * and refused by name (exit 4) whatever its options, so that no script mistakes it for done.
 */
export function notYet(name: string, description: string, issue: number) {
  return defineCommand({
    meta: { name, description: `${description} (not supported yet)` },
    run() {
      throw new CrtoolsError('UNSUPPORTED', `${name} is not supported yet (crtools issue ${issue})`, { exitCode: ExitCode.UNSUPPORTED });
    },
  });
}

/**
 * A command CRIU 4.x still knows only to say it is gone, and where to look instead; it fails
 * as CRIU's does (main returns -1: exit 255).
 */
export function deprecated(name: string, description: string, message: string) {
  return defineCommand({
    meta: { name, description },
    run() {
      process.stderr.write(`criu: ${message}\n`);
      return 255;
    },
  });
}
