import path from 'node:path';
import { defineCommand } from 'citty';
import { CriuLog, ExitCode } from '@crtools/common';
import { pageServerTarget } from './dump.js';
import { lazyPages } from '@crtools/restorer';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';
import { verbosityOf } from './flags.js';
import { notYetArgs, refuseNotYet } from './not-yet-options.js';
import { statusReady } from './page-server.js';

export const LAZY_PAGES_ARGS = {
  'images-dir': { type: 'string', alias: 'D', description: 'directory with the images of the checkpoint being restored', default: '.' },
  'work-dir': { type: 'string', alias: 'W', description: 'directory of lazy-pages.socket and the log (default: the images directory)' },
  'log-file': { type: 'string', alias: 'o', description: 'log file (relative to the work dir)' },
  verbosity: { type: 'string', description: 'log level 0..4 (also -v0..-v4)' },
  'page-server': { type: 'boolean', description: 'fetch the pages from the page server at --address:--port (`criu dump --lazy-pages` there) instead of the local images' },
  address: { type: 'string', description: 'with --page-server: the page server host' },
  port: { type: 'string', description: 'with --page-server: the page server port' },
} as const;

/**
 * `criu lazy-pages -D DIR [-W DIR] [--status-fd FD] [--page-server --address A --port P]`:
 * listen on lazy-pages.socket for one `criu restore --lazy-pages`, take its tasks' userfaultfds
 * and serve their missing pages from the images (or, with --page-server, from the page server
 * of `criu dump --lazy-pages`) until every task's memory is complete. The daemon itself is
 * @crtools/restorer's lazyPages(); this parses flags and logs.
 */
export const lazyPagesCommand = defineCommand({
  meta: { name: 'lazy-pages', description: 'serve the pages of a lazy restore (restore --lazy-pages) from the images' },
  args: { ...LAZY_PAGES_ARGS, ...COMMON_ARGS, ...notYetArgs({ ...LAZY_PAGES_ARGS, ...COMMON_ARGS }) },
  async run({ args, rawArgs }) {
    refuseNotYet(args, { ...LAZY_PAGES_ARGS, ...COMMON_ARGS });
    const common = applyCommonOptions(args, rawArgs, false);
    const dir = String(args['images-dir']);
    const pageServer = pageServerTarget(args);
    const workDir = args['work-dir'] ? String(args['work-dir']) : dir;
    const level = args.verbosity !== undefined ? Number(args.verbosity) : verbosityOf(rawArgs);
    const log = new CriuLog(level, args['log-file'] ? path.resolve(workDir, String(args['log-file'])) : undefined, (l) => process.stderr.write(l + '\n'));
    try {
      await lazyPages({ dir, workDir, ...(pageServer ? { pageServer } : {}), logger: log.logger('lazy-pages'), onListening: () => statusReady(common.statusFd) });
      return ExitCode.OK;
    } catch (e) {
      log.error('lazy-pages', (e as Error).message);
      throw e;
    } finally {
      log.close();
    }
  },
});
