import { defineCommand } from 'citty';
import { CrtoolsError, ExitCode } from '@crtools/common';
import { KINDS, runProcfs, type ProcfsRunOptions } from './kinds.js';

function parseAddr(s: string | undefined, what: string): bigint | undefined {
  if (s === undefined) return undefined;
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(s)) throw new CrtoolsError('USAGE', `${what}: not a hex address: ${s}`, { exitCode: ExitCode.USAGE });
  return BigInt(s.startsWith('0x') ? s : '0x' + s);
}

/** Buffer output into large writes: one write per record is slow at 60,000 records. */
export function bufferedWriter(sink: (chunk: string) => void, limit = 1 << 16): { write(s: string): void; flush(): void } {
  let parts: string[] = [];
  let size = 0;
  return {
    write(s: string) {
      parts.push(s);
      size += s.length;
      if (size >= limit) this.flush();
    },
    flush() {
      if (parts.length) sink(parts.join(''));
      parts = [];
      size = 0;
    },
  };
}

/** `procfs KIND PID`: citty command; the caller decides where output goes (stdout by default). */
export const procfsCommand = defineCommand({
  meta: { name: 'procfs', version: '0.1.0', description: `typed parsers of /proc for checkpointing. KIND: ${Object.keys(KINDS).join(', ')}` },
  args: {
    kind: { type: 'positional', required: true, description: 'what to read (maps, smaps, pagemap, status, stat, tasks, fds, …)' },
    pid: { type: 'positional', required: true, description: 'process id' },
    raw: { type: 'boolean', description: "the kernel's fields as text instead of typed values" },
    'keep-going': { type: 'boolean', description: 'emit {"error": …} records for malformed lines and go on (exit code 3)' },
    'stack-guard-gap-hidden': { type: 'boolean', description: 'maps/smaps: the kernel hides the stack guard page (kerndat stack_guard_gap_hidden)' },
    start: { type: 'string', description: 'pagemap: first address (hex)' },
    end: { type: 'string', description: 'pagemap: end address (hex, exclusive)' },
    all: { type: 'boolean', description: 'pagemap: also pages with no bit set' },
    'proc-root': { type: 'string', description: 'where procfs is mounted (default /proc; tests point it at captured files)' },
  },
  run({ args }) {
    if (!/^\d+$/.test(String(args.pid))) throw new CrtoolsError('USAGE', `not a pid: ${args.pid}`, { exitCode: ExitCode.USAGE });
    const opts: ProcfsRunOptions = {
      raw: !!args.raw,
      keepGoing: !!args['keep-going'],
      stackGuardGapHidden: !!args['stack-guard-gap-hidden'],
      start: parseAddr(args.start, '--start'),
      end: parseAddr(args.end, '--end'),
      all: !!args.all,
    };
    if (args['proc-root']) opts.procRoot = String(args['proc-root']);
    const out = bufferedWriter((s) => process.stdout.write(s));
    try {
      return runProcfs(String(args.kind), Number(args.pid), (s) => out.write(s), opts);
    } finally {
      out.flush();
    }
  },
});
