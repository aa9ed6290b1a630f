import { defineCommand } from 'citty';

/**
 * `crit`: CRIU image tool. Each subcommand lives in its own file in this folder, loaded only
 * when it runs.
 */
export const critCommand = defineCommand({
  meta: { name: 'crit', version: '0.1.0', description: 'CRiu Image Tool (crtools)' },
  subCommands: {
    decode: () => import('./decode.js').then((m) => m.decodeCommand),
    encode: () => import('./encode.js').then((m) => m.encodeCommand),
    info: () => import('./info.js').then((m) => m.infoCommand),
    x: () => import('./x.js').then((m) => m.xCommand),
    show: () => import('./decode.js').then((m) => m.showCommand),
  },
});
