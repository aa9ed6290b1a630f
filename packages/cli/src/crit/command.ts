import { defineCommand } from 'citty';

/**
 * `crit`: CRIU image tool. Each subcommand lives in its own file in this folder.
 */
export const critCommand = defineCommand({
  meta: { name: 'crit', version: '0.1.0', description: 'CRIU image tool (crtools)' },
  subCommands: {},
});
