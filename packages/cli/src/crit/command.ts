import { defineCommand } from 'citty';
import { decodeCommand, showCommand } from './decode.js';
import { encodeCommand } from './encode.js';
import { infoCommand } from './info.js';
import { xCommand } from './x.js';

/**
 * `crit`: CRIU image tool. Each subcommand lives in its own file in this folder.
 */
export const critCommand = defineCommand({
  meta: { name: 'crit', version: '0.1.0', description: 'CRiu Image Tool (crtools)' },
  subCommands: {
    decode: decodeCommand,
    encode: encodeCommand,
    info: infoCommand,
    x: xCommand,
    show: showCommand,
  },
});
