import { runMain } from './run.js';
import { criuCommand } from './criu/command.js';

runMain(criuCommand);
