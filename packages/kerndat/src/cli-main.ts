import { runCommand, showUsage } from 'citty';
import { ExitCode, isCrtoolsError } from '@crtools/common';
import { kerndatCommand } from './cli.js';

/** Entry of the `kerndat` bin: one error line on stderr and the error's exit code. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      await showUsage(kerndatCommand);
      return;
    }
    const { result } = await runCommand(kerndatCommand, { rawArgs: argv });
    process.exitCode = typeof result === 'number' ? result : ExitCode.OK;
  } catch (e) {
    process.stderr.write(`kerndat: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = isCrtoolsError(e) ? e.exitCode : ExitCode.FAILED;
  }
}
