import { defineCommand } from 'citty';
import { createConsola } from 'consola';
import { ExitCode } from '@crtools/common';
import { dedup } from '@crtools/pagemap';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';

/**
 * `criu dedup -D DIR`: punch out of the parent snapshots' pages images the pages that the
 * dump in DIR wrote again. All logic is in @crtools/pagemap; this only parses flags.
 */
export const dedupCommand = defineCommand({
  meta: { name: 'dedup', description: "remove duplicates of this dump's pages from its parent snapshots" },
  args: {
    'images-dir': { type: 'string', alias: 'D', description: 'directory of the newest dump (with a parent link)', default: '.' },
    ...COMMON_ARGS,
  },
  async run({ args, rawArgs }) {
    applyCommonOptions(args, rawArgs, false);
    const logger = createConsola({ stdout: process.stderr, stderr: process.stderr });
    const res = await dedup({ dir: args['images-dir'], logger });
    logger.info(`deduplicated ${res.pagemaps} pagemap(s), ${res.bytesPunched} bytes punched`);
    return ExitCode.OK;
  },
});
