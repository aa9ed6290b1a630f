import { runMain } from './run.js';
import { critCommand } from './crit/command.js';

runMain(critCommand);
