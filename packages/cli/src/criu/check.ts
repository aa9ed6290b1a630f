import { defineCommand, showUsage } from 'citty';
import type { Logger } from '@crtools/common';
import { judge, loadKerndat, parseKerndat, readKerndatArgument, readKerndatFromDescriptor, type CheckCategory, type Kerndat } from '@crtools/kerndat';
import { COMMON_ARGS, applyCommonOptions } from './common-options.js';

export interface CheckOptions {
  extra?: boolean;
  experimental?: boolean;
  all?: boolean;
  feature?: string;
}

export interface CheckIo {
  /** a kerndat JSON document (e.g. from `kerndat | criu check`); undefined: probe */
  input?: string;
  out: (line: string) => void;
  err: (line: string) => void;
  /** how to get the document when there is no input (default: probes with the cache) */
  probe?: () => Kerndat;
}

/**
 * The core of `criu check`: feed a kerndat document to judge() and print its
 * verdict. Returns CRIU's exit code. Malformed input throws (exit code 3).
 */
export function runCheck(io: CheckIo, opts: CheckOptions): number {
  const categories: CheckCategory[] = ['required'];
  if (opts.all) categories.push('all');
  if (opts.extra) categories.push('extra');
  if (opts.experimental) categories.push('experimental');
  // --feature list needs no kernel facts
  if (opts.feature === 'list') {
    const r = judge({} as Kerndat, { feature: 'list' });
    r.stdout.forEach(io.out);
    return r.exitCode;
  }
  const k = io.input !== undefined ? parseKerndat(io.input) : (io.probe ?? (() => loadKerndat().kerndat))();
  const r = judge(k, { category: categories, feature: opts.feature });
  r.stderr.forEach(io.err);
  r.stdout.forEach(io.out);
  return r.exitCode;
}

/**
 * The log of `criu check` on stderr, a consola (its lines as before). Without -v only warnings
 * and errors are shown and a probe from the cache logs none: consola (~20 ms to load) is then
 * loaded only when a line is to be written (kept until `flush`).
 */
async function stderrLog(verbose: boolean): Promise<Logger & { flush(): Promise<void> }> {
  const make = async () => (await import('consola')).createConsola({ level: verbose ? 4 : 2, stdout: process.stderr, stderr: process.stderr });
  if (verbose) {
    const c = await make();
    return Object.assign(c, { flush: async () => {} });
  }
  const kept: ['error' | 'warn', unknown[]][] = [];
  return {
    error: (...a) => kept.push(['error', a]),
    warn: (...a) => kept.push(['warn', a]),
    info() {},
    debug() {},
    async flush() {
      if (kept.length === 0) return;
      const c = await make();
      for (const [level, a] of kept.splice(0)) c[level](...(a as [unknown, ...unknown[]]));
    },
  };
}

/** `criu check`: kernel features needed to dump and restore (see criu(8)). */
export const checkCommand = defineCommand({
  meta: { name: 'check', description: 'check whether the kernel supports what dump and restore need' },
  args: {
    extra: { type: 'boolean', default: false, description: 'add check for extra kernel features' },
    experimental: { type: 'boolean', default: false, description: 'add check for experimental kernel features' },
    all: { type: 'boolean', default: false, description: 'same as --extra --experimental' },
    feature: { type: 'string', description: "only check a particular feature ('list' names them)" },
    kerndat: { type: 'string', description: "judge this kerndat document instead of probing (FILE, or - for stdin); a piped one is found without it" },
    cache: { type: 'boolean', default: true, description: 'reuse the kerndat cache when probing (--no-cache probes afresh)' },
    verbose: { type: 'boolean', alias: 'v', default: false, description: 'more logs on stderr' },
    ...COMMON_ARGS,
  },
  async run({ args, rawArgs }) {
    applyCommonOptions(args, rawArgs, false);
    if (rawArgs.includes('--help') || rawArgs.includes('-h')) {
      await showUsage(checkCommand);
      return 0;
    }
    const log = await stderrLog(args.verbose);
    // a closed reader (criu check --feature list | head) is not an error
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
    // stdin is taken only when it carries a kerndat document (see @crtools/kerndat input.ts)
    const input = args.feature === 'list' ? undefined : args.kerndat !== undefined ? readKerndatArgument(args.kerndat) : readKerndatFromDescriptor();
    log.debug(input !== undefined ? `criu check: kerndat document from ${args.kerndat ?? 'stdin'}` : 'criu check: probing the kernel');
    // probed ahead of the verdict, so that what the probe logged is on stderr before it
    const probed = input === undefined && args.feature !== 'list' ? loadKerndat({ noCache: !args.cache, logger: log }).kerndat : undefined;
    await log.flush();
    const code = runCheck(
      {
        input,
        out: (l) => process.stdout.write(l + '\n'),
        err: (l) => process.stderr.write(l + '\n'),
        probe: () => probed ?? loadKerndat({ noCache: !args.cache, logger: log }).kerndat,
      },
      { extra: args.extra, experimental: args.experimental, all: args.all, feature: args.feature },
    );
    // citty does not hand a subcommand's result back to runMain: set the exit code here
    process.exitCode = code;
    return code;
  },
});
