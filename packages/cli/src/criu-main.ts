import { runMain } from './run.js';
import { criuCommand } from './criu/command.js';
import { criuArgs } from './criu/config-args.js';

runMain(criuCommand, { prepareArgs: (leaf, args) => criuArgs(criuCommand, leaf, args) });
