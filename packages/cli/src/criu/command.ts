import { defineCommand } from 'citty';

/**
 * `criu`: each subcommand lives in its own file in this folder and is mounted here, loaded only
 * when it runs (a restore does not pay for loading the dump's modules, and the other way round).
 */
export const criuCommand = defineCommand({
  meta: { name: 'criu', version: '0.1.0', description: 'checkpoint/restore in userspace (crtools)' },
  subCommands: {
    check: () => import('./check.js').then((m) => m.checkCommand),
    dump: () => import('./dump.js').then((m) => m.dumpCommand),
    restore: () => import('./restore.js').then((m) => m.restoreCommand),
    dedup: () => import('./dedup.js').then((m) => m.dedupCommand),
  },
});
