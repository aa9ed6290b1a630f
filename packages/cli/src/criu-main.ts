import { runMain } from './run.js';
import { criuCommand } from './criu/command.js';
import { criuArgs } from './criu/config-args.js';
import { logEarlyFailure } from './criu/early-log.js';

// criu's usage errors exit 1, as getopt's do in CRIU
runMain(criuCommand, {
  prepareArgs: (leaf, args) => criuArgs(criuCommand, leaf, args),
  usageExit: 1,
  failed: (leaf, args, line) => logEarlyFailure((leaf.meta as { name?: string } | undefined)?.name ?? 'criu', args, line),
});
