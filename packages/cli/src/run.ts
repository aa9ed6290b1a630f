import { runCommand, showUsage, type CommandDef } from 'citty';
import { ExitCode, isCrtoolsError } from '@crtools/common';

/**
 * Run a citty command as a process: one line on stderr for any error, a stack
 * only with -v/--verbose (or CRTOOLS_DEBUG), and the error's exit code.
 */
export async function runMain(cmd: CommandDef<any>): Promise<void> {
  const rawArgs = process.argv.slice(2);
  const verbose = rawArgs.some((a) => a === '-v' || a === '--verbose' || /^-v[0-9]$/.test(a) && a >= '-v4') || !!process.env.CRTOOLS_DEBUG;
  try {
    if (rawArgs.length === 0 || rawArgs[0] === '--help' || rawArgs[0] === '-h') {
      await showUsage(cmd);
      process.exitCode = rawArgs.length === 0 ? ExitCode.USAGE : ExitCode.OK;
      return;
    }
    const { result } = await runCommand(cmd, { rawArgs });
    if (typeof result === 'number') process.exitCode = result;
  } catch (e) {
    const name = (cmd.meta as { name?: string } | undefined)?.name ?? 'crtools';
    if (isCrtoolsError(e)) {
      process.stderr.write(`${name}: ${e.message}\n`);
      if (verbose && e.stack) process.stderr.write(e.stack + '\n');
      process.exitCode = e.exitCode;
    } else if (e instanceof Error && (e as { code?: string }).code === 'E_UNKNOWN_COMMAND') {
      process.stderr.write(`${name}: ${e.message}\n`);
      process.exitCode = ExitCode.USAGE;
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      process.stderr.write(`${name}: ${msg}\n`);
      if (verbose && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
      process.exitCode = ExitCode.FAILED;
    }
  }
}
