import { fstatSync, readFileSync } from 'node:fs';
import { defineCommand, showUsage } from 'citty';
import { createConsola } from 'consola';
import { judge, loadKerndat, parseKerndat, type CheckCategory, type Kerndat } from '@crtools/kerndat';

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
 * stdin's text when it is a pipe or a file with data; undefined for a TTY or no data.
 * A pipe is read to its end (the writer, e.g. kerndat, closes it); if nothing at
 * all arrives within `firstByteMs` the pipe is treated as empty.
 */
export async function readPipedStdin(firstByteMs = 10000): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  let st;
  try {
    st = fstatSync(0);
  } catch {
    return undefined;
  }
  if (st.isFile()) {
    const text = readFileSync(0, 'utf8');
    return text.length ? text : undefined;
  }
  if (!st.isFIFO() && !st.isSocket()) return undefined;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => finish(), firstByteMs);
    const finish = () => {
      clearTimeout(timer);
      process.stdin.off('data', onData);
      process.stdin.off('end', finish);
      process.stdin.off('error', onError);
      process.stdin.pause();
      if (chunks.length === 0) process.stdin.destroy();
      resolve(chunks.length ? Buffer.concat(chunks).toString('utf8') : undefined);
    };
    const onData = (c: Buffer) => {
      if (chunks.length === 0) clearTimeout(timer);
      chunks.push(c);
    };
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', finish);
    process.stdin.once('error', onError);
  });
}

/** `criu check`: kernel features needed to dump and restore (see criu(8)). */
export const checkCommand = defineCommand({
  meta: { name: 'check', description: 'check whether the kernel supports what dump and restore need' },
  args: {
    extra: { type: 'boolean', default: false, description: 'add check for extra kernel features' },
    experimental: { type: 'boolean', default: false, description: 'add check for experimental kernel features' },
    all: { type: 'boolean', default: false, description: 'same as --extra --experimental' },
    feature: { type: 'string', description: "only check a particular feature ('list' names them)" },
    cache: { type: 'boolean', default: true, description: 'reuse the kerndat cache when probing (--no-cache probes afresh)' },
    verbose: { type: 'boolean', alias: 'v', default: false, description: 'more logs on stderr' },
  },
  async run({ args, rawArgs }) {
    if (rawArgs.includes('--help') || rawArgs.includes('-h')) {
      await showUsage(checkCommand);
      return 0;
    }
    const log = createConsola({ level: args.verbose ? 4 : 2, stdout: process.stderr, stderr: process.stderr });
    // a closed reader (criu check --feature list | head) is not an error
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
    const input = args.feature === 'list' ? undefined : await readPipedStdin();
    log.debug(input !== undefined ? 'criu check: kerndat document from stdin' : 'criu check: probing the kernel');
    const code = runCheck(
      {
        input,
        out: (l) => process.stdout.write(l + '\n'),
        err: (l) => process.stderr.write(l + '\n'),
        probe: () => loadKerndat({ noCache: !args.cache, logger: log }).kerndat,
      },
      { extra: args.extra, experimental: args.experimental, all: args.all, feature: args.feature },
    );
    // citty does not hand a subcommand's result back to runMain: set the exit code here
    process.exitCode = code;
    return code;
  },
});
