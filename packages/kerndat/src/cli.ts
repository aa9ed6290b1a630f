import { defineCommand } from 'citty';
import { createConsola } from 'consola';
import { loadKerndat } from './cache.js';
import { stringifyKerndat } from './json.js';
import { probeKerndat, PROBES } from './probe.js';
import { CrtoolsError, ExitCode } from '@crtools/common';

/** A consola that writes every level to stderr (stdout carries the JSON document). */
export function stderrLogger(verbose: boolean) {
  return createConsola({
    level: verbose ? 4 : 2,
    stdout: process.stderr,
    stderr: process.stderr,
  });
}

/** `kerndat`: probe the running kernel (or reuse the cache) and print one JSON document. */
export const kerndatCommand = defineCommand({
  meta: { name: 'kerndat', version: '0.1.0', description: 'print what the running kernel can do, as one JSON document' },
  args: {
    cache: { type: 'boolean', default: true, description: 'reuse the cache while kernel release and boot id match (--no-cache probes afresh)' },
    'cache-path': { type: 'string', description: 'cache file (default $CRTOOLS_KERNDAT_CACHE or /run/crtools/kerndat.json)' },
    only: { type: 'string', description: 'comma-separated probe names to run (no cache); see --list' },
    list: { type: 'boolean', default: false, description: 'list probe names and exit' },
    compact: { type: 'boolean', default: false, description: 'one-line JSON' },
    verbose: { type: 'boolean', alias: 'v', default: false, description: 'log probe timings to stderr' },
  },
  run({ args }) {
    const logger = stderrLogger(args.verbose);
    if (args.list) {
      process.stdout.write(PROBES.map(([n]) => n).join('\n') + '\n');
      return ExitCode.OK;
    }
    let doc;
    if (args.only) {
      const only = String(args.only).split(',').filter(Boolean);
      const unknown = only.filter((n) => !PROBES.some(([p]) => p === n));
      if (unknown.length) throw new CrtoolsError('KERNDAT_USAGE', `unknown probe(s): ${unknown.join(', ')}`, { exitCode: ExitCode.USAGE });
      doc = probeKerndat({ only, logger });
    } else {
      const r = loadKerndat({ noCache: !args.cache, cachePath: args['cache-path'], logger });
      logger.debug(`kerndat: ${r.cached ? 'from cache' : 'probed'} ${r.cachePath}`);
      doc = r.kerndat;
    }
    process.stdout.write(stringifyKerndat(doc, args.compact ? 0 : 2) + '\n');
    return ExitCode.OK;
  },
});
