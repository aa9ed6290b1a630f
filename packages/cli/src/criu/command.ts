import { defineCommand } from 'citty';
import { checkCommand } from './check.js';
import { dumpCommand } from './dump.js';
import { restoreCommand } from './restore.js';
import { dedupCommand } from './dedup.js';

/**
 * `criu`: each subcommand lives in its own file in this folder and is mounted here.
 */
export const criuCommand = defineCommand({
  meta: { name: 'criu', version: '0.1.0', description: 'checkpoint/restore in userspace (crtools)' },
  subCommands: {
    check: checkCommand,
    dump: dumpCommand,
    restore: restoreCommand,
    dedup: dedupCommand,
  },
});
