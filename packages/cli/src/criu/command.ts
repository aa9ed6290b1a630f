import { defineCommand } from 'citty';

/**
 * `criu`: each subcommand lives in its own file in this folder and is mounted here, loaded only
 * when it runs (a restore does not pay for loading the dump's modules, and the other way round).
 */
export const criuCommand = defineCommand({
  meta: { name: 'criu', version: '0.1.0', description: 'checkpoint/restore in userspace (crtools)' },
  subCommands: {
    dump: () => import('./dump.js').then((m) => m.dumpCommand),
    'pre-dump': () => import('./pre-dump.js').then((m) => m.preDumpCommand),
    restore: () => import('./restore.js').then((m) => m.restoreCommand),
    check: () => import('./check.js').then((m) => m.checkCommand),
    'page-server': () => import('./page-server.js').then((m) => m.pageServerCommand),
    'lazy-pages': () => import('./lazy-pages.js').then((m) => m.lazyPagesCommand),
    service: () => import('./service.js').then((m) => m.serviceCommand),
    swrk: () => import('./swrk.js').then((m) => m.swrkCommand),
    dedup: () => import('./dedup.js').then((m) => m.dedupCommand),
    cpuinfo: () => import('./cpuinfo.js').then((m) => m.cpuinfoCommand),
    exec: () => import('./later.js').then((m) => m.deprecated('exec', 'deprecated', 'the "exec" action is deprecated by the Compel library')),
    show: () => import('./later.js').then((m) => m.deprecated('show', 'deprecated', 'the "show" action is deprecated by the CRIT utility: to view an image use "crit decode -i $name --pretty"')),
  },
});
