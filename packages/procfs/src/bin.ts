import { runCommand, showUsage } from 'citty';
import { ExitCode, isCrtoolsError } from '@crtools/common';
import { procfsCommand } from './command.js';

/** Entry of bin/procfs.js: data on stdout, one error line on stderr, the error's exit code. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const verbose = !!process.env.CRTOOLS_DEBUG;
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
      await showUsage(procfsCommand);
      process.exitCode = argv.length === 0 ? ExitCode.USAGE : ExitCode.OK;
      return;
    }
    const { result } = await runCommand(procfsCommand, { rawArgs: argv });
    if (typeof result === 'number') process.exitCode = result;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`procfs: ${msg}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    if (isCrtoolsError(e)) process.exitCode = e.exitCode;
    else if ((e as { code?: string }).code === 'EUNKNOWN_COMMAND' || /missing required/i.test(msg)) process.exitCode = ExitCode.USAGE;
    else process.exitCode = ExitCode.FAILED;
  }
}

await main();
